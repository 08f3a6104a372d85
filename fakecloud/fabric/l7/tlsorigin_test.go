package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// tlsHandshake is what a TLS target saw of one connection's handshake: the SNI name and the
// leaf of the client certificate (nil: none).
type tlsHandshake struct {
	sni  string
	leaf []byte
}

// startTLSEcho serves TLS with cert, asking clients for a certificate the way auth says
// (clientCA verifies it; tls.NoClientCert: none asked for), at most TLS maxVersion (0: any),
// and echoes each connection's bytes until the client half-closes. Each handshake that
// succeeds is reported.
func startTLSEcho(t *testing.T, cert tls.Certificate, auth tls.ClientAuthType, clientCA *testCA, maxVersion uint16) (netip.AddrPort, <-chan tlsHandshake) {
	t.Helper()
	seen := make(chan tlsHandshake, 64)
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: auth, MinVersion: tls.VersionTLS12, MaxVersion: maxVersion}
	if clientCA != nil {
		conf.ClientCAs = x509.NewCertPool()
		conf.ClientCAs.AddCert(clientCA.cert)
	}
	addr := rawTarget(t, func(c net.Conn, _ *bufio.Reader) {
		tc := tls.Server(c, conf)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		h := tlsHandshake{sni: tc.ConnectionState().ServerName}
		if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
			h.leaf = peers[0].Raw
		}
		select {
		case seen <- h:
		default:
		}
		_, _ = io.Copy(tc, tc)
		_ = tc.CloseWrite()
	})
	return addr, seen
}

// TestTLSGroup: a terminating TLS listener's rule forwarding to a TLS group encrypts the
// decrypted stream again: the engine's handshake with the target sends the group's server
// name, verifies the target (roots, then the name or the alt names) and presents the group's
// client certificate; the bytes go both ways, half-close included. A target of another CA, or
// one whose certificate holds neither the name nor an alt name, closes the client's
// connection with nothing sent: target_tls_failed in the metrics and the access log, with
// the reason.
func TestTLSGroup(t *testing.T) {
	serverCA, otherCA, clientCA := newTestCA(t), newTestCA(t), newTestCA(t)
	const spiffe = "spiffe://cluster.local/ns/db/sa/pg"
	good, goodSeen := startTLSEcho(t, serverCA.leaf(t, []string{"db.example.com"}, spiffe), tls.VerifyClientCertIfGiven, &clientCA, 0)
	foreign, _ := startTLSEcho(t, otherCA.leaf(t, []string{"db.example.com"}), tls.NoClientCert, nil, 0)
	misnamed, _ := startTLSEcho(t, serverCA.leaf(t, []string{"other.example.com"}), tls.NoClientCert, nil, 0)
	certPEM, keyPEM, leaf := clientCA.clientPEM(t, "lb.example.com")
	frontPEM, frontKey := selfSigned(t, "*.example.com")
	front := x509.NewCertPool()
	front.AppendCertsFromPEM(frontPEM)

	verified := BackendTLS{ServerName: "db.example.com", CAPEM: serverCA.pem, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}
	group := func(name string, bt BackendTLS, target netip.AddrPort) TargetGroup {
		g := tgroup(name, ProtocolTLS, target)
		g.TLS = &bt
		return g
	}
	bySAN := verified
	bySAN.ServerName, bySAN.SubjectAltNames = "pg.internal", []SubjectAltName{{Type: SANURI, Value: spiffe}}
	wrongSAN := bySAN
	wrongSAN.SubjectAltNames = []SubjectAltName{{Type: SANURI, Value: "spiffe://cluster.local/ns/db/sa/other"}}
	noCert := BackendTLS{ServerName: "db.example.com", CAPEM: serverCA.pem}
	var logBuf syncBuffer
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg, AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	rule := func(name string) Rule {
		return Rule{Name: name, Hosts: []string{name + ".example.com"}, Action: forwardTo(name)}
	}
	apply(t, e, Config{
		TargetGroups: []TargetGroup{group("good", verified, good), group("san", bySAN, good), group("nocert", noCert, good),
			group("foreign", verified, foreign), group("misnamed", verified, misnamed), group("wrongsan", wrongSAN, good)},
		Listeners: []Listener{{Port: 5432, Protocol: ProtocolTLS, Certificates: []Certificate{{Name: "front", CertPEM: frontPEM, KeyPEM: frontKey}},
			Rules: []Rule{rule("good"), rule("san"), rule("nocert"), rule("foreign"), rule("misnamed"), rule("wrongsan")}}},
	})
	addr := e.Addr(5432).String()
	// exchange sends msg over TLS to the listener as name and answers what came back.
	exchange := func(name, msg string) (string, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name + ".example.com", RootCAs: front, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("%s: the listener's own handshake: %v", name, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			return "", err
		}
		_ = c.CloseWrite()
		got, err := io.ReadAll(c)
		return string(got), err
	}
	handshake := func(name string) tlsHandshake {
		t.Helper()
		select {
		case h := <-goodSeen:
			return h
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the target saw no handshake", name)
			return tlsHandshake{}
		}
	}
	for _, name := range []string{"good", "san"} {
		if got, err := exchange(name, "bytes for "+name); got != "bytes for "+name {
			t.Errorf("%s: %q, %v; want the bytes back through the target's TLS", name, got, err)
		}
		h := handshake(name)
		if want := map[string]string{"good": "db.example.com", "san": "pg.internal"}[name]; h.sni != want {
			t.Errorf("%s: the target saw SNI %q, want the group's server name %q", name, h.sni, want)
		}
		if !bytes.Equal(h.leaf, leaf) {
			t.Errorf("%s: the target saw another client certificate than the group's (or none)", name)
		}
	}
	if got, err := exchange("nocert", "x"); got != "x" {
		t.Errorf("nocert: %q, %v", got, err)
	}
	if h := handshake("nocert"); h.leaf != nil {
		t.Errorf("a group without a client certificate presented one")
	}
	for _, name := range []string{"foreign", "misnamed", "wrongsan"} {
		if got, _ := exchange(name, "secret"); got != "" {
			t.Errorf("%s: the client got %q; want its connection closed with nothing sent", name, got)
		}
	}
	want := map[string]float64{}
	for _, r := range []string{"good", "san", "nocert"} {
		want["flatnet_l7_connections_total{listener=5432,result=forwarded,rule="+r+"}"] = 1
	}
	for _, r := range []string{"foreign", "misnamed", "wrongsan"} {
		want["flatnet_l7_connections_total{listener=5432,result=target_tls_failed,rule="+r+"}"] = 1
	}
	got := awaitMetrics(t, reg, want, func(k string) bool { return strings.HasPrefix(k, "flatnet_l7_connections_total") })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("connection metrics (-want +got):\n%s", diff)
	}
	why := map[string]string{
		"foreign":  "x509: certificate signed by unknown authority",
		"misnamed": "x509: certificate is valid for other.example.com, not db.example.com",
		"wrongsan": "holds none of the subject alternative names URI spiffe://cluster.local/ns/db/sa/other",
	}
	lines := awaitConnectionLines(t, &logBuf, 6)
	for _, line := range lines {
		rule, _ := line["rule"].(string)
		if reason, ok := why[rule]; ok {
			if line["result"] != "target_tls_failed" || !strings.Contains(asString(line["err"]), reason) || line["targetGroup"] != rule {
				t.Errorf("%s: access log line %v; want result target_tls_failed, its group, and err saying %q", rule, line, reason)
			}
		} else if line["result"] != "forwarded" {
			t.Errorf("%s: access log line %v; want forwarded", rule, line)
		}
	}
}

// asString is v if it is a string, else "".
func asString(v any) string {
	s, _ := v.(string)
	return s
}

// awaitConnectionLines waits for n connection lines in the access log and decodes them.
func awaitConnectionLines(t *testing.T, buf *syncBuffer, n int) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var out []map[string]any
		for l := range strings.Lines(buf.String()) {
			var line map[string]any
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("access log line %q: %v", l, err)
			}
			if line["msg"] == "connection" {
				out = append(out, line)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				t.Fatalf("%d connection lines in the access log, want %d:\n%s", len(out), n, buf.String())
			}
			return out
		}
	}
}

// TestTLSGroupConfigErrors: Validate takes a TLS group only where the control plane does, as
// the forward of a rule of a TLS listener that terminates TLS without passing it through; a
// TLS group needs its TLS settings, whose client certificate must parse. A rule compiled for
// a terminating listener is checked again when its listener stops terminating.
func TestTLSGroupConfigErrors(t *testing.T) {
	certPEM, keyPEM := selfSigned(t, "db.example.com")
	certs := []Certificate{{Name: "c", CertPEM: certPEM, KeyPEM: keyPEM}}
	tlsGroup := tgroup("tls", ProtocolTLS, addrPort("127.0.0.1:5432"))
	tlsGroup.TLS = &BackendTLS{ServerName: "db.example.com", CAPEM: certPEM}
	groups := []TargetGroup{tlsGroup, tgroup("web", ProtocolHTTP, addrPort("127.0.0.1:8080"))}
	pass := forwardTo("tls")
	pass.TLSPassthrough = true
	mirror := forwardTo("web")
	mirror.Mirrors = []Mirror{{TargetGroup: "tls", Percent: 100}}
	for _, tc := range []struct {
		name   string
		groups []TargetGroup
		l      Listener
		want   string // "" accepted
	}{
		{"a terminating TLS listener", groups, Listener{Port: 1, Protocol: ProtocolTLS, Certificates: certs, Rules: []Rule{{Action: forwardTo("tls")}}}, ""},
		{"a passthrough TLS listener", groups, Listener{Port: 1, Protocol: ProtocolTLS, Rules: []Rule{{Action: forwardTo("tls")}}},
			`listeners[0].rules[0].action.forward.backends[0].targetGroup: "tls" is a TLS group, which takes a decrypted stream to encrypt again; this TLS listener passes TLS through (it has no certificates)`},
		{"a rule passing TLS through", groups, Listener{Port: 1, Protocol: ProtocolTLS, Certificates: certs, Rules: []Rule{{Action: pass}}},
			`listeners[0].rules[0].action.forward.backends[0].targetGroup: "tls" is a TLS group, which takes a decrypted stream to encrypt again; this rule passes TLS through`},
		{"a TCP listener", groups, Listener{Port: 1, Protocol: ProtocolTCP, Rules: []Rule{{Action: forwardTo("tls")}}},
			`"tls" is a TLS group; a TCP listener forwards to TCP groups`},
		{"an HTTP listener", groups, Listener{Port: 1, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tls")}}},
			`"tls" is a TLS group; HTTP and HTTPS listeners forward to HTTP, HTTPS or H2C groups`},
		{"an HTTPS listener's mirror", groups, Listener{Port: 1, Protocol: ProtocolHTTPS, Certificates: certs, Rules: []Rule{{Action: mirror}}},
			`listeners[0].rules[0].action.mirrors[0].targetGroup: "tls" is a TLS group; HTTP and HTTPS listeners mirror to HTTP, HTTPS or H2C groups`},
		{"a TLS group without TLS settings", []TargetGroup{tgroup("tls", ProtocolTLS)},
			Listener{Port: 1, Protocol: ProtocolTLS, Certificates: certs, Rules: []Rule{{Action: forwardTo("tls")}}},
			"targetGroups[0].tls: a TLS group needs TLS settings"},
		{"a client certificate that does not parse", []TargetGroup{{Name: "tls", Protocol: ProtocolTLS, TLS: &BackendTLS{InsecureSkipVerify: true, ClientCertPEM: []byte("x"), ClientKeyPEM: []byte("y")}}},
			Listener{Port: 1, Protocol: ProtocolTLS, Certificates: certs, Rules: []Rule{{Action: forwardTo("tls")}}},
			"targetGroups[0].tls.clientCertPEM: not a PEM certificate chain and matching key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(Config{TargetGroups: tc.groups, Listeners: []Listener{tc.l}})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// A rule with a revision is not reused as compiled when its listener stops terminating.
	e := newEngine(t, Options{})
	cfg := Config{TargetGroups: groups, Listeners: []Listener{{Port: 5432, Protocol: ProtocolTLS, Certificates: certs,
		Rules: []Rule{{Name: "db", Revision: "1", Hosts: []string{"db.example.com"}, Action: forwardTo("tls")}}}}}
	apply(t, e, cfg)
	cfg.Listeners[0].Certificates = nil
	if err := e.Apply(cfg); err == nil || !strings.Contains(err.Error(), "this TLS listener passes TLS through") {
		t.Errorf("the listener's certificates taken away under a rule forwarding to a TLS group: %v; want it refused", err)
	}
}

// TestCheckerTLS: a TLS check is a handshake verified as the group's connections are:
// healthy with the target's roots, unhealthy (FailedHealthChecks, the reason in the
// description) with another CA's; it presents the check's client certificate, so a target
// requiring one (TLS 1.2, where the refusal ends the client's handshake) is healthy with it
// and unhealthy without. New TLS settings are a new probe; a TLS check without them, or with
// a client certificate of their own, is refused.
func TestCheckerTLS(t *testing.T) {
	serverCA, otherCA, clientCA := newTestCA(t), newTestCA(t), newTestCA(t)
	addr, _ := startTLSEcho(t, serverCA.leaf(t, []string{"db.example.com"}), tls.NoClientCert, nil, 0)
	rs := make(reports, 16)
	c := newChecker(t, rs)
	good := CheckTarget{TargetGroup: "tls", Addr: addr, Check: fastCheck(HealthTLS), Known: StateInitial,
		TLS: &BackendTLS{ServerName: "db.example.com", CAPEM: serverCA.pem}}
	if err := c.Sync([]CheckTarget{good}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("verified by its CA: report %+v, want healthy", got)
	}
	foreign := good
	foreign.Known, foreign.TLS = StateHealthy, &BackendTLS{ServerName: "db.example.com", CAPEM: otherCA.pem}
	if err := c.Sync([]CheckTarget{foreign}); err != nil {
		t.Fatal(err)
	}
	got := rs.next(t)
	if got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks || !strings.Contains(got.Description, "x509: certificate signed by unknown authority") {
		t.Fatalf("another CA: report %+v, want unhealthy (%s) saying why", got, api.ReasonFailedHealthChecks)
	}
	if n := len(c.running); n != 1 {
		t.Errorf("%d probes running, want the one with the new settings", n)
	}

	mtls, seen := startTLSEcho(t, serverCA.leaf(t, []string{"db.example.com"}), tls.RequireAndVerifyClientCert, &clientCA, tls.VersionTLS12)
	certPEM, keyPEM, leaf := clientCA.clientPEM(t, "lb.example.com")
	with := CheckTarget{TargetGroup: "mtls", Addr: mtls, Check: fastCheck(HealthTLS), Known: StateInitial,
		TLS: &BackendTLS{ServerName: "db.example.com", CAPEM: serverCA.pem}, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}
	if err := c.Sync([]CheckTarget{with}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("with the client certificate: report %+v, want healthy", got)
	}
	select {
	case h := <-seen:
		if !bytes.Equal(h.leaf, leaf) {
			t.Error("the target saw another client certificate than the check's")
		}
	case <-time.After(5 * time.Second):
		t.Error("the target saw no handshake")
	}
	without := with
	without.Known, without.ClientCertPEM, without.ClientKeyPEM = StateHealthy, nil, nil
	if err := c.Sync([]CheckTarget{without}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks {
		t.Fatalf("without the client certificate: report %+v, want unhealthy", got)
	}

	// TLS 1.3: the target refuses a missing client certificate only after the handshake; the
	// probe waits for that alert.
	mtls13, _ := startTLSEcho(t, serverCA.leaf(t, []string{"db.example.com"}), tls.RequireAndVerifyClientCert, &clientCA, 0)
	with13 := with
	with13.TargetGroup, with13.Addr = "mtls13", mtls13
	if err := c.Sync([]CheckTarget{with13}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateHealthy {
		t.Fatalf("TLS 1.3 with the client certificate: report %+v, want healthy", got)
	}
	without13 := with13
	without13.Known, without13.ClientCertPEM, without13.ClientKeyPEM = StateHealthy, nil, nil
	if err := c.Sync([]CheckTarget{without13}); err != nil {
		t.Fatal(err)
	}
	if got := rs.next(t); got.State != StateUnhealthy || got.Reason != api.ReasonFailedHealthChecks || !strings.Contains(got.Description, "certificate") {
		t.Fatalf("TLS 1.3 without the client certificate: report %+v, want unhealthy naming the certificate", got)
	}

	for name, tc := range map[string]struct {
		t    CheckTarget
		want string
	}{
		"no TLS settings": {CheckTarget{TargetGroup: "x", Addr: addr, Check: fastCheck(HealthTLS)}, "a TLS check needs CheckTarget.TLS"},
		"a client certificate in TLS": {CheckTarget{TargetGroup: "x", Addr: addr, Check: fastCheck(HealthTLS),
			TLS: &BackendTLS{InsecureSkipVerify: true, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}}, "give it as CheckTarget.ClientCertPEM"},
		"roots that do not parse": {CheckTarget{TargetGroup: "x", Addr: addr, Check: fastCheck(HealthTLS),
			TLS: &BackendTLS{ServerName: "db.example.com", CAPEM: []byte("x")}}, "tls.caPEM: holds no PEM certificate"},
	} {
		if err := c.Sync([]CheckTarget{tc.t}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Sync answered %v, want an error saying %q", name, err, tc.want)
		}
	}
}
