package l7

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority for HTTPS targets.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "flatnet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a server certificate for DNS names and URIs.
func (ca testCA) leaf(t testing.TB, names []string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "target"}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startTLSTarget serves "ok" over TLS (h2 and HTTP/1.1) with cert and reports each
// handshake's SNI name on the channel it returns.
func startTLSTarget(t testing.TB, cert tls.Certificate) (netip.AddrPort, <-chan string) {
	t.Helper()
	sni := make(chan string, 16)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		select {
		case sni <- hello.ServerName:
		default:
		}
		return nil, nil
	}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return netip.MustParseAddrPort(s.Listener.Addr().String()), sni
}

// TestBackendTLSVerification: an HTTPS group with BackendTLS verifies its targets: the chain
// against CAPEM, then ServerName or, when set, one of SubjectAltNames; ServerName is the SNI
// either way. A target that fails verification is a 502 whose access-log line says why.
func TestBackendTLSVerification(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	web := ca.leaf(t, []string{"web.example.com"})
	wild := ca.leaf(t, []string{"*.svc.example.com"})
	spiffe := ca.leaf(t, []string{"pod.internal"}, "spiffe://cluster.local/ns/web/sa/app")
	foreign := other.leaf(t, []string{"web.example.com"})
	host := func(v string) SubjectAltName { return SubjectAltName{Type: SANHostname, Value: v} }
	uri := func(v string) SubjectAltName { return SubjectAltName{Type: SANURI, Value: v} }
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		tls    BackendTLS
		status int
		reason string // in the access log's err when verification fails
	}{
		{"right CA and server name", web, BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem}, 200, ""},
		{"wrong CA", foreign, BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem}, 502, "certificate signed by unknown authority"},
		{"server name not in the certificate", web, BackendTLS{ServerName: "api.example.com", CAPEM: ca.pem}, 502, "not api.example.com"},
		{"server name matches a wildcard", wild, BackendTLS{ServerName: "a.svc.example.com", CAPEM: ca.pem}, 200, ""},
		{"an alt name though not the server name", web,
			BackendTLS{ServerName: "sni.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{host("api.example.com"), host("web.example.com")}}, 200, ""},
		{"an alt name matched by the certificate's wildcard", wild,
			BackendTLS{ServerName: "sni.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{host("b.svc.example.com")}}, 200, ""},
		{"a wildcard alt name held as written", wild,
			BackendTLS{ServerName: "sni.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{host("*.svc.example.com")}}, 200, ""},
		{"alt names replace the server name", web,
			BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{host("api.example.com"), uri("spiffe://cluster.local/ns/web/sa/app")}},
			502, "holds none of the subject alternative names Hostname api.example.com, URI spiffe://cluster.local/ns/web/sa/app"},
		{"URI alt name", spiffe,
			BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{uri("spiffe://cluster.local/ns/web/sa/app")}}, 200, ""},
		{"URI alt name not held", spiffe,
			BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{uri("spiffe://cluster.local/ns/web/sa/other")}}, 502, "holds none"},
		{"alt names with the wrong CA", foreign,
			BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem, SubjectAltNames: []SubjectAltName{host("web.example.com")}}, 502, "certificate signed by unknown authority"},
		{"alt names against the system roots", web,
			BackendTLS{ServerName: "web.example.com", SubjectAltNames: []SubjectAltName{host("web.example.com")}}, 502, "failed to verify certificate"},
		{"not verified", foreign, BackendTLS{ServerName: "web.example.com", InsecureSkipVerify: true}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, sni := startTLSTarget(t, tc.cert)
			var logBuf syncBuffer
			e := newEngine(t, Options{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
			tg := tgroup("tls", ProtocolHTTPS, addr)
			tg.TLS = &tc.tls
			apply(t, e, Config{
				TargetGroups: []TargetGroup{tg},
				Listeners:    []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Name: "r", Action: forwardTo("tls")}}}},
			})
			resp, _, body := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+"/", "", nil))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			select {
			case got := <-sni:
				if got != tc.tls.ServerName {
					t.Errorf("the target saw SNI %q, want %q", got, tc.tls.ServerName)
				}
			case <-time.After(5 * time.Second):
				t.Error("the target saw no handshake")
			}
			if tc.reason == "" {
				return
			}
			line := accessLogLine(t, &logBuf)
			if line["status"] != float64(502) || !strings.Contains(line["err"].(string), tc.reason) {
				t.Errorf("access log line %v, want status 502 and an err saying %q", line, tc.reason)
			}
		})
	}
}

// accessLogLine waits for the access log's first line and decodes it.
func accessLogLine(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s, _, ok := strings.Cut(buf.String(), "\n"); ok {
			var line map[string]any
			if err := json.Unmarshal([]byte(s), &line); err != nil {
				t.Fatal(err)
			}
			if _, ok := line["err"].(string); !ok {
				line["err"] = ""
			}
			return line
		}
		if time.Now().After(deadline) {
			t.Fatal("no access log line")
		}
	}
}

// TestBackendTLSConfigChanges: alt names are part of a group's transport, so an Apply that
// changes only them takes effect on the next request; bad alt names are refused.
func TestBackendTLSConfigChanges(t *testing.T) {
	ca := newTestCA(t)
	addr, _ := startTLSTarget(t, ca.leaf(t, []string{"web.example.com"}))
	e := newEngine(t, Options{})
	cfg := func(sans ...SubjectAltName) Config {
		tg := tgroup("tls", ProtocolHTTPS, addr)
		tg.TLS = &BackendTLS{ServerName: "web.example.com", CAPEM: ca.pem, SubjectAltNames: sans}
		return Config{TargetGroups: []TargetGroup{tg}, Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tls")}}}}}
	}
	var u string
	for i, step := range []struct {
		sans []SubjectAltName
		want int
	}{
		{nil, 200},
		{[]SubjectAltName{{Type: SANHostname, Value: "api.example.com"}}, 502},
		{[]SubjectAltName{{Type: SANHostname, Value: "web.example.com"}}, 200},
		{[]SubjectAltName{{Type: SANHostname, Value: "api.example.com"}}, 502},
	} {
		apply(t, e, cfg(step.sans...))
		u = base(t, e, 80, "http")
		if resp, _, _ := do(t, http.DefaultClient, get(t, u+"/", "", nil)); resp.StatusCode != step.want {
			t.Errorf("step %d (alt names %v): status %d, want %d", i, step.sans, resp.StatusCode, step.want)
		}
	}
	err := Validate(cfg(SubjectAltName{Type: "DNS", Value: "a"}, SubjectAltName{Type: SANURI}))
	for _, want := range []string{"targetGroups[0].tls.subjectAltNames[0].type", "targetGroups[0].tls.subjectAltNames[1].value"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want a problem at %s", err, want)
		}
	}
}

// TestGRPCToVerifiedTLSTarget: a gRPC exchange (h2c into an HTTP listener) forwarded to an HTTPS
// group that verifies its target (a gRPC backend under a BackendTLSPolicy, lbcontroller's GRPCS
// group): h2 by ALPN to the target, the body streamed and the trailers back; a target whose
// certificate another CA issued gets no request.
func TestGRPCToVerifiedTLSTarget(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	serve := func(cert tls.Certificate) netip.AddrPort {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 || r.TLS == nil || r.TLS.ServerName != "grpc.backend.example" || r.Header.Get("Content-Type") != "application/grpc" {
				http.Error(w, fmt.Sprintf("proto %s tls %v content-type %q", r.Proto, r.TLS != nil, r.Header.Get("Content-Type")), 400)
				return
			}
			in, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status")
			_, _ = w.Write(in)
			w.Header().Set("Grpc-Status", "0")
		}))
		s.EnableHTTP2 = true
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.StartTLS()
		t.Cleanup(s.Close)
		return netip.MustParseAddrPort(s.Listener.Addr().String())
	}
	good := serve(ca.leaf(t, []string{"grpc.backend.example"}))
	forged := serve(other.leaf(t, []string{"grpc.backend.example"}))
	group := func(name string, target netip.AddrPort) TargetGroup {
		g := tgroup(name, ProtocolHTTPS, target)
		g.TLS = &BackendTLS{ServerName: "grpc.backend.example", CAPEM: ca.pem}
		return g
	}
	e := newEngine(t, Options{})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{group("good", good), group("forged", forged)},
		Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{
			{Path: &PathMatch{Type: MatchExact, Value: "/echo.Echo/Forged"}, Action: forwardTo("forged")},
			{Action: forwardTo("good")},
		}}},
	})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &p}}
	call := func(path string) (*http.Response, []byte) {
		return grpcCall(t, c, base(t, e, 80, "http")+path, grpcHealthRequest("hello"))
	}
	resp, body := call("/echo.Echo/Say")
	if resp.StatusCode != 200 || !bytes.Equal(body, grpcHealthRequest("hello")) || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("to the verified target: status %d body %q trailers %v", resp.StatusCode, body, resp.Trailer)
	}
	if resp, _ := call("/echo.Echo/Forged"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("to a target another CA issued: status %d, want 502", resp.StatusCode)
	}
}
