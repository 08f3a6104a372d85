package l7

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// compileRule compiles one rule on an HTTP listener, failing the test on a config error.
func compileRule(t *testing.T, r Rule) *rule {
	t.Helper()
	if r.Action.Forward == nil && r.Action.Redirect == nil && r.Action.FixedResponse == nil {
		r.Action = Action{FixedResponse: &FixedResponse{StatusCode: 200}}
	}
	s, _, err := compile(Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{r}}}}, nil)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s.listeners[portKey{port: 80}].rules[0]
}

func matchRequest(ru *rule, req *http.Request) bool {
	return ru.matches(req, requestHost(req.Host), req.URL.EscapedPath(), req.URL.Query)
}

func TestRuleMatching(t *testing.T) {
	type req struct {
		method, target, host string
		header               http.Header
	}
	get := func(target string) req { return req{method: "GET", target: target} }
	tests := []struct {
		name string
		rule Rule
		hit  []req
		miss []req
	}{
		{
			name: "prefix matches whole segments",
			rule: Rule{Path: &PathMatch{Type: MatchPrefix, Value: "/foo"}},
			hit:  []req{get("/foo"), get("/foo/"), get("/foo/bar"), get("/foo/bar/baz?x=1")},
			miss: []req{get("/foobar"), get("/fo"), get("/"), get("/bar/foo")},
		},
		{
			name: "prefix trailing slash is ignored",
			rule: Rule{Path: &PathMatch{Type: MatchPrefix, Value: "/foo/"}},
			hit:  []req{get("/foo"), get("/foo/"), get("/foo/bar")},
			miss: []req{get("/foobar")},
		},
		{
			name: "prefix / matches everything",
			rule: Rule{Path: &PathMatch{Type: MatchPrefix, Value: "/"}},
			hit:  []req{get("/"), get("/a"), get("/a/b/")},
		},
		{
			name: "prefix is case-sensitive",
			rule: Rule{Path: &PathMatch{Type: MatchPrefix, Value: "/Foo"}},
			hit:  []req{get("/Foo/x")},
			miss: []req{get("/foo/x")},
		},
		{
			name: "exact path",
			rule: Rule{Path: &PathMatch{Type: MatchExact, Value: "/exact"}},
			hit:  []req{get("/exact"), get("/exact?q=1")},
			miss: []req{get("/exact/"), get("/exactly"), get("/")},
		},
		{
			name: "exact path compares the escaped form",
			rule: Rule{Path: &PathMatch{Type: MatchExact, Value: "/a%2Fb"}},
			hit:  []req{get("/a%2Fb")},
			miss: []req{get("/a/b")},
		},
		{
			name: "regex path matches the whole path",
			rule: Rule{Path: &PathMatch{Type: MatchRegex, Value: `/v[0-9]+/.*`}},
			hit:  []req{get("/v1/x"), get("/v22/")},
			miss: []req{get("/api/v1/x"), get("/v1")},
		},
		{
			name: "exact host is case-insensitive and ignores the port",
			rule: Rule{Hosts: []string{"Example.COM"}},
			hit:  []req{{method: "GET", target: "/", host: "example.com"}, {method: "GET", target: "/", host: "EXAMPLE.com:8080"}, {method: "GET", target: "/", host: "example.com."}},
			miss: []req{{method: "GET", target: "/", host: "www.example.com"}},
		},
		{
			name: "wildcard host needs a label before the suffix",
			rule: Rule{Hosts: []string{"*.example.com"}},
			hit:  []req{{method: "GET", target: "/", host: "a.example.com"}, {method: "GET", target: "/", host: "a.b.EXAMPLE.com"}},
			miss: []req{{method: "GET", target: "/", host: "example.com"}, {method: "GET", target: "/", host: "aexample.com"}},
		},
		{
			name: "any of several hosts",
			rule: Rule{Hosts: []string{"a.test", "b.test"}},
			hit:  []req{{method: "GET", target: "/", host: "b.test"}},
			miss: []req{{method: "GET", target: "/", host: "c.test"}},
		},
		{
			name: "header names are case-insensitive, values exact",
			rule: Rule{Headers: []HeaderMatch{{Name: "x-Version", Type: MatchExact, Value: "v2"}}},
			hit:  []req{{method: "GET", target: "/", header: http.Header{"X-Version": {"v2"}}}},
			miss: []req{{method: "GET", target: "/", header: http.Header{"X-Version": {"V2"}}}, get("/")},
		},
		{
			name: "repeated headers are joined with commas",
			rule: Rule{Headers: []HeaderMatch{{Name: "X-A", Type: MatchExact, Value: "1,2"}}},
			hit:  []req{{method: "GET", target: "/", header: http.Header{"X-A": {"1", "2"}}}},
		},
		{
			name: "header regex and all headers must hold",
			rule: Rule{Headers: []HeaderMatch{{Name: "x-a", Type: MatchRegex, Value: "v[12]"}, {Name: "x-b", Type: MatchExact, Value: "y"}}},
			hit:  []req{{method: "GET", target: "/", header: http.Header{"X-A": {"v1"}, "X-B": {"y"}}}},
			miss: []req{{method: "GET", target: "/", header: http.Header{"X-A": {"v1"}}}, {method: "GET", target: "/", header: http.Header{"X-A": {"v3"}, "X-B": {"y"}}}},
		},
		{
			name: "query exact and regex, names case-sensitive, first value counts",
			rule: Rule{Query: []QueryMatch{{Name: "animal", Type: MatchExact, Value: "whale"}, {Name: "n", Type: MatchRegex, Value: "[0-9]+"}}},
			hit:  []req{get("/?animal=whale&n=42"), get("/?n=1&animal=whale&animal=dolphin")},
			miss: []req{get("/?Animal=whale&n=1"), get("/?animal=whale"), get("/?animal=dolphin&animal=whale&n=1"), get("/?animal=whale&n=x")},
		},
		{
			name: "method",
			rule: Rule{Method: "POST"},
			hit:  []req{{method: "POST", target: "/"}},
			miss: []req{get("/")},
		},
		{
			name: "conditions are ANDed",
			rule: Rule{Hosts: []string{"a.test"}, Path: &PathMatch{Type: MatchPrefix, Value: "/x"}, Method: "GET"},
			hit:  []req{{method: "GET", target: "/x/1", host: "a.test"}},
			miss: []req{{method: "GET", target: "/y", host: "a.test"}, {method: "GET", target: "/x", host: "b.test"}, {method: "PUT", target: "/x", host: "a.test"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ru := compileRule(t, tt.rule)
			build := func(r req) *http.Request {
				hr := httptest.NewRequest(r.method, "http://x"+r.target, nil)
				hr.Host = "default.test"
				if r.host != "" {
					hr.Host = r.host
				}
				for k, v := range r.header {
					hr.Header[k] = v
				}
				return hr
			}
			for _, r := range tt.hit {
				if !matchRequest(ru, build(r)) {
					t.Errorf("%s %s (host %q, headers %v) does not match, want a match", r.method, r.target, r.host, r.header)
				}
			}
			for _, r := range tt.miss {
				if matchRequest(ru, build(r)) {
					t.Errorf("%s %s (host %q, headers %v) matches, want none", r.method, r.target, r.host, r.header)
				}
			}
		})
	}
}

// The table of Gateway API's HTTPPathModifier documentation, row by row.
func TestReplacePrefix(t *testing.T) {
	tests := []struct{ path, prefix, repl, want string }{
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		{"/a/b", "/", "/x", "/x/a/b"},
	}
	for _, tt := range tests {
		if got := replacePrefix(tt.path, trimPrefix(tt.prefix), tt.repl); got != tt.want {
			t.Errorf("replacePrefix(%q, prefix %q, %q) = %q, want %q", tt.path, tt.prefix, tt.repl, got, tt.want)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	full := func(v string) *PathModifier { return &PathModifier{Type: ReplaceFullPath, Value: v} }
	tests := []struct {
		name   string
		rd     Redirect
		lport  int
		lproto Protocol
		target string
		want   string
	}{
		{"defaults keep scheme, host, listener port", Redirect{}, 8080, ProtocolHTTP, "/p?q=1", "http://host.test:8080/p?q=1"},
		{"well-known listener port left out", Redirect{}, 80, ProtocolHTTP, "/p", "http://host.test/p"},
		{"scheme https derives 443", Redirect{Scheme: "https"}, 8080, ProtocolHTTP, "/p", "https://host.test/p"},
		{"scheme http derives 80", Redirect{Scheme: "http"}, 8443, ProtocolHTTPS, "/p", "http://host.test/p"},
		{"explicit port kept", Redirect{Scheme: "https", Port: 8443}, 80, ProtocolHTTP, "/p", "https://host.test:8443/p"},
		{"explicit well-known port left out", Redirect{Port: 80}, 8080, ProtocolHTTP, "/p", "http://host.test/p"},
		{"https listener port 443 left out", Redirect{}, 443, ProtocolHTTPS, "/p", "https://host.test/p"},
		{"hostname and full path", Redirect{Hostname: "other.test", Path: full("/new")}, 80, ProtocolHTTP, "/old/x", "http://other.test/new"},
		{"prefix replaced", Redirect{Path: &PathModifier{Type: ReplacePrefixMatch, Value: "/v2"}}, 80, ProtocolHTTP, "/v1/x?y", "http://host.test/v2/x?y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &listener{port: tt.lport, proto: tt.lproto, scheme: strings.ToLower(string(tt.lproto))}
			r := httptest.NewRequest("GET", "http://host.test"+tt.target, nil)
			got := redirectLocation(&tt.rd, l, r, "host.test", r.URL.EscapedPath(), "/v1")
			if got != tt.want {
				t.Errorf("Location = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	ok := Action{FixedResponse: &FixedResponse{StatusCode: 200}}
	listener := func(r Rule) Config {
		return Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: ok}, r}}}}
	}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"bad port", Config{Listeners: []Listener{{Port: 0, Protocol: ProtocolHTTP}}}, "listeners[0].port"},
		{"duplicate port", Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP}, {Port: 80, Protocol: ProtocolHTTP}}}, "listeners[1].port"},
		{"bad protocol", Config{Listeners: []Listener{{Port: 80, Protocol: "SCTP"}}}, "listeners[0].protocol"},
		{"https without certificate", Config{Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS}}}, "listeners[0].certificates"},
		{"bad certificate", Config{Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS, Certificates: []Certificate{{CertPEM: []byte("x"), KeyPEM: []byte("y")}}}}}, "listeners[0].certificates[0]"},
		{"scopes on HTTP", Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, HostnameScopes: []string{"a.test"}}}}, "listeners[0].hostnameScopes"},
		{"bad scope", Config{Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS, HostnameScopes: []string{"a.test", "*.."}}}}, "listeners[0].hostnameScopes[1]"},
		{"scope twice", Config{Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS, HostnameScopes: []string{"*.a.test", "*.A.test"}}}}, "listeners[0].hostnameScopes[1]"},
		{"bad regex", listener(Rule{Path: &PathMatch{Type: MatchRegex, Value: "("}, Action: ok}), "listeners[0].rules[1].path.value"},
		{"path without slash", listener(Rule{Path: &PathMatch{Type: MatchPrefix, Value: "foo"}, Action: ok}), "listeners[0].rules[1].path.value"},
		{"bad path type", listener(Rule{Path: &PathMatch{Type: "Glob", Value: "/"}, Action: ok}), "listeners[0].rules[1].path.type"},
		{"bad header name", listener(Rule{Headers: []HeaderMatch{{Name: "a b", Type: MatchExact}}, Action: ok}), "listeners[0].rules[1].headers[0].name"},
		{"bad header regex", listener(Rule{Headers: []HeaderMatch{{Name: "a", Type: MatchRegex, Value: "["}}, Action: ok}), "listeners[0].rules[1].headers[0].value"},
		{"bad host", listener(Rule{Hosts: []string{"a..b"}, Action: ok}), "listeners[0].rules[1].hosts[0]"},
		{"two actions", listener(Rule{Action: Action{FixedResponse: ok.FixedResponse, Redirect: &Redirect{}}}), "listeners[0].rules[1].action"},
		{"no action", listener(Rule{}), "listeners[0].rules[1].action"},
		{"unknown target group", listener(Rule{Action: Action{Forward: &Forward{Backends: []Backend{{TargetGroup: "nope", Weight: 1}}}}}), "listeners[0].rules[1].action.forward.backends[0].targetGroup"},
		{"negative weight", listener(Rule{Action: Action{Forward: &Forward{Backends: []Backend{{Weight: -1}}}}}), "listeners[0].rules[1].action.forward.backends[0].weight"},
		{"redirect code", listener(Rule{Action: Action{Redirect: &Redirect{StatusCode: 200}}}), "listeners[0].rules[1].action.redirect.statusCode"},
		{"prefix rewrite without prefix match", listener(Rule{Path: &PathMatch{Type: MatchExact, Value: "/a"}, Action: Action{Forward: &Forward{}, Rewrite: &Rewrite{Path: &PathModifier{Type: ReplacePrefixMatch, Value: "/b"}}}}), "listeners[0].rules[1].action.rewrite.path.type"},
		{"rewrite on redirect", listener(Rule{Action: Action{Redirect: &Redirect{}, Rewrite: &Rewrite{Hostname: "a"}}}), "listeners[0].rules[1].action"},
		{"backend timeout over request timeout", listener(Rule{Action: Action{Forward: &Forward{}, Timeouts: Timeouts{Request: 1, BackendRequest: 2}}}), "listeners[0].rules[1].action.timeouts.backendRequest"},
		{"mirror percent", listener(Rule{Action: Action{Forward: &Forward{}, Mirrors: []Mirror{{TargetGroup: "tg", Percent: 101}}}}), "listeners[0].rules[1].action.mirrors[0].percent"},
		{"header edit value", listener(Rule{Action: Action{Forward: &Forward{}, RequestHeaders: HeaderEdit{Set: []Header{{"X", "a\nb"}}}}}), "listeners[0].rules[1].action.requestHeaders.set[0].value"},
		{"fixed status", listener(Rule{Action: Action{FixedResponse: &FixedResponse{StatusCode: 99}}}), "listeners[0].rules[1].action.fixedResponse.statusCode"},
		{"transform type", listener(Rule{Action: Action{Forward: &Forward{}, Transforms: []Transform{{Type: "path-rewrite", Regex: "a"}}}}), "listeners[0].rules[1].action.transforms[0].type"},
		{"transform regex", listener(Rule{Action: Action{Forward: &Forward{}, Transforms: []Transform{{Type: TransformURL, Regex: "(?=a)"}}}}), "listeners[0].rules[1].action.transforms[0].regex"},
		{"transform group", listener(Rule{Action: Action{Forward: &Forward{}, Transforms: []Transform{{Type: TransformURL, Regex: "^/(a)", Replace: "/$2"}}}}), "listeners[0].rules[1].action.transforms[0].replace"},
		{"transform lone $", listener(Rule{Action: Action{Forward: &Forward{}, Transforms: []Transform{{Type: TransformHost, Regex: "a", Replace: "${a}"}}}}), "listeners[0].rules[1].action.transforms[0].replace"},
		{"url transform and path rewrite", listener(Rule{Path: &PathMatch{Type: MatchPrefix, Value: "/a"}, Action: Action{Forward: &Forward{}, Rewrite: &Rewrite{Path: &PathModifier{Type: ReplacePrefixMatch, Value: "/x"}}, Transforms: []Transform{{Type: TransformURL, Regex: "^/a", Replace: "/"}}}}), "listeners[0].rules[1].action.rewrite.path"},
		{"host transform and hostname rewrite", listener(Rule{Action: Action{Forward: &Forward{}, Rewrite: &Rewrite{Hostname: "h.test"}, Transforms: []Transform{{Type: TransformHost, Regex: "a", Replace: "b"}}}}), "listeners[0].rules[1].action.rewrite.hostname"},
		{"two host transforms", listener(Rule{Action: Action{Forward: &Forward{}, Transforms: []Transform{{Type: TransformHost, Regex: "a"}, {Type: TransformHost, Regex: "b"}}}}), "listeners[0].rules[1].action.transforms[1].type"},
		{"transform on fixed response", listener(Rule{Action: Action{FixedResponse: ok.FixedResponse, Transforms: []Transform{{Type: TransformHost, Regex: "a"}}}}), "listeners[0].rules[1].action"},
		{"target group protocol", Config{TargetGroups: []TargetGroup{{Name: "tg", Protocol: "SCTP"}}}, "targetGroups[0].protocol"},
		{"target without port", Config{TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolHTTP, Targets: []Target{{State: StateHealthy}}}}}, "targetGroups[0].targets[0].addr"},
		{"target state", Config{TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolHTTP, Targets: []Target{{Addr: addrPort("10.0.0.1:80"), State: "fine"}}}}}, "targetGroups[0].targets[0].state"},
		{"duplicate group", Config{TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolHTTP}, {Name: "tg", Protocol: ProtocolHTTP}}}, "targetGroups[1].name"},
		{"tls on http group", Config{TargetGroups: []TargetGroup{{Name: "tg", Protocol: ProtocolH2C, TLS: &BackendTLS{}}}}, "targetGroups[0].tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.cfg)
			if err == nil {
				t.Fatalf("Validate accepted the config, want an error at %s", tt.field)
			}
			found := false
			for _, e := range unjoin(err) {
				var ce *ConfigError
				if errors.As(e, &ce) && ce.Field == tt.field {
					found = true
				}
			}
			if !found {
				t.Errorf("errors %q name no field %s", err, tt.field)
			}
		})
	}
	if err := Validate(listener(Rule{Action: ok})); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestHostPatternQueryValue(t *testing.T) {
	q, _ := url.ParseQuery("a=1&a=2&b=")
	if v, ok := queryValue(q, "a"); !ok || v != "1" {
		t.Errorf("queryValue(a) = %q, %v; want the first value", v, ok)
	}
	if v, ok := queryValue(q, "b"); !ok || v != "" {
		t.Errorf("queryValue(b) = %q, %v; want present and empty", v, ok)
	}
	if _, ok := queryValue(q, "c"); ok {
		t.Error("queryValue(c) present, want absent")
	}
}

// TestRuleIndex: the indexed match picks the same rule as evaluating every rule in order, over
// random tables of exact, prefix, regex and pathless rules (some with a method) and paths
// that hit, miss and straddle them.
func TestRuleIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "ab", "c"}
	randPath := func() string {
		p := ""
		for range rng.IntN(4) {
			p += "/" + segs[rng.IntN(len(segs))]
		}
		if p == "" || rng.IntN(5) == 0 {
			p += "/"
		}
		return p
	}
	for table := range 200 {
		var rules []Rule
		for i := range 1 + rng.IntN(30) {
			r := Rule{Name: fmt.Sprint("r", i), Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}}
			switch rng.IntN(4) {
			case 0:
				r.Path = &PathMatch{Type: MatchExact, Value: randPath()}
			case 1:
				r.Path = &PathMatch{Type: MatchPrefix, Value: randPath()}
			case 2:
				r.Path = &PathMatch{Type: MatchRegex, Value: "/a.*"}
			}
			if rng.IntN(4) == 0 {
				r.Method = http.MethodPost
			}
			rules = append(rules, r)
		}
		s, _, err := compile(Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: rules}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l := s.listeners[portKey{port: 80}]
		for range 50 {
			path := randPath()
			method := http.MethodGet
			if rng.IntN(2) == 0 {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, "http://h.test"+path, nil)
			var want *rule
			for _, cand := range l.rules {
				if cand.matches(r, "h.test", path, r.URL.Query) {
					want = cand
					break
				}
			}
			if got := l.match(r, "h.test", path); got != want {
				t.Fatalf("table %d, %s %s: indexed match %v, every rule in order %v", table, method, path, ruleName(got), ruleName(want))
			}
		}
	}
}

// TestRuleIndexDeepPath: a path with more prefix candidates than the index merges falls back
// to evaluating every rule, with the same answer.
func TestRuleIndexDeepPath(t *testing.T) {
	var rules []Rule
	p := ""
	for i := range 2 * maxCandidateLists {
		p += "/a"
		rules = append(rules, Rule{Name: fmt.Sprint("deep", i), Method: http.MethodPost, Path: &PathMatch{Type: MatchPrefix, Value: p},
			Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}})
	}
	rules = append(rules, Rule{Name: "last", Path: &PathMatch{Type: MatchPrefix, Value: "/a/a/a"},
		Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}})
	s, _, err := compile(Config{Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: rules}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lists [maxCandidateLists][]int32
	if _, ok := s.listeners[portKey{port: 80}].index.candidates(p, &lists); ok {
		t.Fatalf("%d segments fit in %d lists", 2*maxCandidateLists, maxCandidateLists)
	}
	r := httptest.NewRequest(http.MethodGet, "http://h.test"+p, nil)
	if got := s.listeners[portKey{port: 80}].match(r, "h.test", p); ruleName(got) != "last" {
		t.Errorf("deep GET matched %s, want last", ruleName(got))
	}
}

func ruleName(r *rule) string {
	if r == nil {
		return "none"
	}
	return r.name
}
