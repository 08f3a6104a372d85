package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestTLSTargetGroups: a TLS group is an application group without a protocol version whose
// health check is a TLS handshake by default (TCP allowed, nothing else); it keeps its
// TlsVerification and ClientCertificateId as an HTTPS group does (Create, Describe, the
// snapshot, a restart, the same settings again, DuplicateTargetGroupName for others).
func TestTLSTargetGroups(t *testing.T) {
	path := t.TempDir() + "/state.json"
	s := openT(t, Config{StateFile: path})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	ca, _ := testCert(t, []string{"ca.example.com"}, time.Now().Add(time.Hour))
	cert := importCert(t, s, "lb.example.com")
	v := &api.TLSVerification{ServerName: "db.example.com", CACertificatesPEM: ca,
		SubjectAltNames: []api.SubjectAltName{{Type: api.SANTypeURI, Value: "spiffe://cluster.local/ns/db/sa/pg"}}}
	req := func(v *api.TLSVerification, certID string) *api.CreateTargetGroupRequest {
		return &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolTLS, Port: 5432, VpcID: w.vpc,
			TLSVerification: clonePlain(v), ClientCertificateID: certID}
	}
	created, err := s.CreateTargetGroup(admin(), req(v, cert.CertificateID))
	mustOK(t, err)
	tg := created.TargetGroup
	wantHC := api.HealthCheck{Protocol: api.ProtocolTLS, Port: api.HealthCheckPortTraffic, IntervalSeconds: defaultALBHCInterval,
		TimeoutSeconds: defaultALBHCTimeout, HealthyThresholdCount: defaultALBHCThreshold, UnhealthyThresholdCount: defaultALBHCThreshold}
	if diff := cmp.Diff(wantHC, tg.HealthCheck); diff != "" {
		t.Errorf("a TLS group's default health check (-want +got):\n%s", diff)
	}
	if tg.Protocol != api.ProtocolTLS || tg.ProtocolVersion != "" || tg.LoadBalancerType != api.LoadBalancerTypeApplication ||
		tg.ClientCertificateID != cert.CertificateID || !cmp.Equal(v, tg.TLSVerification) {
		t.Errorf("created TLS group %+v; want Protocol TLS, no version, type application, the certificate and the verification", tg)
	}
	again, err := s.CreateTargetGroup(admin(), req(v, cert.CertificateID))
	mustOK(t, err)
	if again.TargetGroup.TargetGroupID != tg.TargetGroupID {
		t.Errorf("the same settings again made %s, want %s", again.TargetGroup.TargetGroupID, tg.TargetGroupID)
	}
	for name, r := range map[string]*api.CreateTargetGroupRequest{
		"no verification":    req(nil, cert.CertificateID),
		"no certificate":     req(v, ""),
		"another name":       req(&api.TLSVerification{ServerName: "x.example.com", CACertificatesPEM: ca}, cert.CertificateID),
		"an HTTPS group too": {Name: "tls", Protocol: api.ProtocolHTTPS, Port: 5432, VpcID: w.vpc, TLSVerification: v, ClientCertificateID: cert.CertificateID},
	} {
		_, err := s.CreateTargetGroup(admin(), r)
		wantCode(t, err, api.ErrDuplicateTargetGroupName)
		if err != nil && !strings.Contains(err.Error(), "with other settings") {
			t.Errorf("%s: %v", name, err)
		}
	}
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{Filters: []api.Filter{{Name: "protocol", Values: []string{api.ProtocolTLS}}}})
	mustOK(t, err)
	if len(d.TargetGroups) != 1 || !cmp.Equal(d.TargetGroups[0], tg) {
		t.Errorf("DescribeTargetGroups protocol=TLS: %+v, want [%+v]", d.TargetGroups, tg)
	}
	dc, err := s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{CertificateIDs: []string{cert.CertificateID}})
	mustOK(t, err)
	if diff := cmp.Diff([]string{tg.TargetGroupID}, dc.Certificates[0].InUseBy); diff != "" {
		t.Errorf("the certificate's InUseBy (-want +got):\n%s", diff)
	}

	// TCP (connect) is the other check; switching back to TLS takes TLS's.
	m, err := s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: tg.TargetGroupID, HealthCheck: api.HealthCheck{Protocol: api.ProtocolTCP, Port: "9000"}})
	mustOK(t, err)
	if hc := m.TargetGroup.HealthCheck; hc.Protocol != api.ProtocolTCP || hc.Port != "9000" {
		t.Errorf("health check after ModifyTargetGroup to TCP: %+v", hc)
	}
	m, err = s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: tg.TargetGroupID, HealthCheck: api.HealthCheck{Protocol: api.ProtocolTLS}})
	mustOK(t, err)
	if hc := m.TargetGroup.HealthCheck; hc.Protocol != api.ProtocolTLS {
		t.Errorf("health check after ModifyTargetGroup to TLS: %+v", hc)
	}
	plain, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tcp-checked", Protocol: api.ProtocolTLS, Port: 5432, VpcID: w.vpc,
		HealthCheck: api.HealthCheck{Protocol: api.ProtocolTCP}})
	mustOK(t, err)
	if plain.TargetGroup.TLSVerification != nil || plain.TargetGroup.ClientCertificateID != "" || plain.TargetGroup.HealthCheck.Protocol != api.ProtocolTCP {
		t.Errorf("a plain TLS group checked by TCP: %+v", plain.TargetGroup)
	}

	before := s.Snapshot().TargetGroups
	mustOK(t, s.Close())
	s = openT(t, Config{StateFile: path})
	if diff := cmp.Diff(before, s.Snapshot().TargetGroups); diff != "" {
		t.Errorf("restart changed the target groups (-before +after):\n%s", diff)
	}
	// The certificate stays in use across the restart.
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: cert.CertificateID})
	wantCode(t, err, api.ErrResourceInUse)
	want := "certificate " + cert.CertificateID + " is in use by target group " + tg.TargetGroupID + " (tls), which presents it to its targets; delete the target group first"
	if err != nil && !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestTLSTargetGroupsRefuseBadInput: what a TLS group cannot carry is ValidationError naming
// the field (TlsVerification checked as an HTTPS group's), and stores nothing.
func TestTLSTargetGroupsRefuseBadInput(t *testing.T) {
	s := openT(t, Config{})
	w := newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")
	for _, tc := range []struct {
		name string
		edit func(r *api.CreateTargetGroupRequest)
		code *api.Error
		want string
	}{
		{"a protocol version", func(r *api.CreateTargetGroupRequest) { r.ProtocolVersion = api.ProtocolVersionHTTP2 }, api.ErrValidationError,
			"ProtocolVersion applies to HTTP and HTTPS target groups only; Protocol is TLS"},
		{"an HTTP health check", func(r *api.CreateTargetGroupRequest) { r.HealthCheck.Protocol = api.ProtocolHTTP }, api.ErrValidationError,
			`HealthCheck.Protocol "HTTP" is not supported for TLS target groups: use TLS (a TLS handshake verifying the target with the group's TlsVerification, presenting its ClientCertificateId) or TCP (a connection)`},
		{"an HTTPS health check", func(r *api.CreateTargetGroupRequest) { r.HealthCheck.Protocol = api.ProtocolHTTPS }, api.ErrValidationError,
			`HealthCheck.Protocol "HTTPS" is not supported for TLS target groups`},
		{"a UDP health check", func(r *api.CreateTargetGroupRequest) { r.HealthCheck.Protocol = api.ProtocolUDP }, api.ErrValidationError,
			`HealthCheck.Protocol "UDP" is not supported for TLS target groups`},
		{"a health check path", func(r *api.CreateTargetGroupRequest) { r.HealthCheck.Path = "/healthz" }, api.ErrValidationError,
			"HealthCheck.Path and HealthCheck.Matcher apply to HTTP health checks only; a TLS target group's HealthCheck.Protocol is TLS"},
		{"a TCP check with a matcher", func(r *api.CreateTargetGroupRequest) {
			r.HealthCheck = api.HealthCheck{Protocol: api.ProtocolTCP, Matcher: "200"}
		},
			api.ErrValidationError, "HealthCheck.Path and HealthCheck.Matcher apply to HTTP health checks only; a TLS target group's HealthCheck.Protocol is TCP"},
		{"a verification without a server name", func(r *api.CreateTargetGroupRequest) {
			r.TLSVerification = &api.TLSVerification{UseSystemRoots: true}
		}, api.ErrValidationError, "TlsVerification.ServerName is required"},
		{"a verification without roots", func(r *api.CreateTargetGroupRequest) {
			r.TLSVerification = &api.TLSVerification{ServerName: "db.example.com"}
		}, api.ErrValidationError, "TlsVerification: give the roots the targets' chains must end at, CaCertificatesPem (PEM) or UseSystemRoots"},
		{"an unknown client certificate", func(r *api.CreateTargetGroupRequest) { r.ClientCertificateID = "cert-404" }, api.ErrCertificateNotFound,
			`ClientCertificateId: certificate "cert-404" does not exist; import it with ImportCertificate`},
		{"a verification on a UDP group", func(r *api.CreateTargetGroupRequest) {
			r.Protocol, r.TLSVerification = api.ProtocolUDP, &api.TLSVerification{ServerName: "db.example.com", UseSystemRoots: true}
		}, api.ErrValidationError, "TlsVerification applies to HTTPS and TLS target groups only; Protocol is UDP"},
		{"a client certificate on a TCP group", func(r *api.CreateTargetGroupRequest) { r.Protocol, r.ClientCertificateID = api.ProtocolTCP, "cert-404" },
			api.ErrValidationError, "ClientCertificateId applies to HTTPS and TLS target groups only; Protocol is TCP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolTLS, Port: 5432, VpcID: w.vpc}
			tc.edit(r)
			_, err := s.CreateTargetGroup(admin(), r)
			wantCode(t, err, tc.code)
			if err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(s.Snapshot().TargetGroups); n != 0 {
		t.Errorf("%d target groups stored after refusals", n)
	}
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolTLS, Port: 5432, VpcID: w.vpc})
	mustOK(t, err)
	_, err = s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: tg.TargetGroup.TargetGroupID, HealthCheck: api.HealthCheck{Protocol: api.ProtocolHTTP}})
	wantCode(t, err, api.ErrValidationError)
}

// TestTLSTargetGroupForwarding: only a forward of a TLS listener that terminates TLS and does
// not pass it through may name a TLS group. Every other listener, rule and default action is
// refused with ValidationError saying why, whichever call makes it (CreateListener,
// ModifyListener, CreateRule, ModifyRule), on application and network load balancers; a
// refused call changes nothing.
func TestTLSTargetGroupForwarding(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	lbID := w.lb.LoadBalancerID
	group := func(name, protocol string) string {
		tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: name, Protocol: protocol, Port: 5432, VpcID: w.vpc})
		mustOK(t, err)
		return tg.TargetGroup.TargetGroupID
	}
	tlsA, tlsB, tcp := group("tls-a", api.ProtocolTLS), group("tls-b", api.ProtocolTLS), group("tcp", api.ProtocolTCP)
	cert := importCert(t, s, "db.example.com")
	listener := func(protocol string, port int, acts []api.Action, certs ...string) (api.Listener, error) {
		return createListener(s, lbID, protocol, port, acts, certs...)
	}
	passing := func(acts []api.Action) []api.Action {
		acts[0].TLSPassthrough = true
		return acts
	}
	// Accepted: a terminating listener's default and rules, TLS groups beside TCP ones.
	term, err := listener(api.ProtocolTLS, 5432, forwardTo(tlsA), cert.CertificateID)
	mustOK(t, err)
	fwd, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: term.ListenerID, Priority: 1, Conditions: hostRule("db.example.com"), Actions: forwardTo(tlsB, tcp)})
	mustOK(t, err)
	pass, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: term.ListenerID, Priority: 2, Conditions: hostRule("pass.example.com"), Actions: passing(forwardTo(tcp))})
	mustOK(t, err)
	passthroughListener, err := listener(api.ProtocolTLS, 6432, forwardTo(tcp))
	mustOK(t, err)
	tcpListener, err := listener(api.ProtocolTCP, 7432, forwardTo(tcp))
	mustOK(t, err)
	nlb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "nlb", Type: api.LoadBalancerTypeNetwork, SubnetID: w.subnet})
	mustOK(t, err)
	const only = "is a TLS group: only a TLS listener's rule that terminates TLS can forward to it "
	noCerts := "(this TLS listener has no certificates, so it passes TLS through: give it Certificates to terminate TLS)"
	for _, tc := range []struct {
		name string
		call func() error
		says string
	}{
		{"a passthrough TLS listener's default", func() error { _, err := listener(api.ProtocolTLS, 8432, forwardTo(tlsA)); return err },
			"target group " + tlsA + " " + only + noCerts},
		{"a passthrough TLS listener's rule", func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: passthroughListener.ListenerID, Priority: 1, Conditions: hostRule("db.example.com"), Actions: forwardTo(tlsA)})
			return err
		}, "target group " + tlsA + " " + only + noCerts},
		{"a passthrough TLS listener's default modified", func() error {
			_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: passthroughListener.ListenerID, DefaultActions: forwardTo(tlsA)})
			return err
		}, noCerts},
		{"a TlsPassthrough rule", func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: term.ListenerID, Priority: 3, Conditions: hostRule("x.example.com"), Actions: passing(forwardTo(tcp, tlsA))})
			return err
		}, "target group " + tlsA + " " + only + "(this rule passes TLS through)"},
		{"a rule modified to pass TLS through", func() error {
			_, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: fwd.Rule.RuleID, Actions: passing(forwardTo(tlsB))})
			return err
		}, "target group " + tlsB + " " + only + "(this rule passes TLS through)"},
		{"a passthrough rule modified to a TLS group", func() error {
			_, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: pass.Rule.RuleID, Actions: passing(forwardTo(tlsB))})
			return err
		}, "(this rule passes TLS through)"},
		{"a TlsPassthrough default", func() error {
			_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: term.ListenerID, DefaultActions: passing(forwardTo(tlsA))})
			return err
		}, "target group " + tlsA + " " + only + "(this default action passes TLS through)"},
		{"a TCP listener", func() error { _, err := listener(api.ProtocolTCP, 8433, forwardTo(tlsA)); return err },
			only + "(a TCP listener passes connections on as they come; it has no TLS to terminate)"},
		{"a TCP listener modified", func() error {
			_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: tcpListener.ListenerID, DefaultActions: forwardTo(tlsA)})
			return err
		}, "(a TCP listener passes connections on as they come; it has no TLS to terminate)"},
		{"a UDP listener", func() error { _, err := listener(api.ProtocolUDP, 8434, forwardTo(tlsA)); return err },
			only + "(a UDP listener relays datagrams)"},
		{"an HTTP listener", func() error { _, err := listener(api.ProtocolHTTP, 8080, forwardTo(tlsA)); return err },
			only + "(an HTTP listener forwards requests to HTTP or HTTPS target groups)"},
		{"an HTTPS listener", func() error {
			_, err := listener(api.ProtocolHTTPS, 8443, forwardTo(tlsA), cert.CertificateID)
			return err
		},
			only + "(an HTTPS listener forwards requests to HTTP or HTTPS target groups)"},
		{"an HTTP rule", func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: pathRule("", "/db"), Actions: forwardTo(tlsA)})
			return err
		}, only + "(an HTTP listener forwards requests to HTTP or HTTPS target groups)"},
		{"an HTTP mirror", func() error {
			acts := forwardTo(w.tg.TargetGroupID)
			acts[0].RequestMirrors = []api.RequestMirrorConfig{{TargetGroupID: tlsA}}
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: pathRule("", "/db"), Actions: acts})
			return err
		}, only + "(an HTTP listener forwards requests to HTTP or HTTPS target groups)"},
		{"the terminating listener turned TCP", func() error { // losing its certificates
			_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: term.ListenerID, Protocol: api.ProtocolTCP})
			return err
		}, only + "(a TCP listener passes connections on as they come; it has no TLS to terminate)"},
		{"a network listener", func() error {
			_, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: nlb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 5432,
				DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tlsA}}})
			return err
		}, only + "(a network load balancer's TCP listener passes connections on as they come; it has no TLS to terminate)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Snapshot()
			err := tc.call()
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, api.ErrValidationError) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v, want ValidationError saying %q", err, tc.says)
			}
			after := s.Snapshot()
			if diff := cmp.Diff(before.Listeners, after.Listeners); diff != "" {
				t.Errorf("a refused call changed the listeners (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(before.Rules, after.Rules); diff != "" {
				t.Errorf("a refused call changed the rules (-before +after):\n%s", diff)
			}
		})
	}
	// A passthrough listener given certificates in the same call terminates TLS: its default
	// may then forward to a TLS group.
	m, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: passthroughListener.ListenerID, DefaultActions: forwardTo(tlsA),
		Certificates: []api.ListenerCertificate{{CertificateID: cert.CertificateID}}})
	mustOK(t, err)
	if len(m.Listener.Certificates) != 1 || m.Listener.DefaultActions[0].ForwardConfig.TargetGroups[0].TargetGroupID != tlsA {
		t.Errorf("the listener made terminating: %+v", m.Listener)
	}
	// Rules moved keep forwarding.
	_, err = s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: fwd.Rule.RuleID, Priority: 2}, {RuleID: pass.Rule.RuleID, Priority: 1}}})
	mustOK(t, err)
	// The group serves the load balancer; it cannot be deleted while a rule forwards to it.
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{tlsB}})
	mustOK(t, err)
	if diff := cmp.Diff([]string{lbID}, d.TargetGroups[0].LoadBalancerIDs); diff != "" {
		t.Errorf("the TLS group's load balancers (-want +got):\n%s", diff)
	}
	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: tlsB})
	wantCode(t, err, api.ErrResourceInUse)
}

// TestTLSTargetGroupRulesOutliveNoCertificates: the check that keeps a rule forwarding to a
// TLS group on a terminating listener refuses a listener that would stop terminating (no API
// path gets there today: a terminating listener keeps its default certificate).
func TestTLSTargetGroupRulesOutliveNoCertificates(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolTLS, Port: 5432, VpcID: w.vpc})
	mustOK(t, err)
	cert := importCert(t, s, "db.example.com")
	l, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolTLS, Port: 5432,
		Certificates: []api.ListenerCertificate{{CertificateID: cert.CertificateID}}})
	mustOK(t, err)
	r, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: l.Listener.ListenerID, Priority: 1, Conditions: hostRule("db.example.com"),
		Actions: forwardTo(tg.TargetGroup.TargetGroupID)})
	mustOK(t, err)
	txn := s.read()
	old := first[listenerRec](txn, tableListeners, indexID, l.Listener.ListenerID)
	next := *old
	next.CertificateIDs = nil
	err = checkRulesKeepTLSGroups(&tx{Txn: txn}, old, &next)
	wantCode(t, err, api.ErrValidationError)
	want := "listener " + old.ID + ": rule " + r.Rule.RuleID + " forwards to TLS target group " + tg.TargetGroup.TargetGroupID +
		", which only a TLS listener's rule that terminates TLS can do (this TLS listener has no certificates, so it passes TLS through: give it Certificates to terminate TLS); change or delete the rule first"
	if err != nil && err.Error() != "ValidationError: "+want {
		t.Errorf("got %q, want %q", err, want)
	}
	mustOK(t, checkRulesKeepTLSGroups(&tx{Txn: txn}, old, old))
}
