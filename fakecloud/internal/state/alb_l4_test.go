package state

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
)

func hostRule(names ...string) []api.RuleCondition {
	return []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: names}}}
}

// TestPassthroughListeners: an application load balancer holds TLS-passthrough and TCP
// listeners beside its HTTP one, forwarding to TCP target groups; what they cannot do is
// refused with an error naming the reason.
func TestPassthroughListeners(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	tcpGroup := func(name string) api.TargetGroup {
		tg, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: name, Protocol: api.ProtocolTCP, Port: 8443, VpcID: w.vpc})
		mustOK(t, err)
		return tg.TargetGroup
	}
	t1, t2, t3 := tcpGroup("tls-a"), tcpGroup("tls-b"), tcpGroup("raw")
	lbID := w.lb.LoadBalancerID
	create := func(protocol string, port int, acts []api.Action, certs ...string) (api.Listener, error) {
		return createListener(s, lbID, protocol, port, acts, certs...)
	}
	// A TLS listener with no default refuses what no rule matches.
	tls, err := create(api.ProtocolTLS, 443, nil)
	mustOK(t, err)
	if len(tls.DefaultActions) != 0 || tls.SSLPolicy != "" {
		t.Fatalf("TLS listener %+v", tls)
	}
	r, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tls.ListenerID, Priority: 1, Conditions: hostRule("a.example.com", "*.b.example.com"),
		Actions: forwardTo(t1.TargetGroupID, t2.TargetGroupID)})
	mustOK(t, err)
	// A rule forwarding to no group refuses its names (a more specific listener hostname
	// no route serves).
	refuse := []api.Action{{Type: api.ActionTypeForward, ForwardConfig: &api.ForwardActionConfig{}}}
	mustOK(t, func() error {
		_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tls.ListenerID, Priority: 3, Conditions: hostRule("x.b.example.com"), Actions: refuse})
		return err
	}())
	tcp, err := create(api.ProtocolTCP, 5432, forwardTo(t3.TargetGroupID))
	mustOK(t, err)
	// A UDP listener (a fakecloud extension on application load balancers) forwards to UDP
	// groups, whose health check is TCP on the traffic port by default.
	ug, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "dns", Protocol: api.ProtocolUDP, Port: 53, VpcID: w.vpc})
	mustOK(t, err)
	if hc := ug.TargetGroup.HealthCheck; hc.Protocol != api.ProtocolTCP || hc.Port != api.HealthCheckPortTraffic {
		t.Errorf("UDP group's health check %+v, want TCP on the traffic port", hc)
	}
	udp, err := create(api.ProtocolUDP, 53, forwardTo(ug.TargetGroup.TargetGroupID))
	mustOK(t, err)
	// Ports are per transport: 53/TCP beside 53/UDP (DNS), but one stream listener a port and
	// one UDP listener a port.
	dnsTCP, err := create(api.ProtocolTCP, 53, forwardTo(t3.TargetGroupID))
	mustOK(t, err)
	_, err = create(api.ProtocolTLS, 53, forwardTo(t1.TargetGroupID))
	wantCode(t, err, api.ErrDuplicateListener)
	_, err = create(api.ProtocolHTTP, 53, forwardTo(w.tg2.TargetGroupID))
	wantCode(t, err, api.ErrDuplicateListener)
	ug2, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "dns-b", Protocol: api.ProtocolUDP, Port: 53, VpcID: w.vpc})
	mustOK(t, err)
	_, err = create(api.ProtocolUDP, 53, forwardTo(ug2.TargetGroup.TargetGroupID))
	wantCode(t, err, api.ErrDuplicateListener)
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: dnsTCP.ListenerID, Protocol: api.ProtocolUDP, DefaultActions: forwardTo(ug2.TargetGroup.TargetGroupID)})
	wantCode(t, err, api.ErrDuplicateListener)
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: tcp.ListenerID, Port: 53})
	wantCode(t, err, api.ErrDuplicateListener)

	cert := importCert(t, s, "a.example.com")
	for name, tc := range map[string]struct {
		err  func() error
		code *api.Error
		says string
	}{
		"TLS listener with an SslPolicy and no certificate": {func() error {
			_, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lbID, Protocol: api.ProtocolTLS, Port: 8443, SSLPolicy: api.SSLPolicyTLS12})
			return err
		}, api.ErrValidationError, "give a TLS listener Certificates to terminate TLS"},
		"TCP listener with a certificate": {func() error {
			_, err := create(api.ProtocolTCP, 8445, forwardTo(t1.TargetGroupID), cert.CertificateID)
			return err
		}, api.ErrValidationError, "HTTPS and TLS listeners only"},
		"certificates added to a passthrough TLS listener": {func() error {
			_, err := s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: tls.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: cert.CertificateID}}})
			return err
		}, api.ErrInvalidConfigurationRequest, "TLS listeners that terminate TLS"},
		"TCP listener refusing":          {func() error { _, err := create(api.ProtocolTCP, 8000, refuse); return err }, api.ErrValidationError, "at least one target group"},
		"TCP listener without a default": {func() error { _, err := create(api.ProtocolTCP, 8000, nil); return err }, api.ErrValidationError, "required"},
		"TCP listener with a fixed response": {func() error {
			_, err := create(api.ProtocolTCP, 8000, []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}})
			return err
		}, api.ErrValidationError, "forward actions only"},
		"TLS listener forwarding to an HTTP group": {func() error { _, err := create(api.ProtocolTLS, 8443, forwardTo(w.tg2.TargetGroupID)); return err },
			api.ErrIncompatibleProtocols, "TCP target groups"},
		"HTTP listener forwarding to a TCP group": {func() error {
			_, err := create(api.ProtocolHTTP, 8080, forwardTo(tcpGroup("h").TargetGroupID))
			return err
		},
			api.ErrIncompatibleProtocols, "HTTP or HTTPS target groups"},
		"TLS forward with a timeout": {func() error {
			acts := forwardTo(t1.TargetGroupID)
			acts[0].TimeoutConfig = &api.TimeoutConfig{RequestMillis: 100}
			_, err := create(api.ProtocolTLS, 8443, acts)
			return err
		}, api.ErrValidationError, "does not see requests"},
		"TCP forward with retries": {func() error {
			acts := forwardTo(t1.TargetGroupID)
			acts[0].RetryConfig = &api.RetryConfig{Attempts: 1}
			_, err := create(api.ProtocolTCP, 8444, acts)
			return err
		}, api.ErrValidationError, "does not see requests"},
		"TCP forward passing TLS through": {func() error {
			acts := forwardTo(t1.TargetGroupID)
			acts[0].TLSPassthrough = true
			_, err := create(api.ProtocolTCP, 8446, acts)
			return err
		}, api.ErrValidationError, "TlsPassthrough applies to TLS listeners only"},
		"HTTP rule passing TLS through": {func() error {
			acts := forwardTo(w.tg2.TargetGroupID)
			acts[0].TLSPassthrough = true
			_, err := create(api.ProtocolHTTP, 8081, acts)
			return err
		}, api.ErrValidationError, "TlsPassthrough applies to TLS listeners only"},
		"UDP listener to a TCP group": {func() error { _, err := create(api.ProtocolUDP, 54, forwardTo(t3.TargetGroupID)); return err }, api.ErrIncompatibleProtocols, "UDP target groups"},
		"TCP listener to a UDP group": {func() error {
			_, err := create(api.ProtocolTCP, 54, forwardTo(ug.TargetGroup.TargetGroupID))
			return err
		}, api.ErrIncompatibleProtocols, "TCP target groups"},
		"HTTP listener to a UDP group": {func() error {
			_, err := create(api.ProtocolHTTP, 54, forwardTo(ug.TargetGroup.TargetGroupID))
			return err
		}, api.ErrIncompatibleProtocols, "HTTP or HTTPS target groups"},
		"UDP listener without a default": {func() error { _, err := create(api.ProtocolUDP, 54, nil); return err }, api.ErrValidationError, "required"},
		"UDP listener with a fixed response": {func() error {
			_, err := create(api.ProtocolUDP, 54, []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "200"}}})
			return err
		}, api.ErrValidationError, "forward actions only"},
		"UDP rule": {func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: udp.ListenerID, Priority: 1, Conditions: hostRule("c.example.com"), Actions: forwardTo(ug.TargetGroup.TargetGroupID)})
			return err
		}, api.ErrInvalidConfigurationRequest, "takes no rules"},
		"UDP group with an HTTPS health check": {func() error {
			_, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "dns2", Protocol: api.ProtocolUDP, Port: 53, VpcID: w.vpc, HealthCheck: api.HealthCheck{Protocol: api.ProtocolHTTPS}})
			return err
		}, api.ErrValidationError, "TCP or HTTP"},
		"TLS rule with a path": {func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tls.ListenerID, Priority: 2, Conditions: append(hostRule("c.example.com"), pathRule("", "/")...),
				Actions: forwardTo(t1.TargetGroupID)})
			return err
		}, api.ErrValidationError, "SNI server name only"},
		"TLS rule with a redirect": {func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tls.ListenerID, Priority: 2, Conditions: hostRule("c.example.com"),
				Actions: []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{StatusCode: api.RedirectHTTP301, Host: "x.example.com"}}}})
			return err
		}, api.ErrValidationError, "forward actions only"},
		"TLS rule with transforms": {func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tls.ListenerID, Priority: 2, Conditions: hostRule("c.example.com"),
				Actions: forwardTo(t1.TargetGroupID), Transforms: []api.RuleTransform{hostTransform("^c", "d")}})
			return err
		}, api.ErrValidationError, "a TLS listener's rules forward connections, not requests"},
		"TLS rule modified to transforms": {func() error {
			_, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: r.Rule.RuleID, Transforms: []api.RuleTransform{hostTransform("^c", "d")}})
			return err
		}, api.ErrValidationError, "transforms apply to rules of HTTP and HTTPS listeners only"},
		"TCP rule": {func() error {
			_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: tcp.ListenerID, Priority: 1, Conditions: hostRule("c.example.com"), Actions: forwardTo(t3.TargetGroupID)})
			return err
		}, api.ErrInvalidConfigurationRequest, "takes no rules"},
		"TLS listener with rules turned HTTP": {func() error {
			_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: tls.ListenerID, Protocol: api.ProtocolHTTP, DefaultActions: forwardTo(w.tg2.TargetGroupID)})
			return err
		}, api.ErrInvalidConfigurationRequest, "delete them first"},
		"TLS rule modified to a path": {func() error {
			_, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: r.Rule.RuleID, Conditions: pathRule("", "/")})
			return err
		}, api.ErrValidationError, "SNI server name only"},
	} {
		err := tc.err()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, tc.code) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: got %v, want %s saying %q", name, err, tc.code.Code, tc.says)
		}
	}
	// The TLS listener gains a default; the groups show the load balancer they serve.
	m, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: tls.ListenerID, DefaultActions: forwardTo(t2.TargetGroupID)})
	mustOK(t, err)
	if len(m.Listener.DefaultActions) != 1 {
		t.Errorf("default actions %+v", m.Listener.DefaultActions)
	}
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{t1.TargetGroupID, t3.TargetGroupID}})
	mustOK(t, err)
	for _, g := range d.TargetGroups {
		if len(g.LoadBalancerIDs) != 1 || g.LoadBalancerIDs[0] != lbID {
			t.Errorf("group %s serves %v, want [%s]", g.TargetGroupID, g.LoadBalancerIDs, lbID)
		}
	}
	// A TLS listener given certificates terminates TLS: it keeps SNI rules and TCP groups,
	// takes an SslPolicy (the default when none is given) and more certificates.
	term, err := create(api.ProtocolTLS, 9443, forwardTo(t1.TargetGroupID), cert.CertificateID)
	mustOK(t, err)
	if term.SSLPolicy != api.SSLPolicyDefault || len(term.Certificates) != 1 || term.Certificates[0].CertificateID != cert.CertificateID {
		t.Errorf("terminating TLS listener %+v; want the default policy and the certificate", term)
	}
	_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: term.ListenerID, Priority: 1, Conditions: hostRule("b.example.com"), Actions: forwardTo(t2.TargetGroupID)})
	mustOK(t, err)
	// Terminate and passthrough on one port: a rule keeps its names' TLS undecrypted.
	pass := forwardTo(t3.TargetGroupID)
	pass[0].TLSPassthrough = true
	pr, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: term.ListenerID, Priority: 2, Conditions: hostRule("pass.example.com"), Actions: pass})
	mustOK(t, err)
	if !pr.Rule.Actions[0].TLSPassthrough {
		t.Errorf("rule created with TlsPassthrough reads back %+v", pr.Rule.Actions[0])
	}
	dr, err := s.DescribeRules(admin(), &api.DescribeRulesRequest{RuleIDs: []string{pr.Rule.RuleID}})
	mustOK(t, err)
	if len(dr.Rules) != 1 || !dr.Rules[0].Actions[0].TLSPassthrough {
		t.Errorf("DescribeRules of the passthrough rule: %+v", dr.Rules)
	}
	other := importCert(t, s, "b.example.com")
	added, err := s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: term.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: other.CertificateID}}})
	mustOK(t, err)
	if len(added.Certificates) != 2 {
		t.Errorf("certificates after adding one: %+v", added.Certificates)
	}
	// A TCP group serving the application load balancer serves no network load balancer.
	nlb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "nlb", Type: api.LoadBalancerTypeNetwork, SubnetID: w.subnet})
	mustOK(t, err)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: nlb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 5432, DefaultActions: forwardTo(t3.TargetGroupID)})
	if err == nil {
		t.Error("a network listener took a group serving an application load balancer")
	}
}

// TestUDPListenerKeyOfAnOldStateFile: an application load balancer's UDP listener stored when
// ports were not per transport (its key the stream listeners') loads with the UDP key, so a TCP
// listener may join it on its port; other listeners keep theirs.
func TestUDPListenerKeyOfAnOldStateFile(t *testing.T) {
	for _, tc := range []struct{ protocol, key, want string }{
		{api.ProtocolUDP, "lb-1/HTTP/53", "lb-1/UDP/53"},
		{api.ProtocolTCP, "lb-1/HTTP/53", "lb-1/HTTP/53"},
		{api.ProtocolUDP, "lb-2/UDP/53", "lb-2/UDP/53"}, // a network load balancer's
	} {
		raw := fmt.Sprintf(`{"ID":"listener-1","LoadBalancerID":"lb-1","PortKey":%q,"Protocol":%q,"Port":53}`, tc.key, tc.protocol)
		obj, err := decodeRecord(tableListeners, []byte(raw))
		mustOK(t, err)
		if got := obj.(*listenerRec).PortKey; got != tc.want {
			t.Errorf("%s listener stored with key %s loads with %s, want %s", tc.protocol, tc.key, got, tc.want)
		}
	}
}

// createListener creates a listener of the load balancer with default actions acts and the
// certificates certs (the first the default).
func createListener(s *Store, lbID, protocol string, port int, acts []api.Action, certs ...string) (api.Listener, error) {
	req := &api.CreateListenerRequest{LoadBalancerID: lbID, Protocol: protocol, Port: port, DefaultActions: acts}
	for _, c := range certs {
		req.Certificates = append(req.Certificates, api.ListenerCertificate{CertificateID: c})
	}
	l, err := s.CreateListener(admin(), req)
	if err != nil {
		return api.Listener{}, err
	}
	return l.Listener, nil
}
