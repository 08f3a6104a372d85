package l7

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// clientPEM issues a client certificate (ExtKeyUsageClientAuth) and answers it as the engine
// takes it: the chain and key in PEM, and the leaf's DER to recognise it by.
func (ca testCA) clientPEM(t testing.TB, name string) (certPEM, keyPEM, leaf []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), der
}

// startMTLSTarget serves "ok" over TLS with cert to clients whose certificate clientCA issued
// (tls.RequireAndVerifyClientCert), and reports the leaf each request came with.
func startMTLSTarget(t testing.TB, cert tls.Certificate, clientCA testCA) (netip.AddrPort, <-chan []byte) {
	t.Helper()
	seen := make(chan []byte, 64)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			select {
			case seen <- r.TLS.PeerCertificates[0].Raw:
			default:
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	s.StartTLS()
	t.Cleanup(s.Close)
	return netip.MustParseAddrPort(s.Listener.Addr().String()), seen
}

// sawLeaf reports whether the target's last request came with leaf.
func sawLeaf(t *testing.T, seen <-chan []byte, leaf []byte) {
	t.Helper()
	select {
	case got := <-seen:
		if !bytes.Equal(got, leaf) {
			t.Errorf("the target saw another client certificate than the group's")
		}
	case <-time.After(5 * time.Second):
		t.Error("the target saw no client certificate")
	}
}

// TestBackendClientCertificate: an HTTPS group with a client certificate presents it to a
// target that requires one signed by its CA, verified (with or without alt names) or not;
// without one, or with one the target's CA did not sign, the target refuses the handshake:
// 502.
func TestBackendClientCertificate(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t), newTestCA(t), newTestCA(t)
	certPEM, keyPEM, leaf := clientCA.clientPEM(t, "lb.example.com")
	foreignPEM, foreignKey, _ := otherCA.clientPEM(t, "lb.example.com")
	for _, tc := range []struct {
		name   string
		tls    BackendTLS
		status int
	}{
		{"unverified with the client certificate", BackendTLS{InsecureSkipVerify: true, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}, 200},
		{"unverified without a client certificate", BackendTLS{InsecureSkipVerify: true}, 502},
		{"verified with the client certificate",
			BackendTLS{ServerName: "web.example.com", CAPEM: serverCA.pem, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}, 200},
		{"verified by alt names with the client certificate", BackendTLS{ServerName: "web.example.com", CAPEM: serverCA.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANHostname, Value: "web.example.com"}}, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}, 200},
		{"verified without a client certificate", BackendTLS{ServerName: "web.example.com", CAPEM: serverCA.pem}, 502},
		{"a client certificate the target's CA did not sign", BackendTLS{InsecureSkipVerify: true, ClientCertPEM: foreignPEM, ClientKeyPEM: foreignKey}, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, seen := startMTLSTarget(t, serverCA.leaf(t, []string{"web.example.com"}), clientCA)
			e := newEngine(t, Options{})
			tg := tgroup("mtls", ProtocolHTTPS, addr)
			tg.TLS = &tc.tls
			apply(t, e, Config{TargetGroups: []TargetGroup{tg},
				Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("mtls")}}}}})
			resp, _, body := do(t, http.DefaultClient, get(t, base(t, e, 80, "http")+"/", "", nil))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 200 {
				sawLeaf(t, seen, leaf)
			}
		})
	}
}

// TestBackendClientCertificateChanges: the client certificate is part of a group's transport:
// an Apply that changes only it takes new connections (the target sees the new one, a
// certificate it refuses is a 502 at once); one that does not parse is refused by Validate.
func TestBackendClientCertificateChanges(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t), newTestCA(t), newTestCA(t)
	addr, seen := startMTLSTarget(t, serverCA.leaf(t, []string{"web.example.com"}), clientCA)
	e := newEngine(t, Options{})
	cfg := func(certPEM, keyPEM []byte) Config {
		tg := tgroup("mtls", ProtocolHTTPS, addr)
		tg.TLS = &BackendTLS{InsecureSkipVerify: true, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}
		return Config{TargetGroups: []TargetGroup{tg}, Listeners: []Listener{{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("mtls")}}}}}
	}
	aCert, aKey, aLeaf := clientCA.clientPEM(t, "a.example.com")
	bCert, bKey, bLeaf := clientCA.clientPEM(t, "b.example.com")
	xCert, xKey, _ := otherCA.clientPEM(t, "x.example.com")
	for i, step := range []struct {
		cert, key, leaf []byte
		want            int
	}{
		{aCert, aKey, aLeaf, 200},
		{bCert, bKey, bLeaf, 200},
		{xCert, xKey, nil, 502},
		{aCert, aKey, aLeaf, 200},
		{nil, nil, nil, 502},
	} {
		apply(t, e, cfg(step.cert, step.key))
		u := base(t, e, 80, "http")
		for range 2 { // the second request would reuse the first's connection
			if resp, _, _ := do(t, http.DefaultClient, get(t, u+"/", "", nil)); resp.StatusCode != step.want {
				t.Fatalf("step %d: status %d, want %d", i, resp.StatusCode, step.want)
			}
			if step.leaf != nil {
				sawLeaf(t, seen, step.leaf)
			}
		}
	}
	err := Validate(cfg([]byte("not PEM"), aKey))
	if err == nil || !strings.Contains(err.Error(), "targetGroups[0].tls.clientCertPEM") {
		t.Errorf("Validate of a client certificate that does not parse: %v, want a problem at targetGroups[0].tls.clientCertPEM", err)
	}
	if err := Validate(cfg(aCert, bKey)); err == nil || !strings.Contains(err.Error(), "matching key") {
		t.Errorf("Validate of a client certificate with another's key: %v", err)
	}
}

// TestCheckerHTTPSClientCertificate: an HTTPS check presents the target's group's client
// certificate, so a target that requires one is healthy; without it the same target is
// unhealthy; a change of certificate is a new probe; one that does not parse is refused.
func TestCheckerHTTPSClientCertificate(t *testing.T) {
	serverCA, clientCA := newTestCA(t), newTestCA(t)
	addr, seen := startMTLSTarget(t, serverCA.leaf(t, []string{"web.example.com"}), clientCA)
	certPEM, keyPEM, leaf := clientCA.clientPEM(t, "lb.example.com")
	rs := make(reports, 16)
	c := newChecker(t, rs)
	hc := fastCheck(HealthHTTPS)
	hc.Path = "/healthz"
	with := CheckTarget{TargetGroup: "mtls", Addr: addr, Check: hc, Known: StateInitial, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}
	if err := c.Sync([]CheckTarget{with}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("with the client certificate: report %+v, want healthy", got)
	}
	sawLeaf(t, seen, leaf)
	without := with
	without.ClientCertPEM, without.ClientKeyPEM, without.Known = nil, nil, StateHealthy
	if err := c.Sync([]CheckTarget{without}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks {
		t.Fatalf("without the client certificate: report %+v, want unhealthy (%s)", got, api.ReasonFailedHealthChecks)
	}
	if n := len(c.running); n != 1 {
		t.Errorf("%d probes running, want the one without a certificate", n)
	}
	bad := with
	bad.ClientCertPEM = []byte("not PEM")
	if err := c.Sync([]CheckTarget{bad}); err == nil || !strings.Contains(err.Error(), "client certificate: not a PEM certificate chain and matching key") {
		t.Errorf("Sync with a client certificate that does not parse: %v", err)
	}
}
