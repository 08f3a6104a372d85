package l7

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// startTLSNamed serves, over TLS with its own certificate for names, "<who> <peer>" and returns
// its address and the certificate's pool.
func startTLSNamed(t *testing.T, who string, names ...string) (netip.AddrPort, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM := selfSigned(t, names...)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, who+" "+r.RemoteAddr)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.StartTLS()
	t.Cleanup(s.Close)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return netip.MustParseAddrPort(s.Listener.Addr().String()), pool
}

// startTCPEcho echoes what it reads until the client half-closes, then closes.
func startTCPEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	return rawTarget(t, func(c net.Conn, br *bufio.Reader) { _, _ = io.Copy(c, br) })
}

// getOverTLS dials addr with serverName as SNI, trusting pool, and GETs /: the body, or the error.
func getOverTLS(addr, serverName string, pool *x509.CertPool) (string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: serverName, RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestPassthrough: a TLS listener routes by SNI to targets that terminate TLS with their own
// certificates, refuses a name no rule takes, sends a ClientHello without SNI to a rule
// without hosts; a TCP listener splices to its target, half-close included.
func TestPassthrough(t *testing.T) {
	a, poolA := startTLSNamed(t, "a", "a.example.com")
	b, poolB := startTLSNamed(t, "b", "*.b.example.com")
	d, poolD := startTLSNamed(t, "d", "default.example.com")
	echo := startTCPEcho(t)
	e := newEngine(t, Options{})
	cfg := Config{
		TargetGroups: []TargetGroup{tgroup("ga", ProtocolTCP, a), tgroup("gb", ProtocolTCP, b), tgroup("gd", ProtocolTCP, d), tgroup("echo", ProtocolTCP, echo)},
		Listeners: []Listener{
			{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{
				{Name: "a", Hosts: []string{"a.example.com"}, Action: forwardTo("ga")},
				{Name: "b", Hosts: []string{"*.b.example.com"}, Action: forwardTo("gb")},
			}},
			{Port: 5432, Protocol: ProtocolTCP, Rules: []Rule{{Name: "echo", Action: forwardTo("echo")}}},
		},
	}
	apply(t, e, cfg)
	tlsAddr := e.Addr(443).String()
	for _, tc := range []struct {
		sni, want string
		pool      *x509.CertPool
	}{{"a.example.com", "a ", poolA}, {"A.Example.com", "a ", poolA}, {"x.b.example.com", "b ", poolB}} {
		body, err := getOverTLS(tlsAddr, tc.sni, tc.pool)
		if err != nil || !strings.HasPrefix(body, tc.want) {
			t.Errorf("SNI %s: got %q, %v; want %q from the target's own certificate", tc.sni, body, err, tc.want)
		}
	}
	// The target's peer is the engine's dial: here loopback, in the fabric the VIP.
	if body, _ := getOverTLS(tlsAddr, "a.example.com", poolA); !strings.Contains(body, "127.0.0.1:") {
		t.Errorf("peer %q", body)
	}
	if body, err := getOverTLS(tlsAddr, "c.example.com", poolA); err == nil {
		t.Errorf("a name no rule takes was served: %q", body)
	}
	if body, err := getOverTLS(tlsAddr, "", poolD); err == nil {
		t.Errorf("a ClientHello without SNI was served without a default: %q", body)
	}
	// A rule without hosts takes what the others do not, a ClientHello without SNI included.
	cfg.Listeners[0].Rules = append(cfg.Listeners[0].Rules, Rule{Name: "default", Action: forwardTo("gd")})
	apply(t, e, cfg)
	for _, sni := range []string{"default.example.com", ""} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: poolD, MinVersion: tls.VersionTLS12, InsecureSkipVerify: sni == ""}} //nolint:gosec // no name to verify
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + tlsAddr + "/")
		if err != nil {
			t.Errorf("SNI %q with a default: %v", sni, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
		if !strings.HasPrefix(string(body), "d ") {
			t.Errorf("SNI %q with a default: got %q", sni, body)
		}
	}
	// TCP: bytes both ways and the half-close passed on.
	c, err := net.Dial("tcp", e.Addr(5432).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "ping" {
		t.Errorf("TCP echo: got %q, %v", got, err)
	}
}

func TestPassthroughConfigErrors(t *testing.T) {
	tcp, web := tgroup("tcp", ProtocolTCP), tgroup("web", ProtocolHTTP)
	for name, tc := range map[string]struct {
		l    Listener
		says string
	}{
		"path on TLS":       {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Path: &PathMatch{Type: MatchExact, Value: "/"}, Action: forwardTo("tcp")}}}, "sees no requests"},
		"TLS to HTTP group": {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Action: forwardTo("web")}}}, "forwards to TCP groups"},
		"redirect on TLS":   {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Action: Action{Redirect: &Redirect{StatusCode: 301}}}}}, "forward only"},
		"TCP with hosts":    {Listener{Port: 22, Protocol: ProtocolTCP, Rules: []Rule{{Hosts: []string{"a.example.com"}, Action: forwardTo("tcp")}}}, "exactly one rule"},
		"TLS with a cert":   {Listener{Port: 443, Protocol: ProtocolTLS, Certificates: []Certificate{{Name: "x"}}, Rules: []Rule{{Action: forwardTo("tcp")}}}, "takes no certificates"},
		"HTTP to TCP group": {Listener{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tcp")}}}, "is a TCP group"},
		"unknown protocol":  {Listener{Port: 80, Protocol: "SCTP"}, "HTTP, HTTPS, TLS, TCP or UDP"},
	} {
		err := Validate(Config{Listeners: []Listener{tc.l}, TargetGroups: []TargetGroup{tcp, web}})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want %q", name, err, tc.says)
		}
	}
}
