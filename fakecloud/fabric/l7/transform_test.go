package l7

import (
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTransforms: a rule's transforms rewrite the Host and the URL (path and query) the target
// sees, first match only, with $n, ${n} and $$ in the replacement; no match changes nothing;
// the action's own rewrite applies to what they made; a result that is no Host or URL is
// answered 500, counted and logged as the rule's.
func TestTransforms(t *testing.T) {
	b := startEcho(t, "b", false)
	var logBuf syncBuffer
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg, AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	prefix := func(v string) *PathMatch { return &PathMatch{Type: MatchPrefix, Value: v} }
	fwd := func(rw *Rewrite, ts ...Transform) Action {
		a := forwardTo("tg")
		a.Rewrite, a.Transforms = rw, ts
		return a
	}
	host := func(re, repl string) Transform { return Transform{Type: TransformHost, Regex: re, Replace: repl} }
	url := func(re, repl string) Transform { return Transform{Type: TransformURL, Regex: re, Replace: repl} }
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Hosts: []string{"host.test"}, Action: fwd(nil, host("^.*$", "new.example"))},
			{Hosts: []string{"badhost.test"}, Action: fwd(nil, host("^.*$", "a b"))},
			{Hosts: []string{"xyz.test"}, Path: prefix("/foo"), Action: fwd(nil, url("^/foo", "/xyz"))},
			{Hosts: []string{"both.test"}, Path: prefix("/both"), Action: fwd(&Rewrite{Path: &PathModifier{Type: ReplaceFullPath, Value: "/replaced"}},
				host(`^(\w+)\.test$`, "$1.internal"))},
			{Hosts: []string{"combo.test"}, Action: fwd(&Rewrite{Hostname: "rw.test"}, url("^/combo", "/c"))},
			{Path: prefix("/old"), Action: fwd(nil, url("^[^?]*", "/new"))},
			{Path: prefix("/foo"), Action: fwd(nil, url("^/foo/?", "/"))},
			{Path: prefix("/dp"), Action: fwd(nil, url(`^/dp/([a-z0-9]+)/?$`, "/dp.html?asin=$1"))},
			{Path: prefix("/x"), Action: fwd(nil, url(`^/x/(\w+)$`, "/$1x"))},
			{Path: prefix("/y"), Action: fwd(nil, url(`^/y/(\w+)$`, "/${1}$$z"))},
			{Path: prefix("/opt"), Action: fwd(nil, url(`^/opt/(a)?(b)$`, "/r$1-$2"))},
			{Path: prefix("/mid"), Action: fwd(nil, url(`/m`, "/M"))},
			{Path: prefix("/bad"), Action: fwd(nil, url("^.*$", "nopath"))},
			{Name: "badq", Path: prefix("/badq"), Action: fwd(nil, url(`\?.*$`, "?a b"))},
		}}},
	})
	u := base(t, e, 80, "http")
	for _, tc := range []struct{ host, path, wantHost, wantURI string }{
		{"host.test", "/h?k=v", "new.example", "/h?k=v"},
		{"host.test:80", "/h", "new.example", "/h"},
		{"svc.test", "/old/x?a=1", "svc.test", "/new?a=1"},
		{"svc.test", "/old/a%2Fb", "svc.test", "/new"},
		{"svc.test", "/foo/bar?q", "svc.test", "/bar?q"},
		{"xyz.test", "/foo/bar", "xyz.test", "/xyz/bar"},
		{"xyz.test", "/foo/bar?a=é", "xyz.test", "/xyz/bar?a=é"}, // a query passed on as sent is not judged
		{"svc.test", "/dp/b01", "svc.test", "/dp.html?asin=b01"},
		{"svc.test", "/dp/b01/?x=1", "svc.test", "/dp/b01/?x=1"}, // the query is part of the URL: no match
		{"svc.test", "/dp/B01", "svc.test", "/dp/B01"},           // no match: unchanged
		{"svc.test", "/x/ab", "svc.test", "/abx"},
		{"svc.test", "/y/ab", "svc.test", "/ab$z"},
		{"svc.test", "/opt/b", "svc.test", "/r-b"},
		{"svc.test", "/mid/m/m", "svc.test", "/Mid/m/m"}, // the first match only
		{"both.test", "/both/q?z", "both.internal", "/replaced?z"},
		{"combo.test", "/combo/d", "rw.test", "/c/d"},
	} {
		resp, ec, _ := do(t, http.DefaultClient, get(t, u+tc.path, tc.host, nil))
		if resp.StatusCode != 200 || ec.Host != tc.wantHost || ec.URI != tc.wantURI {
			t.Errorf("%s%s: %d, the target saw host %q URI %q; want %q %q", tc.host, tc.path, resp.StatusCode, ec.Host, ec.URI, tc.wantHost, tc.wantURI)
		}
	}
	for _, tc := range []struct{ host, path, says string }{
		{"svc.test", "/bad/x", "the url-rewrite transform made an invalid URL\n"},
		{"svc.test", "/badq?a=1", "the url-rewrite transform made an invalid URL\n"},
		{"badhost.test", "/", "the host-header-rewrite transform made an invalid Host\n"},
	} {
		resp, _, body := do(t, http.DefaultClient, get(t, u+tc.path, tc.host, nil))
		if resp.StatusCode != http.StatusInternalServerError || body != tc.says {
			t.Errorf("%s%s: %d %q, want 500 %q", tc.host, tc.path, resp.StatusCode, body, tc.says)
		}
	}
	if n := gathered(t, reg)["flatnet_l7_requests_total{code=500,listener=80,rule=badq}"]; n != 1 {
		t.Errorf("%v 500s counted for rule badq, want 1", n)
	}
	var line string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if i := strings.Index(logBuf.String(), `"rule":"badq"`); i >= 0 {
			line = logBuf.String()[i:]
			break
		}
	}
	if !strings.Contains(line, `"status":500`) || !strings.Contains(line, `"err":"the url-rewrite transform made an invalid URL: \"/badq?a b\""`) {
		t.Errorf("access log line of the refused rewrite: %q", line)
	}
}

// FuzzTransform: a transform replaces the first match as Go's Regexp.Expand does with the
// group numbers braced ($1x is ${1}x), and a replacement it refuses never compiles.
func FuzzTransform(f *testing.F) {
	f.Add(`^/dp/([a-z0-9]+)/?$`, "/dp.html?asin=$1", "/dp/b01")
	f.Add(`^/(a)?(b)`, "$1x${2}$$", "/b/c")
	f.Add(`o`, "$0$0", "/foo")
	f.Add(`(x)`, "$2", "x")
	f.Add(`(x)`, "${1", "x")
	f.Fuzz(func(t *testing.T, expr, repl, s string) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		parts, err := parseReplace(repl, re.NumSubexp())
		if err != nil {
			return
		}
		// The template as Go's: every group braced, $$ kept.
		var tmpl strings.Builder
		for _, p := range parts {
			if p.group < 0 {
				tmpl.WriteString(strings.ReplaceAll(p.lit, "$", "$$"))
			} else {
				tmpl.WriteString("${" + strconv.Itoa(p.group) + "}")
			}
		}
		tr := &transform{re: re, parts: parts}
		got, ok := tr.apply(s)
		m := re.FindStringSubmatchIndex(s)
		if ok != (m != nil) {
			t.Fatalf("apply(%q) matched %v, the regex %v", s, ok, m != nil)
		}
		want := s
		if m != nil {
			want = s[:m[0]] + string(re.ExpandString(nil, tmpl.String(), s, m)) + s[m[1]:]
		}
		if got != want {
			t.Fatalf("%q -> %q on %q: %q, Expand's %q", expr, repl, s, got, want)
		}
	})
}
