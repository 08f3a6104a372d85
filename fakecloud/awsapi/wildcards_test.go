package awsapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func TestWildcards(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []string
		values []string
		match  string
	}{
		{"no wildcard stays exact", []string{"/api", "/a.b"}, []string{"/api", "/a.b"}, ""},
		{"star and question mark", []string{"/api/*", "/v?/x.json"}, []string{"/api/.*", `/v./x\.json`}, api.MatchTypeRegex},
		{"one wildcard makes the list regex", []string{"/a+b", "*"}, []string{`/a\+b`, ".*"}, api.MatchTypeRegex},
		{"regex syntax is quoted", []string{"/(x)|[y]{1}^$\\*"}, []string{`/\(x\)\|\[y\]\{1\}\^\$\\.*`}, api.MatchTypeRegex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values, match := fromWildcards(tc.in)
			if d := cmp.Diff(tc.values, values); d != "" || match != tc.match {
				t.Fatalf("fromWildcards(%q) = %q %q; want %q %q", tc.in, values, match, tc.values, tc.match)
			}
			if back := toWildcards(values, match); !cmp.Equal(back, tc.in) {
				t.Fatalf("toWildcards(%q) = %q; want %q back", values, back, tc.in)
			}
		})
	}
	for _, tc := range []struct {
		values []string
		match  string
		want   []string
	}{
		{[]string{"/p"}, api.MatchTypePrefix, []string{"/p", "/p/*"}},
		{[]string{"/p/"}, api.MatchTypePrefix, []string{"/p/", "/p/*"}},
		{[]string{"canary|beta"}, api.MatchTypeRegex, []string{"canary|beta"}},
		{[]string{`[a-z]+`}, api.MatchTypeRegex, []string{`[a-z]+`}},
	} {
		if got := toWildcards(tc.values, tc.match); !cmp.Equal(got, tc.want) {
			t.Errorf("toWildcards(%q, %s) = %q; want %q", tc.values, tc.match, got, tc.want)
		}
	}
}
