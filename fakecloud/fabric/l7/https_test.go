package l7

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
)

// HTTPS listeners: certificates by SNI, ALPN, and misdirected requests.

func TestSNIAndALPN(t *testing.T) {
	b := startEcho(t, "b", false)
	exactC, exactK := selfSigned(t, "exact.example.com")
	wildC, wildK := selfSigned(t, "wild")
	deepC, deepK := selfSigned(t, "deep")
	defC, defK := selfSigned(t, "default.test")
	e := newEngine(t, Options{})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, b.addr)},
		Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS,
			Certificates: []Certificate{
				{Name: "wild", CertPEM: wildC, KeyPEM: wildK, Hostnames: []string{"*.example.com"}},
				{Name: "exact", CertPEM: exactC, KeyPEM: exactK}, // hostnames from the certificate
				{Name: "deep", CertPEM: deepC, KeyPEM: deepK, Hostnames: []string{"*.deep.example.com"}},
				{Name: "default", CertPEM: defC, KeyPEM: defK, Default: true},
			},
			Rules: []Rule{{Action: forwardTo("tg")}}}},
	})
	addr := e.Addr(443).String()
	for sni, want := range map[string]string{
		"exact.example.com": "exact.example.com", "EXACT.example.com": "exact.example.com",
		"a.example.com": "wild", "x.y.example.com": "wild", "a.deep.example.com": "deep",
		"example.com": "default.test", "other.test": "default.test", "": "default.test",
	} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificates
		if err != nil {
			t.Fatalf("SNI %q: %v", sni, err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != want {
			t.Errorf("SNI %q got certificate %q, want %q", sni, got, want)
		}
		_ = conn.Close()
	}
	for _, h2 := range []bool{true, false} {
		var protos http.Protocols
		protos.SetHTTP1(!h2)
		protos.SetHTTP2(h2)
		c := &http.Client{Transport: &http.Transport{Protocols: &protos,
			TLSClientConfig: &tls.Config{ServerName: "a.example.com", InsecureSkipVerify: true}}} //nolint:gosec // test certificates
		resp, ec, _ := do(t, c, get(t, "https://"+addr+"/x", "a.example.com", nil))
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		if resp.Proto != want || ec.Headers.Get("X-Forwarded-Proto") != "https" || ec.Headers.Get("X-Forwarded-Port") != "443" {
			t.Errorf("h2=%v: client spoke %s, backend saw %v", h2, resp.Proto, ec.Headers)
		}
	}
}

// TestMisdirectedRequests: an HTTPS listener with hostname scopes answers 421 to a request
// whose Host falls in another scope than the connection's SNI name (the cases of Gateway API's
// HTTPRouteHTTPSListenerDetectMisdirectedRequests), over HTTP/2 and HTTP/1.1; without scopes,
// or without an SNI name, nothing is checked.
func TestMisdirectedRequests(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "example.org", "*.example.org", "*.wildcard.org")
	fixedRule := func(body string, hosts ...string) Rule {
		return Rule{Hosts: hosts, Action: Action{FixedResponse: &FixedResponse{StatusCode: 200, Body: body}}}
	}
	rules := []Rule{
		// Listener isolation as the controller builds it: each scope's rules, then a 404 for it.
		fixedRule("v4", "fourth-example.wildcard.org"),
		{Hosts: []string{"fourth-example.wildcard.org"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
		fixedRule("v2", "second-example.org"),
		{Hosts: []string{"second-example.org"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
		fixedRule("v3", "*.wildcard.org"),
		{Hosts: []string{"*.wildcard.org"}, Action: Action{FixedResponse: &FixedResponse{StatusCode: 404}}},
		fixedRule("v1", "example.org"),
	}
	scopes := []string{"second-example.org", "*.wildcard.org", "Fourth-Example.wildcard.org"}
	e := newEngine(t, Options{})
	apply(t, e, Config{Listeners: []Listener{
		{Port: 443, Protocol: ProtocolHTTPS, Certificates: []Certificate{{CertPEM: certPEM, KeyPEM: keyPEM}}, HostnameScopes: scopes, Rules: rules},
		{Port: 8443, Protocol: ProtocolHTTPS, Certificates: []Certificate{{CertPEM: certPEM, KeyPEM: keyPEM}}, Rules: rules},
	}})
	cases := []struct {
		sni, host string
		code      int
		body      string
	}{
		{"example.org", "example.org", 200, "v1"},
		{"example.org", "second-example.org", 421, ""},
		{"example.org", "unknown-example.org", 404, ""},
		{"second-example.org", "second-example.org", 200, "v2"},
		{"second-example.org", "example.org", 421, ""},
		{"second-example.org", "unknown-example.org", 421, ""},
		{"third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"},
		{"third-example.wildcard.org", "fith-example.wildcard.org:443", 200, "v3"},
		{"third-example.wildcard.org", "fourth-example.wildcard.org", 421, ""},
		{"third-example.wildcard.org", "second-example.org", 421, ""},
		{"fourth-example.wildcard.org", "FOURTH-example.wildcard.org", 200, "v4"},
		{"fourth-example.wildcard.org", "fith-example.wildcard.org", 421, ""},
		{"unknown-example.org", "example.org", 200, "v1"},
		{"unknown-example.org", "unknown-example.org", 404, ""},
		{"", "second-example.org", 200, "v2"}, // no SNI name: nothing to compare
	}
	for _, h2 := range []bool{true, false} {
		var protos http.Protocols
		protos.SetHTTP1(!h2)
		protos.SetHTTP2(h2)
		for _, port := range []int{443, 8443} {
			for _, tc := range cases {
				c := &http.Client{Transport: &http.Transport{Protocols: &protos,
					TLSClientConfig: &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true}}} //nolint:gosec // test certificate
				resp, _, body := do(t, c, get(t, base(t, e, port, "https")+"/detect", tc.host, nil))
				code, want := resp.StatusCode, tc.code
				if port == 8443 && want == 421 { // no scopes: routed by Host alone
					want = 200
					if strings.HasPrefix(tc.host, "unknown") {
						want = 404
					}
				}
				if code != want || (want == 200 && port == 443 && body != tc.body) {
					t.Errorf("h2=%v port %d SNI %q Host %q: %d %q, want %d %q", h2, port, tc.sni, tc.host, code, body, want, tc.body)
				}
				c.CloseIdleConnections()
			}
		}
	}
}
