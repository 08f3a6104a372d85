package l7

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
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
		"path on TLS":         {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Path: &PathMatch{Type: MatchExact, Value: "/"}, Action: forwardTo("tcp")}}}, "sees no requests"},
		"TLS to HTTP group":   {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Action: forwardTo("web")}}}, "forwards to TCP groups"},
		"redirect on TLS":     {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Action: Action{Redirect: &Redirect{StatusCode: 301}}}}}, "forward only"},
		"TCP with hosts":      {Listener{Port: 22, Protocol: ProtocolTCP, Rules: []Rule{{Hosts: []string{"a.example.com"}, Action: forwardTo("tcp")}}}, "exactly one rule"},
		"TCP with a cert":     {Listener{Port: 22, Protocol: ProtocolTCP, Certificates: []Certificate{{Name: "x"}}, Rules: []Rule{{Action: forwardTo("tcp")}}}, "takes no certificates"},
		"TLS with a bad cert": {Listener{Port: 443, Protocol: ProtocolTLS, Certificates: []Certificate{{Name: "x"}}, Rules: []Rule{{Action: forwardTo("tcp")}}}, "not a PEM certificate chain"},
		"HTTP to TCP group":   {Listener{Port: 80, Protocol: ProtocolHTTP, Rules: []Rule{{Action: forwardTo("tcp")}}}, "is a TCP group"},
		"unknown protocol":    {Listener{Port: 80, Protocol: "SCTP"}, "HTTP, HTTPS, TLS, TCP or UDP"},
		"transforms on TLS": {Listener{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Action: Action{Forward: forwardTo("tcp").Forward,
			Transforms: []Transform{{Type: TransformHost, Regex: "a", Replace: "b"}}}}}}, "transforms"},
	} {
		err := Validate(Config{Listeners: []Listener{tc.l}, TargetGroups: []TargetGroup{tcp, web}})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want %q", name, err, tc.says)
		}
	}
}

// TestConnectionsObserved: connections of TLS-passthrough and TCP listeners and flows of UDP
// listeners are counted when they end, by rule and result, with the bytes they carried, and
// each gets an access-log line.
func TestConnectionsObserved(t *testing.T) {
	a, poolA := startTLSNamed(t, "a", "a.example.com")
	echo := startTCPEcho(t)
	udpEcho := startUDPEcho(t, "u")
	closed := func() netip.AddrPort { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return netip.MustParseAddrPort(ln.Addr().String())
	}()
	var logBuf syncBuffer
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg, AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil)), UDPIdleTimeout: 200 * time.Millisecond})
	apply(t, e, Config{
		TargetGroups: []TargetGroup{tgroup("ga", ProtocolTCP, a), tgroup("echo", ProtocolTCP, echo), tgroup("none", ProtocolTCP),
			tgroup("gone", ProtocolTCP, closed), tgroup("u", ProtocolUDP, udpEcho)},
		Listeners: []Listener{
			{Port: 443, Protocol: ProtocolTLS, Rules: []Rule{{Name: "a", Hosts: []string{"a.example.com"}, Action: forwardTo("ga")}}},
			{Port: 5432, Protocol: ProtocolTCP, Rules: []Rule{{Name: "echo", Action: forwardTo("echo")}}},
			{Port: 5433, Protocol: ProtocolTCP, Rules: []Rule{{Name: "empty", Action: forwardTo("none")}}},
			{Port: 5434, Protocol: ProtocolTCP, Rules: []Rule{{Name: "gone", Action: forwardTo("gone")}}},
			{Port: 53, Protocol: ProtocolUDP, Rules: []Rule{{Name: "dns", Action: forwardTo("u")}}},
		},
	})
	if body, err := getOverTLS(e.Addr(443).String(), "a.example.com", poolA); err != nil || !strings.HasPrefix(body, "a ") {
		t.Fatalf("TLS: %q, %v", body, err)
	}
	if _, err := getOverTLS(e.Addr(443).String(), "c.example.com", poolA); err == nil {
		t.Fatal("a name no rule takes was served")
	}
	exchange := func(port int, send string) string {
		c, err := net.Dial("tcp", e.Addr(port).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, send)
		_ = c.(*net.TCPConn).CloseWrite()
		got, _ := io.ReadAll(c)
		return string(got)
	}
	if got := exchange(443, "GET / HTTP/1.1\r\n\r\n"); got != "" {
		t.Errorf("plain HTTP on the TLS listener got %q", got)
	}
	if got := exchange(5432, "ping"); got != "ping" {
		t.Errorf("TCP echo: %q", got)
	}
	exchange(5433, "x")
	exchange(5434, "x")
	u, err := net.Dial("udp4", e.Addr(53).String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if got := udpAsk(t, u, "q1"); got != "u q1" {
		t.Fatalf("UDP: %q", got)
	}

	want := map[string]float64{
		"flatnet_l7_connections_total{listener=443,result=forwarded,rule=a}":                1,
		"flatnet_l7_connections_total{listener=443,result=no_rule,rule=-}":                  1,
		"flatnet_l7_connections_total{listener=443,result=no_client_hello,rule=-}":          1,
		"flatnet_l7_connections_total{listener=5432,result=forwarded,rule=echo}":            1,
		"flatnet_l7_connections_total{listener=5433,result=no_target,rule=empty}":           1,
		"flatnet_l7_connections_total{listener=5434,result=target_unreachable,rule=gone}":   1,
		"flatnet_l7_connections_total{listener=53/udp,result=forwarded,rule=dns}":           1,
		"flatnet_l7_connection_bytes_total{direction=from_client,listener=5432,rule=echo}":  4,
		"flatnet_l7_connection_bytes_total{direction=to_client,listener=5432,rule=echo}":    4,
		"flatnet_l7_connection_bytes_total{direction=from_client,listener=53/udp,rule=dns}": 2,
		"flatnet_l7_connection_bytes_total{direction=to_client,listener=53/udp,rule=dns}":   4,
	}
	got := awaitMetrics(t, reg, want, func(k string) bool {
		return strings.HasPrefix(k, "flatnet_l7_connection") && !strings.Contains(k, "listener=443,") || strings.Contains(k, "connections_total{listener=443")
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("connection metrics (-want +got):\n%s", diff)
	}
	// The TLS bytes depend on the handshake: some each way.
	all := gathered(t, reg)
	for _, dir := range []string{"from_client", "to_client"} {
		if all["flatnet_l7_connection_bytes_total{direction="+dir+",listener=443,rule=a}"] < 100 {
			t.Errorf("TLS passthrough bytes %s: %v, want the handshake's and the exchange's", dir, all)
		}
	}
	results := map[string]int{}
	for l := range strings.Lines(logBuf.String()) {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		if line["msg"] == "connection" {
			results[fmt.Sprint(line["listener"], " ", line["result"])]++
			if line["result"] == "forwarded" && (line["target"] == nil || line["duration"] == nil) {
				t.Errorf("access log line without its target or duration: %q", l)
			}
		}
	}
	for k := range want {
		if !strings.HasPrefix(k, "flatnet_l7_connections_total") {
			continue
		}
		// "...{listener=443,result=forwarded,rule=a}" -> "443 forwarded"
		f := strings.FieldsFunc(k[strings.Index(k, "{")+1:len(k)-1], func(r rune) bool { return r == ',' })
		key := strings.TrimSuffix(strings.TrimPrefix(f[0], "listener="), "/udp") + " " + strings.TrimPrefix(f[1], "result=")
		if results[key] != 1 {
			t.Errorf("access log: %d connection lines %q, want 1 (all: %v)", results[key], key, results)
		}
	}
}

// TestTLSTerminate: a TLS listener with certificates terminates TLS, the SNI name picking the
// certificate (the default for a name none has) and the rule, and splices the decrypted stream
// to a plain TCP target, half-close included; a name no rule takes is closed before any
// handshake, a client that sends no ClientHello is counted as no_client_hello and one that
// gives up the handshake as tls_handshake_failed. A rule that passes TLS through serves its
// names with the target's own certificate beside the terminated ones on the same port (mixed
// modes). Taking the certificates away makes the whole port pass TLS through.
func TestTLSTerminate(t *testing.T) {
	echo := startTCPEcho(t)
	a, poolA := startTLSNamed(t, "a", "a.example.com")
	p, poolP := startTLSNamed(t, "p", "pass.example.com")
	certA, keyA := selfSigned(t, "a.example.com")
	certD, keyD := selfSigned(t, "default.example.com")
	reg := newRegistry()
	e := newEngine(t, Options{Registerer: reg})
	passA := forwardTo("gp")
	passA.TLSPassthrough = true
	// A closed port: its target cannot be reached.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(ln.Addr().String())
	_ = ln.Close()
	cfg := Config{
		TargetGroups: []TargetGroup{tgroup("echo", ProtocolTCP, echo), tgroup("ga", ProtocolTCP, a), tgroup("gp", ProtocolTCP, p), tgroup("dead", ProtocolTCP, dead)},
		Listeners: []Listener{{Port: 8443, Protocol: ProtocolTLS,
			Certificates: []Certificate{{Name: "d", CertPEM: certD, KeyPEM: keyD, Default: true}, {Name: "a", CertPEM: certA, KeyPEM: keyA, Hostnames: []string{"a.example.com"}}},
			Rules: []Rule{
				{Name: "a", Hosts: []string{"a.example.com"}, Action: forwardTo("echo")},
				{Name: "b", Hosts: []string{"b.example.com"}, Action: forwardTo("echo")},
				{Name: "pass", Hosts: []string{"pass.example.com"}, Action: passA},
				{Name: "refused", Hosts: []string{"refused.example.com"}, Action: Action{Forward: &Forward{}}},
				{Name: "dead", Hosts: []string{"dead.example.com"}, Action: forwardTo("dead")},
			},
		}},
	}
	apply(t, e, cfg)
	addr := e.Addr(8443).String()
	pool := func(pem []byte) *x509.CertPool {
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(pem)
		return p
	}
	echoOver := func(c *tls.Conn, msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		_ = c.Close()
		if err != nil || string(got) != msg {
			t.Errorf("echo through the terminating listener: %q, %v; want %q", got, err, msg)
		}
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example.com", RootCAs: pool(certA), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to a.example.com, trusting its listener certificate: %v", err)
	}
	echoOver(c, "plain bytes to the target")
	// A name with no certificate of its own gets the default one.
	c, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "b.example.com", RootCAs: pool(certD), InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the certificate is checked below
	if err != nil {
		t.Fatalf("TLS to a name without a certificate: %v", err)
	}
	if names := c.ConnectionState().PeerCertificates[0].DNSNames; len(names) != 1 || names[0] != "default.example.com" {
		t.Errorf("certificate for b.example.com: %v; want the default", names)
	}
	echoOver(c, "b")
	// The passthrough rule's name: the target's own certificate and answer (mixed modes).
	if body, err := getOverTLS(addr, "pass.example.com", poolP); err != nil || !strings.HasPrefix(body, "p ") {
		t.Errorf("a passthrough rule on a terminating listener: %q, %v; want the target's answer, over its own certificate", body, err)
	}
	// A name no rule takes, and one whose rule forwards nowhere: closed before the handshake.
	for _, name := range []string{"other.example.com", "refused.example.com"} {
		if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}); err == nil { //nolint:gosec // no certificate is wanted
			_ = c.Close()
			t.Errorf("%s finished a handshake; want the connection closed before it", name)
		}
	}
	// A target that cannot be reached: terminated, then closed.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "dead.example.com", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}); err == nil { //nolint:gosec // no certificate is wanted
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("a target that cannot be reached: read %d bytes; want the connection closed", n)
		}
		_ = c.Close()
	}
	// A client that distrusts the certificate gives up the handshake.
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example.com", RootCAs: pool(certD), MinVersion: tls.VersionTLS12}); err == nil {
		_ = c.Close()
		t.Errorf("a client trusting another certificate finished the handshake")
	}
	// A client that sends no ClientHello.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(raw, "not TLS at all\r\n\r\n")
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(raw)
	_ = raw.Close()
	want := map[string]float64{
		"flatnet_l7_connections_total{listener=8443,result=forwarded,rule=a}":             1,
		"flatnet_l7_connections_total{listener=8443,result=forwarded,rule=b}":             1,
		"flatnet_l7_connections_total{listener=8443,result=forwarded,rule=pass}":          1,
		"flatnet_l7_connections_total{listener=8443,result=no_rule,rule=-}":               1,
		"flatnet_l7_connections_total{listener=8443,result=no_target,rule=refused}":       1,
		"flatnet_l7_connections_total{listener=8443,result=target_unreachable,rule=dead}": 1,
		"flatnet_l7_connections_total{listener=8443,result=tls_handshake_failed,rule=a}":  1,
		"flatnet_l7_connections_total{listener=8443,result=no_client_hello,rule=-}":       1,
		"flatnet_l7_connection_bytes_total{direction=from_client,listener=8443,rule=a}":   25,
		"flatnet_l7_connection_bytes_total{direction=to_client,listener=8443,rule=a}":     25,
		"flatnet_l7_connection_bytes_total{direction=from_client,listener=8443,rule=b}":   1,
		"flatnet_l7_connection_bytes_total{direction=to_client,listener=8443,rule=b}":     1,
	}
	metrics := awaitMetrics(t, reg, want, func(k string) bool {
		// The passed-through bytes are an HTTP exchange's, of no fixed size.
		return strings.HasPrefix(k, "flatnet_l7_connections_total") || strings.HasPrefix(k, "flatnet_l7_connection_bytes") && !strings.Contains(k, "rule=pass}")
	})
	if diff := cmp.Diff(want, metrics); diff != "" {
		t.Errorf("connection metrics (-want +got): the decrypted bytes, each way\n%s", diff)
	}
	// Without certificates the listener passes TLS through: the target's own certificate.
	cfg.Listeners[0].Certificates = nil
	cfg.Listeners[0].Rules[0].Action = forwardTo("ga")
	apply(t, e, cfg)
	if body, err := getOverTLS(addr, "a.example.com", poolA); err != nil || !strings.HasPrefix(body, "a ") {
		t.Errorf("passed through: %q, %v; want the target's answer, over its own certificate", body, err)
	}
	// TLSPassthrough belongs to TLS listeners' rules only.
	bad := Config{TargetGroups: []TargetGroup{tgroup("echo", ProtocolTCP, echo)},
		Listeners: []Listener{{Port: 9000, Protocol: ProtocolTCP, Rules: []Rule{{Name: "t", Action: passA}}}}}
	bad.TargetGroups = append(bad.TargetGroups, tgroup("gp", ProtocolTCP, p))
	if err := e.Apply(bad); err == nil || !strings.Contains(err.Error(), "tlsPassthrough") {
		t.Errorf("TLSPassthrough on a TCP listener: %v; want an error naming tlsPassthrough", err)
	}
}

// awaitMetrics gathers the series keep selects until they equal want or 5 s pass (connections
// are counted when the engine is done with them, which may be just after the client is), and
// answers the last gathered.
func awaitMetrics(t *testing.T, reg *prometheus.Registry, want map[string]float64, keep func(series string) bool) map[string]float64 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := map[string]float64{}
		for k, v := range gathered(t, reg) {
			if keep(k) {
				got[k] = v
			}
		}
		if cmp.Equal(want, got) || time.Now().After(deadline) {
			return got
		}
	}
}
