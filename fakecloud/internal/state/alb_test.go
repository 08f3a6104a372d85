package state

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// albWorld is a VPC with one subnet, an application load balancer and two HTTP target groups.
type albWorld struct {
	world
	lb       api.LoadBalancer
	tg, tg2  api.TargetGroup
	listener api.Listener // HTTP on port 80, forwarding to tg
}

func newALBWorld(t *testing.T, s *Store) albWorld {
	t.Helper()
	w := albWorld{world: newWorld(t, s, "10.0.0.0/16", "10.0.0.0/24")}
	lb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "gw", Type: api.LoadBalancerTypeApplication, SubnetID: w.subnet})
	mustOK(t, err)
	w.lb = lb.LoadBalancer
	w.tg = w.httpGroup(t, "web", "")
	w.tg2 = w.httpGroup(t, "api", "")
	l, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg.TargetGroupID}}})
	mustOK(t, err)
	w.listener = l.Listener
	return w
}

func (w albWorld) httpGroup(t *testing.T, name, version string) api.TargetGroup {
	t.Helper()
	tg, err := w.s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: name, Protocol: api.ProtocolHTTP, ProtocolVersion: version, Port: 8080, VpcID: w.vpc})
	mustOK(t, err)
	return tg.TargetGroup
}

func intp(n int) *int { return &n }

func pathRule(mt string, values ...string) []api.RuleCondition {
	return []api.RuleCondition{{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: values, MatchType: mt}}}
}

func forwardTo(ids ...string) []api.Action {
	fc := &api.ForwardActionConfig{}
	for _, id := range ids {
		fc.TargetGroups = append(fc.TargetGroups, api.TargetGroupTuple{TargetGroupID: id, Weight: intp(1)})
	}
	return []api.Action{{Type: api.ActionTypeForward, ForwardConfig: fc}}
}

func (w albWorld) rule(t *testing.T, priority int, conds []api.RuleCondition, acts []api.Action) api.Rule {
	t.Helper()
	r, err := w.s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: priority, Conditions: conds, Actions: acts})
	mustOK(t, err)
	return r.Rule
}

func (w albWorld) rules(t *testing.T) []api.Rule {
	t.Helper()
	out, err := w.s.DescribeRules(admin(), &api.DescribeRulesRequest{ListenerID: w.listener.ListenerID})
	mustOK(t, err)
	return out.Rules
}

func TestApplicationLoadBalancerRules(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	if w.lb.Type != api.LoadBalancerTypeApplication || w.tg.LoadBalancerType != api.LoadBalancerTypeApplication || w.tg.ProtocolVersion != api.ProtocolVersionHTTP1 {
		t.Fatalf("types: load balancer %q, group %q %q", w.lb.Type, w.tg.LoadBalancerType, w.tg.ProtocolVersion)
	}
	// The listener's one-group forward is normalised to a weighted forward of weight 1.
	wantDefault := []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg.TargetGroupID,
		ForwardConfig: &api.ForwardActionConfig{TargetGroups: []api.TargetGroupTuple{{TargetGroupID: w.tg.TargetGroupID, Weight: intp(1)}}}}}
	if diff := cmp.Diff(wantDefault, w.listener.DefaultActions); diff != "" {
		t.Errorf("default actions (-want +got):\n%s", diff)
	}

	api1 := w.rule(t, 10, []api.RuleCondition{
		{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{"*.example.com"}}},
		{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{"/api"}, MatchType: api.MatchTypePrefix}},
		{Field: api.ConditionHTTPHeader, HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{HTTPHeaderName: "X-Env", Values: []string{"canary|beta"}, MatchType: api.MatchTypeRegex}},
	}, []api.Action{{
		Type: api.ActionTypeForward,
		ForwardConfig: &api.ForwardActionConfig{TargetGroups: []api.TargetGroupTuple{
			{TargetGroupID: w.tg.TargetGroupID, Weight: intp(90)}, {TargetGroupID: w.tg2.TargetGroupID, Weight: intp(10),
				RequestHeaderModifications: &api.HeaderModifications{Set: []api.HTTPHeader{{Name: "X-Backend", Value: "api"}}}},
		}},
		RequestHeaderModifications:  &api.HeaderModifications{Add: []api.HTTPHeader{{Name: "X-Via", Value: "fc"}}, Remove: []string{"X-Debug"}},
		ResponseHeaderModifications: &api.HeaderModifications{Set: []api.HTTPHeader{{Name: "Cache-Control", Value: "no-store"}}},
		URLRewriteConfig:            &api.URLRewriteConfig{Host: "api.internal", PathModification: &api.PathModification{Type: api.PathReplacePrefixMatch, Value: "/v2"}},
		RequestMirrors:              []api.RequestMirrorConfig{{TargetGroupID: w.tg2.TargetGroupID}},
		TimeoutConfig:               &api.TimeoutConfig{RequestMillis: 10000, BackendRequestMillis: 2000},
		RetryConfig:                 &api.RetryConfig{Codes: []int{503, 500}, Attempts: 2, BackoffMillis: 50},
		CorsConfig:                  &api.CorsConfig{AllowOrigins: []string{"https://*.example.com", "https://*", "http://a_b.example:8080"}, AllowMethods: []string{"*"}, MaxAgeSeconds: 60},
	}})
	if cc := api1.Actions[0].CorsConfig; cc == nil || len(cc.AllowOrigins) != 3 || cc.MaxAgeSeconds != 60 {
		t.Errorf("CORS config stored as %+v", cc)
	}
	if rc := api1.Actions[0].RetryConfig; rc == nil || !slices.Equal(rc.Codes, []int{500, 503}) || rc.Attempts != 2 || rc.BackoffMillis != 50 {
		t.Errorf("retry config stored as %+v, want codes 500 and 503 (sorted), 2 attempts, 50 ms", rc)
	}
	if got := *api1.Actions[0].RequestMirrors[0].Percent; got != 100 {
		t.Errorf("mirror percent defaults to %v, want 100", got)
	}
	redirect := w.rule(t, 5, []api.RuleCondition{
		{Field: api.ConditionHTTPRequestMethod, HTTPRequestMethodConfig: &api.HTTPRequestMethodConditionConfig{Values: []string{"GET", "HEAD"}}},
		{Field: api.ConditionQueryString, QueryStringConfig: &api.QueryStringConditionConfig{Values: []api.QueryStringKeyValue{{Key: "legacy", Value: "1"}}}},
	}, []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{
		Protocol: api.ProtocolHTTPS, Host: "#{host}", Port: 443, Path: "/#{path}", StatusCode: api.RedirectHTTP301}}})
	if rc := redirect.Actions[0].RedirectConfig; rc.Host != "" || rc.Path != "" {
		t.Errorf("redirect placeholders are kept (%q, %q); want them normalised to empty", rc.Host, rc.Path)
	}
	fixed := w.rule(t, 20, pathRule("", "/healthz"), []api.Action{{Type: api.ActionTypeFixedResponse,
		FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "200", ContentType: "text/plain", MessageBody: "ok"}}})
	if fixed.Conditions[0].PathPatternConfig.MatchType != api.MatchTypeExact {
		t.Errorf("path match type defaults to %q, want Exact", fixed.Conditions[0].PathPatternConfig.MatchType)
	}

	// Rules come by priority, then the default rule.
	got := w.rules(t)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.RuleID)
	}
	want := []string{redirect.RuleID, api1.RuleID, fixed.RuleID, w.listener.ListenerID + defaultRuleSuffix}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("rule order (-want +got):\n%s", diff)
	}
	if !got[3].IsDefault || cmp.Diff(wantDefault, got[3].Actions) != "" {
		t.Errorf("default rule %+v does not carry the listener's default actions", got[3])
	}

	// Both groups now serve the load balancer; one in use by a rule cannot be deleted.
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{LoadBalancerID: w.lb.LoadBalancerID})
	mustOK(t, err)
	if len(d.TargetGroups) != 2 {
		t.Errorf("load balancer %s serves %d groups, want 2", w.lb.LoadBalancerID, len(d.TargetGroups))
	}
	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: w.tg2.TargetGroupID})
	wantCode(t, err, api.ErrResourceInUse)
	if !strings.Contains(err.Error(), api1.RuleID) {
		t.Errorf("in-use error %q does not name the rule", err)
	}

	// ModifyRule replaces the actions and keeps the conditions; dropping the group frees it.
	m, err := s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: api1.RuleID, Actions: forwardTo(w.tg.TargetGroupID)})
	mustOK(t, err)
	if diff := cmp.Diff(api1.Conditions, m.Rule.Conditions); diff != "" {
		t.Errorf("ModifyRule changed the conditions (-want +got):\n%s", diff)
	}
	reg, err := s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: w.tg2.TargetGroupID, Targets: []api.Target{{IP: "10.0.0.50"}}})
	_ = reg
	mustOK(t, err)
	h, err := s.DescribeTargetHealth(admin(), &api.DescribeTargetHealthRequest{TargetGroupID: w.tg2.TargetGroupID})
	mustOK(t, err)
	if st := h.TargetHealthDescriptions[0].TargetHealth.State; st != api.TargetHealthUnused {
		t.Errorf("a target of a group nothing uses is %s, want unused", st)
	}
	// New conditions without a Prefix path take away what a kept ReplacePrefixMatch needs.
	_, err = s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: api1.RuleID, Actions: api1.Actions})
	mustOK(t, err)
	_, err = s.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: api1.RuleID, Conditions: pathRule(api.MatchTypeExact, "/api")})
	wantCode(t, err, api.ErrInvalidLoadBalancerAction)

	_, err = s.DeleteRule(admin(), &api.DeleteRuleRequest{RuleID: fixed.RuleID})
	mustOK(t, err)
	_, err = s.DeleteRule(admin(), &api.DeleteRuleRequest{RuleID: fixed.RuleID})
	wantCode(t, err, api.ErrRuleNotFound)
	_, err = s.DeleteRule(admin(), &api.DeleteRuleRequest{RuleID: w.listener.ListenerID + defaultRuleSuffix})
	wantCode(t, err, &api.Error{Code: api.CodeOperationNotPermitted})

	// Deleting the listener deletes its rules; deleting the load balancer, its listeners.
	_, err = s.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: w.lb.LoadBalancerID})
	mustOK(t, err)
	if n := len(s.Snapshot().Rules); n != 0 {
		t.Errorf("%d rules survive their load balancer", n)
	}
	_, err = s.DeleteTargetGroup(admin(), &api.DeleteTargetGroupRequest{TargetGroupID: w.tg2.TargetGroupID})
	mustOK(t, err)
}

func TestRulePriorities(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	a := w.rule(t, 1, pathRule("", "/a"), forwardTo(w.tg.TargetGroupID))
	b := w.rule(t, 2, pathRule("", "/b"), forwardTo(w.tg2.TargetGroupID))
	_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 2, Conditions: pathRule("", "/c"), Actions: forwardTo(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrPriorityInUse)
	if !strings.Contains(err.Error(), b.RuleID) {
		t.Errorf("PriorityInUse %q does not name the rule holding it", err)
	}
	for _, p := range []int{0, 50001} {
		_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: p, Conditions: pathRule("", "/c"), Actions: forwardTo(w.tg.TargetGroupID)})
		wantCode(t, err, api.ErrValidationError)
	}
	// A swap is one step.
	out, err := s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: a.RuleID, Priority: 2}, {RuleID: b.RuleID, Priority: 1}}})
	mustOK(t, err)
	if len(out.Rules) != 2 {
		t.Fatalf("SetRulePriorities answered %d rules", len(out.Rules))
	}
	if got := w.rules(t); got[0].RuleID != b.RuleID || got[1].RuleID != a.RuleID {
		t.Errorf("after the swap the order is %s, %s", got[0].RuleID, got[1].RuleID)
	}
	// Moving one rule onto another's priority is refused and changes nothing.
	_, err = s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: a.RuleID, Priority: 1}}})
	wantCode(t, err, api.ErrPriorityInUse)
	if got := w.rules(t); got[0].RuleID != b.RuleID || got[0].Priority != 1 || got[1].Priority != 2 {
		t.Errorf("a refused SetRulePriorities changed the rules: %+v", got)
	}
	_, err = s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: "rule-nope", Priority: 9}}})
	wantCode(t, err, api.ErrRuleNotFound)
	// The freed priority is usable again.
	_, err = s.SetRulePriorities(admin(), &api.SetRulePrioritiesRequest{RulePriorities: []api.RulePriorityPair{{RuleID: a.RuleID, Priority: 7}}})
	mustOK(t, err)
	w.rule(t, 2, pathRule("", "/c"), forwardTo(w.tg.TargetGroupID))
}

func TestApplicationLoadBalancerLimits(t *testing.T) {
	s := openT(t, Config{ALBLimits: ALBLimits{RulesPerLoadBalancer: 2, ConditionValuesPerRule: 2, TargetGroupsPerAction: 2, CertificatesPerListener: 1, Certificates: 3}})
	w := newALBWorld(t, s)
	w.rule(t, 1, pathRule("", "/a", "/b"), forwardTo(w.tg.TargetGroupID, w.tg2.TargetGroupID))
	_, err := s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 2, Conditions: pathRule("", "/a", "/b", "/c"), Actions: forwardTo(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrValidationError)
	tg3 := w.httpGroup(t, "third", "")
	_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 2, Conditions: pathRule("", "/c"),
		Actions: forwardTo(w.tg.TargetGroupID, w.tg2.TargetGroupID, tg3.TargetGroupID)})
	wantCode(t, err, api.ErrTooManyTargetGroups)
	w.rule(t, 2, pathRule("", "/c"), forwardTo(tg3.TargetGroupID))
	_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 3, Conditions: pathRule("", "/d"), Actions: forwardTo(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrTooManyRules)

	var certs []string
	for range 3 {
		certs = append(certs, importCert(t, s, "a.example.com").CertificateID)
	}
	cert, key := testCert(t, []string{"b.example.com"}, time.Now().Add(time.Hour))
	_, err = s.ImportCertificate(admin(), &api.ImportCertificateRequest{Certificate: cert, PrivateKey: key})
	wantCode(t, err, api.ErrTooManyCertificates)
	l, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443,
		DefaultActions: forwardTo(w.tg.TargetGroupID), Certificates: []api.ListenerCertificate{{CertificateID: certs[0]}}})
	mustOK(t, err)
	_, err = s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: l.Listener.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: certs[1]}, {CertificateID: certs[2]}}})
	wantCode(t, err, api.ErrTooManyCertificates)
}

func TestApplicationTargetGroups(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	grpc := w.httpGroup(t, "grpc", api.ProtocolVersionGRPC)
	wantHC := api.HealthCheck{Protocol: api.ProtocolHTTP, Port: api.HealthCheckPortTraffic, Path: defaultGRPCHealthCheckPath,
		IntervalSeconds: 15, TimeoutSeconds: 5, HealthyThresholdCount: 2, UnhealthyThresholdCount: 2, Matcher: "0-99"}
	if diff := cmp.Diff(wantHC, grpc.HealthCheck); diff != "" {
		t.Errorf("gRPC group health check (-want +got):\n%s", diff)
	}
	if w.tg.HealthCheck.Matcher != "200-399" || w.tg.HealthCheck.Path != "/" {
		t.Errorf("HTTP group health check %+v, want path / and matcher 200-399", w.tg.HealthCheck)
	}
	https, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tls", Protocol: api.ProtocolHTTPS, Port: 8443, VpcID: w.vpc})
	mustOK(t, err)
	if https.TargetGroup.HealthCheck.Protocol != api.ProtocolHTTPS {
		t.Errorf("an HTTPS group checks over %s, want HTTPS", https.TargetGroup.HealthCheck.Protocol)
	}
	m, err := s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: grpc.TargetGroupID, HealthCheck: api.HealthCheck{Matcher: "0,12"}})
	mustOK(t, err)
	if m.TargetGroup.HealthCheck.Matcher != "0,12" {
		t.Errorf("modified matcher %q", m.TargetGroup.HealthCheck.Matcher)
	}
	_, err = s.ModifyTargetGroup(admin(), &api.ModifyTargetGroupRequest{TargetGroupID: grpc.TargetGroupID, HealthCheck: api.HealthCheck{Matcher: "200"}})
	wantCode(t, err, api.ErrValidationError)

	// A group serves one type of load balancer.
	tcp, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "tcp", Protocol: api.ProtocolTCP, Port: 80, VpcID: w.vpc})
	mustOK(t, err)
	_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 1, Conditions: pathRule("", "/x"), Actions: forwardTo(tcp.TargetGroup.TargetGroupID)})
	wantCode(t, err, api.ErrIncompatibleProtocols)
	nlb, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "l4", SubnetID: w.subnet})
	mustOK(t, err)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: nlb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg2.TargetGroupID}}})
	wantCode(t, err, api.ErrIncompatibleProtocols)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: nlb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: w.tg2.TargetGroupID}}})
	wantCode(t, err, api.ErrValidationError)
	// A group serves one load balancer.
	other, err := s.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "gw2", Type: api.LoadBalancerTypeApplication, SubnetID: w.subnet})
	mustOK(t, err)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: other.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: forwardTo(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrTargetGroupAssociationLimit)
	// Listeners: one per port whatever the protocol; the same settings answer the same one.
	again, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: forwardTo(w.tg.TargetGroupID)})
	mustOK(t, err)
	if again.Listener.ListenerID != w.listener.ListenerID {
		t.Errorf("repeating CreateListener made %s, want %s", again.Listener.ListenerID, w.listener.ListenerID)
	}
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: forwardTo(w.tg2.TargetGroupID)})
	wantCode(t, err, api.ErrDuplicateListener)
}

func TestApplicationLoadBalancerHonestState(t *testing.T) {
	s := openT(t, Config{DataPlane: true})
	w := newALBWorld(t, s)
	if w.lb.State != api.LoadBalancerStateProvisioning {
		t.Fatalf("a new application load balancer is %s, want provisioning", w.lb.State)
	}
	mustOK(t, s.ReportLoadBalancerState([]api.LoadBalancerStateReport{{LoadBalancerID: w.lb.LoadBalancerID, State: api.LoadBalancerStateActive}}))
	d, err := s.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{Filters: []api.Filter{{Name: "type", Values: []string{"application"}}}})
	mustOK(t, err)
	if len(d.LoadBalancers) != 1 || d.LoadBalancers[0].State != api.LoadBalancerStateActive {
		t.Fatalf("after the data plane's report: %+v", d.LoadBalancers)
	}
}

func TestModifyListener(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	c1, c2 := importCert(t, s, "a.example.com"), importCert(t, s, "b.example.com")
	// HTTP -> HTTPS needs a certificate.
	_, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, Protocol: api.ProtocolHTTPS})
	wantCode(t, err, api.ErrValidationError)
	m, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, Protocol: api.ProtocolHTTPS, Port: 443,
		Certificates: []api.ListenerCertificate{{CertificateID: c1.CertificateID}}, DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse,
			FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "404"}}}})
	mustOK(t, err)
	l := m.Listener
	if l.Port != 443 || l.SSLPolicy != api.SSLPolicyDefault || len(l.Certificates) != 1 || !l.Certificates[0].IsDefault || l.DefaultActions[0].Type != api.ActionTypeFixedResponse {
		t.Fatalf("modified listener %+v", l)
	}
	// The default group is no longer used: its targets show unused.
	d, err := s.DescribeTargetGroups(admin(), &api.DescribeTargetGroupsRequest{TargetGroupIDs: []string{w.tg.TargetGroupID}})
	mustOK(t, err)
	if len(d.TargetGroups[0].LoadBalancerIDs) != 0 {
		t.Errorf("group still serves %v", d.TargetGroups[0].LoadBalancerIDs)
	}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: w.listener.ListenerID, SSLPolicy: "TLS-please"})
	wantCode(t, err, api.ErrSSLPolicyNotFound)
	// A new default certificate replaces the old; extra ones stay.
	_, err = s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: l.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: c2.CertificateID}}})
	mustOK(t, err)
	c3 := importCert(t, s, "c.example.com")
	m, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: c3.CertificateID}}})
	mustOK(t, err)
	want := []api.ListenerCertificate{{CertificateID: c3.CertificateID, IsDefault: true}, {CertificateID: c2.CertificateID}}
	if diff := cmp.Diff(want, m.Listener.Certificates); diff != "" {
		t.Errorf("certificates (-want +got):\n%s", diff)
	}
	// Hostname scopes: set (lowercased), kept by a change that leaves them out, refused when
	// bad, removed by [].
	scopes := []string{"Second-Example.org", "*.wildcard.org"}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, HostnameScopes: &scopes})
	mustOK(t, err)
	m, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, SSLPolicy: api.SSLPolicyTLS12})
	mustOK(t, err)
	if !slices.Equal(m.Listener.HostnameScopes, []string{"second-example.org", "*.wildcard.org"}) {
		t.Errorf("hostname scopes %q", m.Listener.HostnameScopes)
	}
	for _, bad := range [][]string{{"a..b"}, {"*.a.test", "*.A.test"}, {"*"}} {
		_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, HostnameScopes: &bad})
		wantCode(t, err, api.ErrValidationError)
	}
	d2, err := s.DescribeListeners(admin(), &api.DescribeListenersRequest{ListenerIDs: []string{l.ListenerID}})
	mustOK(t, err)
	if len(d2.Listeners[0].HostnameScopes) != 2 {
		t.Errorf("a refused change left scopes %q", d2.Listeners[0].HostnameScopes)
	}
	// Back to HTTP drops the certificates and the scopes; an HTTP listener takes none.
	m, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, Protocol: api.ProtocolHTTP})
	mustOK(t, err)
	if len(m.Listener.Certificates) != 0 || m.Listener.SSLPolicy != "" || m.Listener.HostnameScopes != nil {
		t.Errorf("an HTTP listener kept %+v %q %q", m.Listener.Certificates, m.Listener.SSLPolicy, m.Listener.HostnameScopes)
	}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, HostnameScopes: &scopes})
	wantCode(t, err, api.ErrValidationError)
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: c3.CertificateID})
	mustOK(t, err)
}

// --- certificates

// testCert makes a self-signed ECDSA certificate for names, valid from an hour ago until
// notAfter, and returns the PEM certificate and key.
func testCert(t testing.TB, names []string, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustOK(t.(*testing.T), err)
	return certFor(t, key, &key.PublicKey, names, notAfter)
}

func certFor(t testing.TB, key any, pub any, names []string, notAfter time.Time) (string, string) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func importCert(t *testing.T, s *Store, names ...string) api.Certificate {
	t.Helper()
	cert, key := testCert(t, names, time.Now().Add(24*time.Hour))
	out, err := s.ImportCertificate(admin(), &api.ImportCertificateRequest{Certificate: cert, PrivateKey: key})
	mustOK(t, err)
	return out.Certificate
}

func TestCertificates(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	cert, key := testCert(t, []string{"www.example.com", "example.com"}, time.Now().Add(24*time.Hour))
	imp, err := s.ImportCertificate(admin(), &api.ImportCertificateRequest{Certificate: cert, PrivateKey: key})
	mustOK(t, err)
	c := imp.Certificate
	if c.DomainName != "www.example.com" || len(c.SubjectAlternativeNames) != 2 || c.KeyAlgorithm != "EC_p256" || len(c.InUseBy) != 0 {
		t.Errorf("imported %+v", c)
	}
	// Describes never carry the key.
	d, err := s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{})
	mustOK(t, err)
	body, _ := json.Marshal(d)
	snap, _ := json.Marshal(s.Snapshot())
	for what, b := range map[string][]byte{"DescribeCertificates": body, "the snapshot": snap} {
		if strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("%s shows a private key", what)
		}
	}
	// The data plane's read path does.
	kp, ok := s.CertificateKeyPair(c.CertificateID)
	if !ok || !strings.Contains(kp.PrivateKeyPem, "PRIVATE KEY") || !strings.Contains(kp.CertificatePem, "CERTIFICATE") || len(kp.DNSNames) != 2 {
		t.Fatalf("CertificateKeyPair = %+v, %v", kp, ok)
	}

	// HTTPS listeners need one; a certificate in use cannot be deleted.
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443, DefaultActions: forwardTo(w.tg.TargetGroupID)})
	wantCode(t, err, api.ErrValidationError)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443, DefaultActions: forwardTo(w.tg.TargetGroupID),
		Certificates: []api.ListenerCertificate{{CertificateID: "cert-nope"}}})
	wantCode(t, err, api.ErrCertificateNotFound)
	_, err = s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTP, Port: 8080, DefaultActions: forwardTo(w.tg.TargetGroupID),
		Certificates: []api.ListenerCertificate{{CertificateID: c.CertificateID}}})
	wantCode(t, err, api.ErrValidationError)
	l, err := s.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: w.lb.LoadBalancerID, Protocol: api.ProtocolHTTPS, Port: 443, DefaultActions: forwardTo(w.tg.TargetGroupID),
		SSLPolicy: api.SSLPolicyTLS13Only, Certificates: []api.ListenerCertificate{{CertificateID: c.CertificateID}}})
	mustOK(t, err)
	lid := l.Listener.ListenerID
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: c.CertificateID})
	wantCode(t, err, api.ErrResourceInUse)

	// SNI certificates: added, listed after the default, removed; the default stays.
	extra := importCert(t, s, "*.api.example.com")
	add, err := s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: lid, Certificates: []api.ListenerCertificate{{CertificateID: extra.CertificateID}}})
	mustOK(t, err)
	want := []api.ListenerCertificate{{CertificateID: c.CertificateID, IsDefault: true}, {CertificateID: extra.CertificateID}}
	if diff := cmp.Diff(want, add.Certificates); diff != "" {
		t.Errorf("listener certificates (-want +got):\n%s", diff)
	}
	d, err = s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{CertificateIDs: []string{extra.CertificateID}})
	mustOK(t, err)
	if diff := cmp.Diff([]string{lid}, d.Certificates[0].InUseBy); diff != "" {
		t.Errorf("InUseBy (-want +got):\n%s", diff)
	}
	_, err = s.RemoveListenerCertificates(admin(), &api.RemoveListenerCertificatesRequest{ListenerID: lid, Certificates: []api.ListenerCertificate{{CertificateID: c.CertificateID}}})
	wantCode(t, err, &api.Error{Code: api.CodeOperationNotPermitted})
	_, err = s.RemoveListenerCertificates(admin(), &api.RemoveListenerCertificatesRequest{ListenerID: lid, Certificates: []api.ListenerCertificate{{CertificateID: extra.CertificateID}}})
	mustOK(t, err)
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: extra.CertificateID})
	mustOK(t, err)
	_, err = s.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: w.listener.ListenerID, Certificates: []api.ListenerCertificate{{CertificateID: c.CertificateID}}})
	wantCode(t, err, api.ErrInvalidConfigurationRequest)
	_, err = s.DescribeCertificates(admin(), &api.DescribeCertificatesRequest{CertificateIDs: []string{extra.CertificateID}})
	wantCode(t, err, api.ErrCertificateNotFound)
	_, err = s.DeleteListener(admin(), &api.DeleteListenerRequest{ListenerID: lid})
	mustOK(t, err)
	_, err = s.DeleteCertificate(admin(), &api.DeleteCertificateRequest{CertificateID: c.CertificateID})
	mustOK(t, err)
}

func TestImportCertificateRefusesBadInput(t *testing.T) {
	s := openT(t, Config{})
	good, goodKey := testCert(t, []string{"a.example.com"}, time.Now().Add(time.Hour))
	_, otherKey := testCert(t, []string{"a.example.com"}, time.Now().Add(time.Hour))
	expired, expiredKey := testCert(t, []string{"old.example.com"}, time.Now().Add(-time.Minute))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	mustOK(t, err)
	weak, weakKey := certFor(t, rsaKey, &rsaKey.PublicKey, []string{"weak.example.com"}, time.Now().Add(time.Hour))
	keyBlock, _ := pem.Decode([]byte(goodKey))
	for _, tc := range []struct {
		name, cert, chain, key, want string
	}{
		{"no certificate", "", "", goodKey, "Certificate is required"},
		{"no key", good, "", "", "PrivateKey is required"},
		{"certificate not PEM", "hello", "", goodKey, "Certificate holds no PEM"},
		{"key in certificate", goodKey, "", goodKey, "Certificate: PEM block 0"},
		{"garbage certificate", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", "", goodKey, "not a valid X.509"},
		{"key not PEM", good, "", "secret", "PrivateKey is not PEM"},
		{"key mismatch", good, "", otherKey, "does not match"},
		{"expired", expired, "", expiredKey, "expired"},
		{"weak RSA", weak, "", weakKey, "2048"},
		{"chain not PEM", good, "junk", goodKey, "CertificateChain"},
		{"key garbage", good, "", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyBlock.Bytes[:10]})), "PrivateKey does not parse"},
		{"two keys", good, "", goodKey + goodKey, "more than one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.ImportCertificate(admin(), &api.ImportCertificateRequest{Certificate: tc.cert, CertificateChain: tc.chain, PrivateKey: tc.key})
			wantCode(t, err, api.ErrValidationError)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(s.Snapshot().Certificates); n != 0 {
		t.Errorf("%d certificates stored after refusals", n)
	}
}

func TestCertificateTags(t *testing.T) {
	s := openT(t, Config{})
	c := importCert(t, s, "a.example.com")
	_, err := s.AddTags(admin(), &api.AddTagsRequest{ResourceIDs: []string{c.CertificateID}, Tags: []api.Tag{{Key: "owner", Value: "flatnet"}}})
	mustOK(t, err)
	d, err := s.DescribeTags(admin(), &api.DescribeTagsRequest{ResourceIDs: []string{c.CertificateID}})
	mustOK(t, err)
	if diff := cmp.Diff([]api.Tag{{Key: "owner", Value: "flatnet"}}, d.TagDescriptions[0].Tags); diff != "" {
		t.Errorf("certificate tags (-want +got):\n%s", diff)
	}
	_, err = s.RemoveTags(admin(), &api.RemoveTagsRequest{ResourceIDs: []string{c.CertificateID}, TagKeys: []string{"owner"}})
	mustOK(t, err)
	if kp, ok := s.CertificateKeyPair(c.CertificateID); !ok || kp.PrivateKeyPem == "" {
		t.Error("retagging lost the certificate's key")
	}
	_, err = s.DescribeTags(admin(), &api.DescribeTagsRequest{ResourceIDs: []string{"cert-nope"}})
	wantCode(t, err, api.ErrCertificateNotFound)
}

func TestModifyNetworkListener(t *testing.T) {
	s := openT(t, Config{})
	w := newLBWorld(t, s, api.SchemeInternal)
	l := w.listen(t, 80)
	other, err := s.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "other", Protocol: api.ProtocolTCP, Port: 9090, VpcID: w.vpc})
	mustOK(t, err)
	m, err := s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, Port: 8080,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: other.TargetGroup.TargetGroupID}}})
	mustOK(t, err)
	if m.Listener.Port != 8080 || m.Listener.DefaultActions[0].TargetGroupID != other.TargetGroup.TargetGroupID {
		t.Fatalf("modified network listener %+v", m.Listener)
	}
	_, err = s.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: w.tg.TargetGroupID, Targets: []api.Target{{IP: "10.0.0.40"}}})
	mustOK(t, err)
	if h := w.health(t); h["10.0.0.40:8080"].TargetHealth.State != api.TargetHealthUnused {
		t.Errorf("the old group's target is %+v, want unused", h["10.0.0.40:8080"].TargetHealth)
	}
	for _, req := range []*api.ModifyListenerRequest{
		{ListenerID: l.ListenerID, Protocol: api.ProtocolHTTP},
		{ListenerID: l.ListenerID, SSLPolicy: api.SSLPolicyDefault},
		{ListenerID: l.ListenerID, DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{StatusCode: "200"}}}},
	} {
		_, err := s.ModifyListener(admin(), req)
		wantCode(t, err, api.ErrValidationError)
	}
	_, err = s.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: l.ListenerID, Protocol: api.ProtocolUDP})
	wantCode(t, err, api.ErrIncompatibleProtocols)
	_, err = s.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: l.ListenerID, Priority: 1, Conditions: pathRule("", "/"), Actions: forwardTo(other.TargetGroup.TargetGroupID)})
	wantCode(t, err, api.ErrInvalidConfigurationRequest)
}

func TestALBClientTokens(t *testing.T) {
	s := openT(t, Config{})
	w := newALBWorld(t, s)
	req := &api.CreateRuleRequest{ListenerID: w.listener.ListenerID, Priority: 4, Conditions: pathRule("", "/a"), Actions: forwardTo(w.tg.TargetGroupID), ClientToken: "rule-once"}
	a, err := s.CreateRule(admin(), req)
	mustOK(t, err)
	b, err := s.CreateRule(admin(), req)
	mustOK(t, err)
	if a.Rule.RuleID != b.Rule.RuleID {
		t.Errorf("a repeated CreateRule with one client token made %s and %s", a.Rule.RuleID, b.Rule.RuleID)
	}
	req.Priority = 5
	_, err = s.CreateRule(admin(), req)
	wantCode(t, err, api.ErrIdempotentParameterMismatch)
	cert, key := testCert(t, []string{"a.example.com"}, time.Now().Add(time.Hour))
	imp := &api.ImportCertificateRequest{Certificate: cert, PrivateKey: key, ClientToken: "cert-once"}
	c1, err := s.ImportCertificate(admin(), imp)
	mustOK(t, err)
	c2, err := s.ImportCertificate(admin(), imp)
	mustOK(t, err)
	if c1.Certificate.CertificateID != c2.Certificate.CertificateID || len(s.Snapshot().Certificates) != 1 {
		t.Errorf("a repeated ImportCertificate with one client token imported twice")
	}
}
