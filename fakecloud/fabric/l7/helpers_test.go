package l7

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// newEngine starts an engine whose listeners bind 127.0.0.1 on free ports.
func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	opts.Listen = func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	opts.ListenPacket = func(int) (net.PacketConn, error) { return net.ListenPacket("udp4", "127.0.0.1:0") }
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func apply(t testing.TB, e *Engine, cfg Config) {
	t.Helper()
	if err := e.Apply(cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// base is the http:// or https:// root of the engine's listener on port.
func base(t testing.TB, e *Engine, port int, scheme string) string {
	t.Helper()
	a := e.Addr(port)
	if a == nil {
		t.Fatalf("no listener on %d", port)
	}
	return scheme + "://" + a.String()
}

// echo is what the echo backends answer: who they are and what request they saw.
type echo struct {
	Name    string      `json:"name"`
	Method  string      `json:"method"`
	Host    string      `json:"host"`
	URI     string      `json:"uri"`
	Proto   string      `json:"proto"`
	Body    string      `json:"body"`
	Headers http.Header `json:"headers"`
}

type backendServer struct {
	*httptest.Server
	addr netip.AddrPort
	seen chan echo // every request, when not nil (buffered)
}

// startEcho starts an echo backend; with h2c it also speaks HTTP/2 by prior knowledge.
func startEcho(t testing.TB, name string, h2c bool) *backendServer {
	t.Helper()
	b := &backendServer{seen: make(chan echo, 1024)}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ec := echo{Name: name, Method: r.Method, Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Body: string(body), Headers: r.Header}
		select {
		case b.seen <- ec:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(ec)
	}))
	if h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		b.Config.Protocols = &p
	}
	b.Start()
	t.Cleanup(b.Close)
	b.addr = netip.MustParseAddrPort(b.Listener.Addr().String())
	return b
}

func tgroup(name string, proto Protocol, targets ...netip.AddrPort) TargetGroup {
	g := TargetGroup{Name: name, Protocol: proto}
	for _, a := range targets {
		g.Targets = append(g.Targets, Target{Addr: a, State: StateHealthy})
	}
	return g
}

func forwardTo(groups ...string) Action {
	f := &Forward{}
	for _, g := range groups {
		f.Backends = append(f.Backends, Backend{TargetGroup: g, Weight: 1})
	}
	return Action{Forward: f}
}

// do sends a request and decodes an echo answer when there is one.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, echo, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	var ec echo
	if resp.Header.Get("X-Backend") != "" {
		if err := json.Unmarshal(body, &ec); err != nil {
			t.Fatalf("decoding %q: %v", body, err)
		}
	}
	return resp, ec, string(body)
}

func get(t testing.TB, url, host string, hdr http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return req
}

func post(t testing.TB, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// selfSigned makes a certificate for names (the first is the subject's CN) and its key, in PEM.
func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// startHandler serves h on loopback (HTTP/1.1) and returns its address.
func startHandler(t testing.TB, h http.HandlerFunc) netip.AddrPort {
	return startHandlerWith(t, nil, h)
}

func startHandlerWith(t testing.TB, p *http.Protocols, h http.HandlerFunc) netip.AddrPort {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = p
	s.Start()
	t.Cleanup(s.Close)
	return netip.MustParseAddrPort(s.Listener.Addr().String())
}

type tlsBackend struct {
	addr  netip.AddrPort
	caPEM []byte
}

// httptestTLS serves "tls <proto>" over TLS with h2; its certificate is for example.com.
func httptestTLS(t testing.TB) tlsBackend {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "tls "+r.Proto)
	}))
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	return tlsBackend{addr: netip.MustParseAddrPort(s.Listener.Addr().String()),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})}
}

// grpcCall posts one gRPC message (msg, framed) to url with c and returns the response, its
// body read and closed (its trailers set).
func grpcCall(t *testing.T, c *http.Client, url string, msg []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(msg))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, body
}
