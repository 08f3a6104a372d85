package l7

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// TestCORS: a rule's CORS policy answers preflights itself (204 with the policy's headers to an
// allowed origin, exact or by a wildcard of one or more labels; 403 without them to another),
// never forwarding them; forwarded answers, fixed responses and redirects to an allowed
// origin carry Access-Control-Allow-Origin (the origin), -Expose-Headers and, with
// credentials, -Allow-Credentials, replacing the target's; other origins get none. "*" methods
// and headers echo what the preflight asks for.
func TestCORS(t *testing.T) {
	target := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://target.example") // replaced
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("Vary", "origin, Accept-Encoding") // not doubled
		w.WriteHeader(http.StatusOK)
	})
	gone := func() netip.AddrPort { // nothing listens: the engine answers 502
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return netip.MustParseAddrPort(ln.Addr().String())
	}()
	e := newEngine(t, Options{})
	strict := &CORS{AllowOrigins: []string{"https://www.foo.com:443", "https://*.bar.com", "http://local.test:8080"}, AllowMethods: []string{"GET", "OPTIONS"},
		AllowHeaders: []string{"x-header-1", "x-header-2"}, ExposeHeaders: []string{"x-header-3"}, AllowCredentials: true, MaxAge: 3600}
	open := &CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}
	anyHTTPS := &CORS{AllowOrigins: []string{"https://*"}, ExposeHeaders: []string{"*"}, AllowCredentials: true}
	fwdStrict, fwdOpen, fwdHTTPS, fwdGone := forwardTo("web"), forwardTo("web"), forwardTo("web"), forwardTo("gone")
	fwdStrict.CORS, fwdOpen.CORS, fwdHTTPS.CORS, fwdGone.CORS = strict, open, anyHTTPS, strict
	fixed := Action{FixedResponse: &FixedResponse{StatusCode: 200, Body: "fixed"}, CORS: strict}
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("web", ProtocolHTTP, target), tgroup("gone", ProtocolHTTP, gone)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Name: "strict", Path: &PathMatch{Type: MatchPrefix, Value: "/strict"}, Action: fwdStrict},
			{Name: "open", Path: &PathMatch{Type: MatchPrefix, Value: "/open"}, Action: fwdOpen},
			{Name: "fixed", Path: &PathMatch{Type: MatchPrefix, Value: "/fixed"}, Action: fixed},
			{Name: "https", Path: &PathMatch{Type: MatchPrefix, Value: "/https"}, Action: fwdHTTPS},
			{Name: "gone", Path: &PathMatch{Type: MatchPrefix, Value: "/gone"}, Action: fwdGone},
		}}},
	})
	root := base(t, e, 80, "http")
	send := func(method, path string, hdr map[string]string) *http.Response {
		req, err := http.NewRequest(method, root+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	want := func(what string, resp *http.Response, code int, headers map[string]string) {
		t.Helper()
		if resp.StatusCode != code {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, code)
		}
		for k, v := range headers {
			if got := strings.Join(resp.Header.Values(k), ","); got != v {
				t.Errorf("%s: %s is %q, want %q", what, k, got, v)
			}
		}
	}
	preflight := func(path, origin, method, headers string) *http.Response {
		h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			h["Access-Control-Request-Headers"] = headers
		}
		return send(http.MethodOptions, path, h)
	}
	allowed := map[string]string{"Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Allow-Headers": "x-header-1, x-header-2",
		"Access-Control-Expose-Headers": "x-header-3", "Access-Control-Max-Age": "3600", "Access-Control-Allow-Credentials": "true",
		"Vary": "Origin,Access-Control-Request-Method,Access-Control-Request-Headers", "X-Method": ""}
	for _, origin := range []string{"https://www.foo.com", "https://WWW.bar.com", "https://a.b.bar.com", "http://local.test:8080"} {
		h := map[string]string{"Access-Control-Allow-Origin": origin}
		for k, v := range allowed {
			h[k] = v
		}
		want("preflight from "+origin, preflight("/strict", origin, "GET", "x-header-1"), http.StatusNoContent, h)
	}
	for _, origin := range []string{"https://foobar.com", "https://bar.com", "http://www.foo.com", "https://www.foo.com:8443", "http://local.test", "null"} {
		want("preflight from "+origin, preflight("/strict", origin, "GET", ""), http.StatusForbidden,
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "X-Method": ""})
	}
	// An OPTIONS that is no preflight (no Access-Control-Request-Method) is forwarded.
	want("plain OPTIONS", send(http.MethodOptions, "/strict", map[string]string{"Origin": "https://www.foo.com"}), http.StatusOK,
		map[string]string{"X-Method": "OPTIONS", "Access-Control-Allow-Origin": "https://www.foo.com"})
	want("GET from an allowed origin", send(http.MethodGet, "/strict", map[string]string{"Origin": "https://www.foo.com"}), http.StatusOK,
		map[string]string{"X-Method": "GET", "Access-Control-Allow-Origin": "https://www.foo.com", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers": "x-header-3", "Vary": "origin, Accept-Encoding", "Access-Control-Max-Age": ""})
	want("GET from another origin", send(http.MethodGet, "/strict", map[string]string{"Origin": "https://foobar.com"}), http.StatusOK,
		map[string]string{"X-Method": "GET", "Access-Control-Allow-Origin": "https://target.example", "Access-Control-Allow-Credentials": ""})
	want("GET without an Origin", send(http.MethodGet, "/strict", nil), http.StatusOK,
		map[string]string{"Access-Control-Allow-Origin": "https://target.example", "Vary": "origin, Accept-Encoding"})
	want("502 to an allowed origin", send(http.MethodGet, "/gone", map[string]string{"Origin": "https://www.foo.com"}), http.StatusBadGateway,
		map[string]string{"Access-Control-Allow-Origin": "https://www.foo.com", "Vary": "Origin"})
	want("fixed response to an allowed origin", send(http.MethodGet, "/fixed", map[string]string{"Origin": "https://x.bar.com"}), http.StatusOK,
		map[string]string{"Access-Control-Allow-Origin": "https://x.bar.com", "Access-Control-Allow-Credentials": "true"})
	// "*": any origin (echoed), the method and headers asked for, no credentials.
	want("open preflight", preflight("/open", "https://any.example:12345", "PUT", "x-a, x-b"), http.StatusNoContent,
		map[string]string{"Access-Control-Allow-Origin": "https://any.example:12345", "Access-Control-Allow-Methods": "PUT",
			"Access-Control-Allow-Headers": "x-a, x-b", "Access-Control-Allow-Credentials": "", "Access-Control-Max-Age": "5"})
	// scheme://*: any host of the scheme, no port.
	// With credentials, "*" exposed stands for the answer's own header names.
	want("https://* from https", send(http.MethodGet, "/https", map[string]string{"Origin": "https://x.y.example"}), http.StatusOK,
		map[string]string{"Access-Control-Allow-Origin": "https://x.y.example", "Access-Control-Expose-Headers": "Content-Length, Date, X-Method"})
	want("https://* from http", send(http.MethodGet, "/https", map[string]string{"Origin": "http://x.y.example"}), http.StatusOK,
		map[string]string{"Access-Control-Allow-Origin": "https://target.example"})
	want("open PUT", send(http.MethodPut, "/open", map[string]string{"Origin": "https://any.example"}), http.StatusOK,
		map[string]string{"X-Method": "PUT", "Access-Control-Allow-Origin": "https://any.example", "Access-Control-Allow-Credentials": ""})
}

// TestCORSConfigErrors: each bad field of a CORS policy is named.
func TestCORSConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cors CORS
		says string
	}{
		"no origins":         {CORS{}, "cors.allowOrigins: is empty"},
		"origin with a path": {CORS{AllowOrigins: []string{"https://a.example/x"}}, "cors.allowOrigins[0]"},
		"origin no scheme":   {CORS{AllowOrigins: []string{"a.example"}}, "cors.allowOrigins[0]"},
		"wildcard mid-host":  {CORS{AllowOrigins: []string{"https://a.*.example"}}, "cors.allowOrigins[0]"},
		"bad port":           {CORS{AllowOrigins: []string{"https://a.example:0"}}, "cors.allowOrigins[0]"},
		"bad method":         {CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"GE T"}}, "cors.allowMethods[0]"},
		"bad header":         {CORS{AllowOrigins: []string{"*"}, AllowHeaders: []string{"x:y"}}, "cors.allowHeaders[0]"},
		"bad expose header":  {CORS{AllowOrigins: []string{"*"}, ExposeHeaders: []string{""}}, "cors.exposeHeaders[0]"},
		"max age too long":   {CORS{AllowOrigins: []string{"*"}, MaxAge: 86401}, "cors.maxAge"},
		"negative max age":   {CORS{AllowOrigins: []string{"*"}, MaxAge: -1}, "cors.maxAge"},
	} {
		a := forwardTo("web")
		a.CORS = &tc.cors
		err := Validate(Config{TargetGroups: []TargetGroup{tgroup("web", ProtocolHTTP)}, Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: a}}}}})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want an error naming %s", name, err, tc.says)
		}
	}
	a := forwardTo("tcp")
	a.CORS = &CORS{AllowOrigins: []string{"*"}}
	if err := Validate(Config{TargetGroups: []TargetGroup{tgroup("tcp", ProtocolTCP)}, Listeners: []Listener{{Port: 5432, Protocol: ProtocolTCP, Rules: []Rule{{Action: a}}}}}); err == nil || !strings.Contains(err.Error(), "CORS") {
		t.Errorf("CORS on a TCP listener: %v", err)
	}
}
