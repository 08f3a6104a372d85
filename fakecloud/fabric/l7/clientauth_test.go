package l7

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// mtlsClient is a client of an HTTPS listener, with a client certificate (nil: none), that
// records whether the listener asked for one.
type mtlsClient struct {
	cert  *tls.Certificate
	asked bool
	c     *http.Client
}

func newMTLSClient(t *testing.T, cert *tls.Certificate, h2 bool) *mtlsClient {
	t.Helper()
	m := &mtlsClient{cert: cert}
	var protos http.Protocols
	protos.SetHTTP1(!h2)
	protos.SetHTTP2(h2)
	tr := &http.Transport{Protocols: &protos, TLSClientConfig: &tls.Config{
		ServerName: "lb.example.com", InsecureSkipVerify: true, //nolint:gosec // the listener's self-signed test certificate
		ClientSessionCache: tls.NewLRUClientSessionCache(8), // so a resumption would be tried
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			m.asked = true
			if m.cert == nil {
				return &tls.Certificate{}, nil // none
			}
			return m.cert, nil
		},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	m.c = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return m
}

// get answers the status and body of GET url, and whether the request reused a connection.
func (m *mtlsClient) get(url string) (status int, body string, reused bool, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", false, err
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := m.c.Do(req)
	if err != nil {
		return 0, "", false, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), reused, err
}

// fresh is get on a new connection.
func (m *mtlsClient) fresh(url string) (int, error) {
	m.c.Transport.(*http.Transport).CloseIdleConnections()
	m.asked = false
	status, _, _, err := m.get(url)
	return status, err
}

// TestClientAuth: an HTTPS listener's ClientAuth. Verify: a client certificate the CA issued
// gets 200, one another CA issued or none fails the handshake. Without Verify all three are
// served, though each is asked for a certificate; without ClientAuth none is asked. Over
// HTTP/1.1 and HTTP/2 alike.
func TestClientAuth(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	ca, other := newTestCA(t), newTestCA(t)
	pair := func(ca testCA) *tls.Certificate {
		c, k, _ := ca.clientPEM(t, "client.example.com")
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &kp
	}
	good, bad := pair(ca), pair(other)
	e := newEngine(t, Options{})
	cfg := func(auth *ClientAuth) Config {
		return Config{Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS, ClientAuth: auth,
			Certificates: []Certificate{{Name: "lb", CertPEM: certPEM, KeyPEM: keyPEM}},
			Rules:        []Rule{{Action: Action{FixedResponse: &FixedResponse{StatusCode: 200, Body: "hello"}}}}}}}
	}
	for _, tc := range []struct {
		name          string
		auth          *ClientAuth
		good, bad, no bool // served
	}{
		{"verify", &ClientAuth{Verify: true, CAPEM: ca.pem}, true, false, false},
		{"passthrough", &ClientAuth{CAPEM: ca.pem}, true, true, true},
		{"passthrough without CAs", &ClientAuth{}, true, true, true},
		{"none", nil, true, true, true},
	} {
		apply(t, e, cfg(tc.auth))
		url := base(t, e, 443, "https") + "/"
		for _, h2 := range []bool{false, true} {
			for _, c := range []struct {
				name   string
				cert   *tls.Certificate
				served bool
			}{{"the CA's certificate", good, tc.good}, {"another CA's certificate", bad, tc.bad}, {"no certificate", nil, tc.no}} {
				m := newMTLSClient(t, c.cert, h2)
				status, err := m.fresh(url)
				switch {
				case c.served && (err != nil || status != 200):
					t.Errorf("%s, h2=%v, %s: %d, %v; want 200", tc.name, h2, c.name, status, err)
				case !c.served && err == nil:
					t.Errorf("%s, h2=%v, %s: served %d; want the handshake refused", tc.name, h2, c.name, status)
				case !c.served && !h2 && !strings.Contains(err.Error(), "certificate"):
					// Over HTTP/2 the refusal may surface as "http2: client conn could not be
					// established" without the alert's text: with TLS 1.3 the server judges
					// the client's certificate after the client's side of the handshake ended,
					// and the transport's error does not always carry the alert. The request
					// failed either way, which is what matters.
					t.Errorf("%s, h2=%v, %s: %v; want a TLS alert about the certificate", tc.name, h2, c.name, err)
				}
				if m.asked != (tc.auth != nil) {
					t.Errorf("%s, h2=%v, %s: asked for a certificate: %v", tc.name, h2, c.name, m.asked)
				}
			}
		}
	}
}

// TestClientAuthSwap: a configuration that starts verifying clients applies to the
// handshakes after Apply, resumed sessions included: a connection opened before keeps
// serving, a request in flight finishes, and new connections need a certificate; a new CA
// bundle refuses the old CA's clients at once; removing ClientAuth serves everyone again.
func TestClientAuthSwap(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	ca, ca2 := newTestCA(t), newTestCA(t)
	c, k, _ := ca.clientPEM(t, "client.example.com")
	good, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	release, started := make(chan struct{}), make(chan struct{}, 1)
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	})
	e := newEngine(t, Options{})
	cfg := func(auth *ClientAuth) Config {
		return Config{TargetGroups: []TargetGroup{tgroup("tg", ProtocolHTTP, slow)},
			Listeners: []Listener{{Port: 443, Protocol: ProtocolHTTPS, ClientAuth: auth,
				Certificates: []Certificate{{Name: "lb", CertPEM: certPEM, KeyPEM: keyPEM}},
				Rules:        []Rule{{Action: forwardTo("tg")}}}}}
	}
	apply(t, e, cfg(nil))
	url := base(t, e, 443, "https")
	kept := newMTLSClient(t, nil, true)
	if status, err := kept.fresh(url + "/"); err != nil || status != 200 {
		t.Fatalf("before: %d, %v", status, err)
	}
	inflight := make(chan error, 1)
	go func() {
		status, body, _, err := kept.get(url + "/slow")
		if err == nil && (status != 200 || body != "ok") {
			err = &ConfigError{Field: "slow", Problem: body}
		}
		inflight <- err
	}()
	<-started

	apply(t, e, cfg(&ClientAuth{Verify: true, CAPEM: ca.pem}))
	close(release)
	if err := <-inflight; err != nil {
		t.Errorf("the request in flight across the change: %v", err)
	}
	if status, _, reused, err := kept.get(url + "/"); err != nil || status != 200 || !reused {
		t.Errorf("the connection opened before the change: %d, reused %v, %v; want 200 on it", status, reused, err)
	}
	// A new connection, trying to resume the session of the one before: refused.
	if status, err := kept.fresh(url + "/"); err == nil {
		t.Errorf("a new connection without a certificate after the change: served %d", status)
	}
	withCert := newMTLSClient(t, &good, true)
	for i := range 2 { // the second would resume the first's session, were tickets issued
		if status, err := withCert.fresh(url + "/"); err != nil || status != 200 {
			t.Errorf("connection %d with the CA's certificate: %d, %v", i, status, err)
		}
	}
	apply(t, e, cfg(&ClientAuth{Verify: true, CAPEM: ca2.pem}))
	if status, err := withCert.fresh(url + "/"); err == nil {
		t.Errorf("the old CA's certificate after the CA bundle changed: served %d", status)
	}
	apply(t, e, cfg(nil))
	if status, err := kept.fresh(url + "/"); err != nil || status != 200 || kept.asked {
		t.Errorf("without ClientAuth again: %d, %v, asked %v", status, err, kept.asked)
	}
}

// TestClientAuthValidate: a ClientAuth whose CAs do not parse, Verify without CAs, and a
// ClientAuth on a listener that is not HTTPS are configuration errors naming the field.
func TestClientAuthValidate(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	ca := newTestCA(t)
	for _, tc := range []struct {
		name  string
		proto Protocol
		auth  *ClientAuth
		want  string
	}{
		{"CAs not PEM", ProtocolHTTPS, &ClientAuth{CAPEM: []byte("not PEM")}, "listeners[0].clientAuth.caPEM: holds no PEM certificate"},
		{"verify without CAs", ProtocolHTTPS, &ClientAuth{Verify: true},
			"listeners[0].clientAuth.caPEM: required to verify clients' certificates"},
		{"on HTTP", ProtocolHTTP, &ClientAuth{Verify: true, CAPEM: ca.pem}, "listeners[0].clientAuth: only an HTTPS listener asks clients for certificates; this one is HTTP"},
		{"on TLS", ProtocolTLS, &ClientAuth{CAPEM: ca.pem}, "only an HTTPS listener asks clients for certificates; this one is TLS"},
	} {
		l := Listener{Port: 443, Protocol: tc.proto, ClientAuth: tc.auth, Rules: []Rule{{Action: Action{FixedResponse: &FixedResponse{StatusCode: 200}}}}}
		if tc.proto != ProtocolHTTP {
			l.Certificates = []Certificate{{Name: "lb", CertPEM: certPEM, KeyPEM: keyPEM}}
		}
		err := Validate(Config{Listeners: []Listener{l}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
	a, b := Config{Listeners: []Listener{{Port: 443, ClientAuth: &ClientAuth{CAPEM: ca.pem}}}}, Config{Listeners: []Listener{{Port: 443, ClientAuth: &ClientAuth{Verify: true, CAPEM: ca.pem}}}}
	if a.Equal(b) {
		t.Errorf("Config.Equal ignores ClientAuth")
	}
}
