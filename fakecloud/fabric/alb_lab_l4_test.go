package fabric

// TestALB's passthrough listeners: TLS routed by SNI and passed through, TCP forwarded, and TLS
// terminated and begun again to a TLS group.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// servePodLine serves, on a pod's port, "name peer" to every connection, over TLS with a
// certificate of its own for names when there are names; it returns the certificate's pool.
func servePodLine(t *testing.T, p *pod, port uint16, names ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if len(names) == 0 {
		servePodLineCert(t, p, port, "", "")
		return pool
	}
	certPEM, keyPEM := selfSigned(t, names[0])
	pool.AppendCertsFromPEM([]byte(certPEM))
	servePodLineCert(t, p, port, certPEM, keyPEM)
	return pool
}

// servePodLineCert is servePodLine with the given certificate (none: plain TCP).
func servePodLineCert(t *testing.T, p *pod, port uint16, certPEM, keyPEM string) {
	t.Helper()
	ln := listenTCPIn(t, p.ns, netip.AddrPortFrom(p.ip, port))
	var conf *tls.Config
	if certPEM != "" {
		cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			t.Fatal(err)
		}
		conf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				w := c
				if conf != nil {
					tc := tls.Server(c, conf)
					if tc.Handshake() != nil {
						return
					}
					w = tc
				}
				fmt.Fprintf(w, "%s %s\n", p.name, host)
			}()
		}
	}()
}

// testALBPassthrough adds a TLS listener (SNI a.tls.example to pod a, *.c.tls.example to pod c,
// no default) and a TCP listener (to pod b) to the load balancer: pods terminate TLS with
// their own certificates, which the client sees; an unknown name is refused; every pod sees
// the load balancer's private address as its peer.
func testALBPassthrough(t *testing.T, l *albLab) {
	a, b, c := l.pods[0], l.pods[1], l.pods[2]
	const tlsPort, tcpPort = 8443, 5432
	poolA := servePodLine(t, a, tlsPort, "a.tls.example")
	poolC := servePodLine(t, c, tlsPort, "*.c.tls.example")
	servePodLine(t, b, tcpPort)
	group := func(name string, port int, p *pod) string {
		id := must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: name, Protocol: api.ProtocolTCP,
			Port: port, VpcID: l.vpc})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: id, Targets: []api.Target{{IP: p.ip.String(), Port: port}}}))
		return id
	}
	tgA, tgC, tgB := group("tls-a", tlsPort, a), group("tls-c", tlsPort, c), group("tcp-b", tcpPort, b)
	ls := must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolTLS, Port: tlsPort})).Listener
	for i, r := range []struct{ host, tg string }{{"a.tls.example", tgA}, {"*.c.tls.example", tgC}} {
		must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: ls.ListenerID, Priority: i + 1,
			Conditions: []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{r.host}}}},
			Actions:    []api.Action{forwardAction(r.tg)}}))
	}
	must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolTCP, Port: tcpPort, DefaultActions: []api.Action{forwardAction(tgB)}}))
	l.converge()
	l.waitState(t, api.LoadBalancerStateActive)

	// line dials the public address from the internet, over TLS with sni unless it is "-".
	line := func(port int, sni string, pool *x509.CertPool) (string, []string, error) {
		conn, err := dialIn(l.internet, "tcp", net.JoinHostPort(l.lb.PublicIPAddress, fmt.Sprint(port)), 2*time.Second)
		if err != nil {
			return "", nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		var r io.Reader = conn
		var names []string
		if sni != "-" {
			tc := tls.Client(conn, &tls.Config{ServerName: sni, RootCAs: pool, MinVersion: tls.VersionTLS12})
			if err := tc.Handshake(); err != nil {
				return "", nil, err
			}
			names = tc.ConnectionState().PeerCertificates[0].DNSNames
			r = tc
		}
		b, err := io.ReadAll(r)
		return strings.TrimSpace(string(b)), names, err
	}
	for _, tc := range []struct {
		sni  string
		pool *x509.CertPool
		pod  *pod
		cert string
	}{{"a.tls.example", poolA, a, "a.tls.example"}, {"x.c.tls.example", poolC, c, "*.c.tls.example"}} {
		got, names, err := line(tlsPort, tc.sni, tc.pool)
		if err != nil || got != tc.pod.name+" "+l.lb.PrivateIPAddress || !slices.Equal(names, []string{tc.cert}) {
			t.Errorf("SNI %s: %q from a certificate for %v, err %v; want %s seeing %s, with its certificate for %s",
				tc.sni, got, names, err, tc.pod.name, l.lb.PrivateIPAddress, tc.cert)
		}
	}
	if got, _, err := line(tlsPort, "unknown.tls.example", poolA); err == nil {
		t.Errorf("an unknown name with no default was served: %q", got)
	}
	if got, _, err := line(tcpPort, "-", nil); err != nil || got != b.name+" "+l.lb.PrivateIPAddress {
		t.Errorf("TCP: %q, err %v; want %s seeing %s", got, err, b.name, l.lb.PrivateIPAddress)
	}
}

// testALBTLSOrigination adds a TLS listener that terminates with the load balancer's
// certificate and forwards db.tls.example to a TLS group whose TlsVerification holds pod a's CA
// (the engine begins TLS with the pod again and verifies it), and bad.tls.example to a TLS
// group verifying with another CA: the first client sees the load balancer's certificate and
// pod a's answer over the pod's TLS; the second's connection is closed with nothing relayed.
func testALBTLSOrigination(t *testing.T, l *albLab) {
	a := l.pods[0]
	const podPort, lbPort = 9443, 10443
	podCert, podKey := selfSigned(t, "db.internal.example")
	servePodLineCert(t, a, podPort, podCert, podKey)
	otherCA, _ := selfSigned(t, "db.internal.example")
	group := func(name, ca string) string {
		id := must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: name, Protocol: api.ProtocolTLS, Port: podPort, VpcID: l.vpc,
			TLSVerification: &api.TLSVerification{ServerName: "db.internal.example", CACertificatesPEM: ca}})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: id, Targets: []api.Target{{IP: a.ip.String(), Port: podPort}}}))
		return id
	}
	good, bad := group("tls-good", podCert), group("tls-bad", otherCA)
	lbCert, lbKey := selfSigned(t, "db.tls.example")
	cert := must(l.st.ImportCertificate(admin(), &api.ImportCertificateRequest{Certificate: lbCert, PrivateKey: lbKey})).Certificate.CertificateID
	ls := must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolTLS, Port: lbPort, Certificates: []api.ListenerCertificate{{CertificateID: cert}}})).Listener
	for i, r := range []struct{ host, tg string }{{"db.tls.example", good}, {"bad.tls.example", bad}} {
		must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: ls.ListenerID, Priority: i + 1,
			Conditions: []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{r.host}}}},
			Actions:    []api.Action{forwardAction(r.tg)}}))
	}
	l.converge()
	l.waitState(t, api.LoadBalancerStateActive)
	lbPool := x509.NewCertPool()
	lbPool.AppendCertsFromPEM([]byte(lbCert))
	line := func(sni string) (string, []string, error) {
		conn, err := dialIn(l.internet, "tcp", net.JoinHostPort(l.lb.PublicIPAddress, fmt.Sprint(lbPort)), 2*time.Second)
		if err != nil {
			return "", nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Client(conn, &tls.Config{ServerName: sni, RootCAs: lbPool, InsecureSkipVerify: sni != "db.tls.example", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err != nil {
			return "", nil, err
		}
		b, err := io.ReadAll(tc)
		return strings.TrimSpace(string(b)), tc.ConnectionState().PeerCertificates[0].DNSNames, err
	}
	want := a.name + " " + l.lb.PrivateIPAddress
	eventually(t, 20*time.Second, "db.tls.example reaches pod a over TLS the load balancer begins", func() bool {
		got, names, err := line("db.tls.example")
		return err == nil && got == want && slices.Equal(names, []string{"db.tls.example"})
	})
	if got, _, err := line("bad.tls.example"); got != "" {
		t.Errorf("bad.tls.example (a group verifying with another CA): relayed %q (err %v); want the connection closed before anything is relayed", got, err)
	}
}
