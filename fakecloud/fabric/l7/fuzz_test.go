package l7

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzPathPrefix checks prefix matching against its definition (whole "/"-separated segments
// of the prefix without its trailing "/") and that a prefix replacement keeps the path rooted.
// Seeds: testdata/fuzz/FuzzPathPrefix.
func FuzzPathPrefix(f *testing.F) {
	f.Add("/foo", "/foo/bar", "/xyz")
	f.Add("/", "/anything", "")
	f.Add("/foo/", "/foobar", "/")
	f.Fuzz(func(t *testing.T, prefix, path, repl string) {
		if !strings.HasPrefix(prefix, "/") || !strings.HasPrefix(path, "/") {
			return
		}
		p := trimPrefix(prefix)
		got := prefixMatches(p, path)
		ps, xs := strings.Split(p, "/"), strings.Split(path, "/")
		want := len(xs) >= len(ps)
		for i := 0; want && i < len(ps); i++ {
			want = ps[i] == xs[i]
		}
		if got != want {
			t.Fatalf("prefixMatches(%q, %q) = %v, segment-wise %v", prefix, path, got, want)
		}
		if !got || (repl != "" && !strings.HasPrefix(repl, "/")) {
			return
		}
		out := replacePrefix(path, p, repl)
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("replacePrefix(%q, %q, %q) = %q, not rooted", path, p, repl, out)
		}
		if rest := path[len(p):]; !strings.HasSuffix(out, rest) {
			t.Fatalf("replacePrefix(%q, %q, %q) = %q lost the unmatched %q", path, p, repl, out, rest)
		}
	})
}

// FuzzValidate builds a config from fuzzed fields: Validate must never panic, and a config it
// accepts must compile and serve a request without panicking. Seeds: testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	f.Add("Prefix", "/foo", "x-h", "Regex", "v[0-9]+", "*.example.com", "ReplacePrefixMatch", "/bar", "/foo/bar?x=1")
	f.Add("Regex", "(", "bad name", "Exact", "", "a..b", "ReplaceFullPath", "nope", "/")
	f.Add("Exact", "/a%2Fb", "Host", "Regex", ".*", "EXAMPLE.com", "ReplacePrefixMatch", "", "/a%2Fb")
	f.Fuzz(func(t *testing.T, pathType, pathValue, hName, hType, hValue, host, modType, modValue, target string) {
		cfg := Config{
			TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolHTTP}},
			Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{
				Hosts:   []string{host},
				Path:    &PathMatch{Type: MatchType(pathType), Value: pathValue},
				Headers: []HeaderMatch{{Name: hName, Type: MatchType(hType), Value: hValue}},
				Query:   []QueryMatch{{Name: hName, Type: MatchType(hType), Value: hValue}},
				Action: Action{
					Forward: &Forward{Backends: []Backend{{TargetGroup: "tg", Weight: 1}}},
					Rewrite: &Rewrite{Path: &PathModifier{Type: PathModifierType(modType), Value: modValue}},
				},
			}, {
				Path:   &PathMatch{Type: MatchType(pathType), Value: pathValue},
				Action: Action{Redirect: &Redirect{Hostname: host, Path: &PathModifier{Type: PathModifierType(modType), Value: modValue}}},
			}}}},
		}
		s, _, err := compile(cfg, nil)
		if err != nil {
			return
		}
		if !strings.HasPrefix(target, "/") {
			return
		}
		// The request as a server reads it off the wire: a target it would not parse (a space
		// in it, say) is no request.
		req, perr := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if perr != nil {
			return
		}
		req.Host = strings.TrimPrefix(host, "*.")
		req.Header.Set("X-H", hValue)
		l := s.listeners[portKey{port: 80}]
		path := req.URL.EscapedPath()
		for _, r := range l.rules {
			if r.matches(req, requestHost(req.Host), path, req.URL.Query) {
				a := &r.action
				if a.rewrite != nil && a.rewrite.Path != nil {
					_ = modifyPath(*a.rewrite.Path, path, a.prefixMatched)
				}
				if a.redirect != nil {
					_ = redirectLocation(a.redirect, l, req, requestHost(req.Host), path, a.prefixMatched)
				}
			}
		}
	})
}

// FuzzParseCodes: any HTTP matcher either fails or yields ranges inside 100..599.
func FuzzParseCodes(f *testing.F) {
	for _, s := range []string{"200", "200,202", "200-399", " 200 - 299", "abc", "-1", "200-100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, m string) {
		codes, err := parseCodes(m, 100, 599)
		if err != nil {
			return
		}
		for _, r := range codes {
			if r.lo < 100 || r.hi > 599 || r.lo > r.hi {
				t.Fatalf("%q gave range %+v", m, r)
			}
		}
	})
}
