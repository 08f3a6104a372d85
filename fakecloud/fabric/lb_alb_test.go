package fabric

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/l7"
)

// albSnap is lbSnap's load balancer as an application one: HTTP 80 with two rules (given out
// of priority order) and a default fixed response; tg-1 (HTTP) and tg-2 (gRPC) groups.
func albSnap(targets ...api.TargetHealthDescription) *api.Snapshot {
	return appSnap(api.SchemeInternetFacing, []string{"203.0.113.0/24"}, targets...)
}

// appSnap is albSnap with the given scheme and source ranges.
func appSnap(scheme string, ranges []string, targets ...api.TargetHealthDescription) *api.Snapshot {
	snap := lbSnap(scheme, ranges, targets...)
	snap.LoadBalancers[0].Type = api.LoadBalancerTypeApplication
	snap.Listeners = []api.Listener{{ListenerID: "l-1", LoadBalancerID: "lb-1", Protocol: api.ProtocolHTTP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{
			StatusCode: "404", ContentType: "text/plain", MessageBody: "no route"}}}}}
	one, zero := 1, 0
	snap.Rules = []api.Rule{
		{RuleID: "rule-b", ListenerID: "l-1", LoadBalancerID: "lb-1", Priority: 20,
			Conditions: []api.RuleCondition{
				{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{"a.example.com", "*.example.org"}}},
				{Field: api.ConditionHTTPRequestMethod, HTTPRequestMethodConfig: &api.HTTPRequestMethodConditionConfig{Values: []string{"GET", "HEAD"}}},
			},
			Actions: []api.Action{{Type: api.ActionTypeRedirect, RedirectConfig: &api.RedirectActionConfig{
				Protocol: "HTTPS", Host: "#{host}", Path: "/#{path}", StatusCode: api.RedirectHTTP301}}}},
		{RuleID: "rule-a", ListenerID: "l-1", LoadBalancerID: "lb-1", Priority: 10,
			Conditions: []api.RuleCondition{
				{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{"/a"}, MatchType: api.MatchTypePrefix}},
				{Field: api.ConditionHTTPHeader, HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{HTTPHeaderName: "X-Pool", Values: []string{"b"}}},
			},
			Actions: []api.Action{{Type: api.ActionTypeForward,
				ForwardConfig: &api.ForwardActionConfig{TargetGroups: []api.TargetGroupTuple{
					{TargetGroupID: "tg-1", Weight: &one}, {TargetGroupID: "tg-2", Weight: &zero}}},
				TimeoutConfig: &api.TimeoutConfig{RequestMillis: 1500},
				RetryConfig:   &api.RetryConfig{Codes: []int{502, 503}, Attempts: 2, BackoffMillis: 25},
				CorsConfig: &api.CorsConfig{AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"GET"}, AllowHeaders: []string{"x-a"},
					ExposeHeaders: []string{"x-b"}, AllowCredentials: true, MaxAgeSeconds: 600}}}},
	}
	snap.TargetGroups[0].Protocol = api.ProtocolHTTP
	snap.TargetGroups = append(snap.TargetGroups, api.TargetGroup{TargetGroupID: "tg-2", Protocol: api.ProtocolHTTP,
		ProtocolVersion: api.ProtocolVersionGRPC, Port: 50051, VpcID: "vpc-1",
		HealthCheck: api.HealthCheck{Protocol: api.ProtocolHTTP, Path: "/grpc.health.v1.Health/Check", Matcher: "0",
			IntervalSeconds: 15, TimeoutSeconds: 5, HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}})
	return snap
}

// TestDesiredApplicationLoadBalancer: an application load balancer gets the network one's base
// and a program that only guards its source ranges (its listeners are the L7 engine's), and
// its targets are the L7 checker's, draining ones excepted.
func TestDesiredApplicationLoadBalancer(t *testing.T) {
	snap := albSnap(tgt("10.0.1.101", 8080, api.TargetHealthHealthy), tgt("10.0.1.102", 8080, api.TargetHealthDraining))
	w, err := Desired(snap)
	if err != nil {
		t.Fatal(err)
	}
	lb := w.LBs["lb-1"]
	if lb == nil || !lb.App || w.LBFailures["lb-1"] != "" {
		t.Fatalf("desired %+v, failure %q; want an application load balancer", lb, w.LBFailures["lb-1"])
	}
	if len(lb.Program.Listeners) != 0 || len(lb.Keep) != 0 {
		t.Errorf("program %+v keeps %v; want no nftables listeners", lb.Program, lb.Keep)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}; !cmp.Equal(lb.Program.Allowed, want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
		t.Errorf("allowed %v, want the source ranges %v", lb.Program.Allowed, want)
	}
	if len(w.Checks) != 1 || !w.Checks[0].App || w.Checks[0].Target.String() != "10.0.1.101:8080" {
		t.Errorf("checks %+v, want the healthy target's, by the L7 checker", w.Checks)
	}
}

// TestALBConfig: rules by priority with multi-value conditions expanded, the default actions
// last, actions and groups as the engine takes them.
func TestALBConfig(t *testing.T) {
	unavailable := tgt("10.0.1.102", 8080, api.TargetHealthUnavailable)
	unavailable.TargetHealth.Reason = api.ReasonInternalError
	snap := albSnap(tgt("10.0.1.101", 8080, api.TargetHealthHealthy), unavailable)
	snap.Rules[1].Transforms = []api.RuleTransform{
		{Type: api.TransformTypeHostHeaderRewrite, HostHeaderRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: "^a$", Replace: "b"}}}},
		{Type: api.TransformTypeURLRewrite, URLRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: "^/a/(.*)", Replace: "/$1"}}}},
	}
	cfg, err := albConfig("lb-1", indexALBs(snap), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	redirect := l7.Action{Redirect: &l7.Redirect{Scheme: "https", StatusCode: 301}}
	hosts := []string{"a.example.com", "*.example.org"}
	want := l7.Config{
		Listeners: []l7.Listener{{Port: 80, Protocol: l7.ProtocolHTTP, Rules: []l7.Rule{
			{Name: "rule-a", Path: &l7.PathMatch{Type: l7.MatchPrefix, Value: "/a"},
				Headers: []l7.HeaderMatch{{Name: "X-Pool", Type: l7.MatchExact, Value: "b"}},
				Action: l7.Action{Forward: &l7.Forward{Backends: []l7.Backend{{TargetGroup: "tg-1", Weight: 1}, {TargetGroup: "tg-2", Weight: 0}}},
					Timeouts: l7.Timeouts{Request: 1500 * time.Millisecond},
					Retry:    &l7.Retry{Codes: []int{502, 503}, Attempts: 2, Backoff: 25 * time.Millisecond},
					CORS: &l7.CORS{AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"GET"}, AllowHeaders: []string{"x-a"},
						ExposeHeaders: []string{"x-b"}, AllowCredentials: true, MaxAge: 600},
					Transforms: []l7.Transform{{Type: l7.TransformHost, Regex: "^a$", Replace: "b"}, {Type: l7.TransformURL, Regex: "^/a/(.*)", Replace: "/$1"}}}},
			{Name: "rule-b#0", Hosts: hosts, Method: "GET", Action: redirect},
			{Name: "rule-b#1", Hosts: hosts, Method: "HEAD", Action: redirect},
			{Name: "l-1/default", Action: l7.Action{FixedResponse: &l7.FixedResponse{StatusCode: 404, ContentType: "text/plain", Body: "no route"}}},
		}}},
		TargetGroups: []l7.TargetGroup{
			{Name: "tg-1", Protocol: l7.ProtocolHTTP, Targets: []l7.Target{
				{Addr: netip.MustParseAddrPort("10.0.1.101:8080"), State: l7.StateHealthy},
				// Unavailable only because the load balancer had failed: initial again.
				{Addr: netip.MustParseAddrPort("10.0.1.102:8080"), State: l7.StateInitial}}},
			{Name: "tg-2", Protocol: l7.ProtocolH2C},
		},
	}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := l7.Validate(cfg); err != nil {
		t.Errorf("the engine refuses the translated config: %v", err)
	}

	// A configuration the engine refuses says which field: the reason the load balancer fails with.
	snap.Rules[1].Conditions[0].PathPatternConfig = &api.PathPatternConditionConfig{Values: []string{"/a("}, MatchType: api.MatchTypeRegex}
	cfg, err = albConfig("lb-1", indexALBs(snap), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ce *l7.ConfigError
	if err := l7.Validate(cfg); !errors.As(err, &ce) || !strings.Contains(ce.Field, "path") {
		t.Errorf("bad regex: %v, want a ConfigError naming the path", err)
	}

	// HTTPS without a certificate source cannot be built: the load balancer fails with why.
	snap.Listeners[0].Protocol = api.ProtocolHTTPS
	snap.Listeners[0].Certificates = []api.ListenerCertificate{{CertificateID: "cert-1", IsDefault: true}}
	if _, err := albConfig("lb-1", indexALBs(snap), nil, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("https without certificates: %v, want an error about the certificate", err)
	}
	// With one, the listener's certificates and hostname scopes are the engine's.
	snap.Listeners[0].HostnameScopes = []string{"a.example.com", "*.example.org"}
	cfg, err = albConfig("lb-1", indexALBs(snap), pemSource{"cert-1": {CertificatePem: "C", PrivateKeyPem: "K"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	if !slices.Equal(l.HostnameScopes, []string{"a.example.com", "*.example.org"}) ||
		len(l.Certificates) != 1 || string(l.Certificates[0].CertPEM) != "C" || !l.Certificates[0].Default {
		t.Errorf("https listener: scopes %q, certificates %+v", l.HostnameScopes, l.Certificates)
	}
}

// pemSource is a CertificateSource from a map.
type pemSource map[string]api.CertificateKeyPair

func (s pemSource) CertificateKeyPair(id string) (api.CertificateKeyPair, bool) {
	kp, ok := s[id]
	return kp, ok
}

// TestL7Check: a group's check as the L7 checker runs it (gRPC groups with the gRPC health
// service, a numeric port kept).
func TestL7Check(t *testing.T) {
	c := Check{HealthCheck: api.HealthCheck{Protocol: api.ProtocolHTTP, Port: "9001", Path: "/grpc.health.v1.Health/Check",
		Matcher: "0", IntervalSeconds: 5, TimeoutSeconds: 2, HealthyThresholdCount: 3, UnhealthyThresholdCount: 4}, GRPC: true}
	want := l7.HealthCheck{Protocol: l7.HealthGRPC, Port: 9001, Path: "/grpc.health.v1.Health/Check", Matcher: "0",
		Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 3, UnhealthyThreshold: 4}
	if diff := cmp.Diff(want, l7Check(c)); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}
}

// TestALBStatus: an application load balancer is active only when, beyond its base and guard
// program, its engine runs the current configuration; an engine refusal fails it with the
// reason; neither leaves its verdict as it was.
func TestALBStatus(t *testing.T) {
	desired, err := Desired(albSnap())
	if err != nil {
		t.Fatal(err)
	}
	ready := *desired.LBs["lb-1"]
	ready.Ready = true
	actual := NewWorld()
	actual.LBs["lb-1"] = &ready
	refused := errors.New("the L7 engine refused the configuration")
	noLog := errors.New("access log: permission denied")
	for _, tc := range []struct {
		name             string
		apps             map[string]bool
		failed, impaired map[string]error
		want             lbStatus
	}{
		{"engine runs the config", map[string]bool{"lb-1": true}, nil, nil, lbStatus{state: api.LoadBalancerStateActive}},
		{"engine refused it", nil, map[string]error{"lb-1": refused}, nil, lbStatus{state: api.LoadBalancerStateFailed, reason: refused.Error()}},
		{"its access log failed", map[string]bool{"lb-1": true}, nil, map[string]error{"lb-1": noLog},
			lbStatus{state: api.LoadBalancerStateActiveImpaired, reason: noLog.Error()}},
		{"not applied yet", nil, nil, nil, lbStatus{}},
	} {
		if got := lbStatuses(desired, actual, tc.failed, tc.impaired, tc.apps)["lb-1"]; got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestALBConfigPassthrough: a TLS listener's host-header rules become the engine's SNI rules
// (TlsPassthrough kept), with no default rule when it has no default actions; a TCP listener forwards to its TCP
// group; TCP groups are the engine's TCP groups and are health-checked by TCP connect.
func TestALBConfigPassthrough(t *testing.T) {
	snap := albSnap(tgt("10.0.1.101", 8443, api.TargetHealthHealthy))
	snap.Rules = []api.Rule{{RuleID: "rule-tls", ListenerID: "l-tls", LoadBalancerID: "lb-1", Priority: 1,
		Conditions: []api.RuleCondition{{Field: api.ConditionHostHeader, HostHeaderConfig: &api.HostHeaderConditionConfig{Values: []string{"a.example.com", "*.example.org"}}}},
		Actions:    []api.Action{{Type: api.ActionTypeForward, TargetGroupID: "tg-1", TLSPassthrough: true}}}}
	snap.Listeners = []api.Listener{
		{ListenerID: "l-tls", LoadBalancerID: "lb-1", Protocol: api.ProtocolTLS, Port: 443, DefaultActions: []api.Action{}},
		{ListenerID: "l-tcp", LoadBalancerID: "lb-1", Protocol: api.ProtocolTCP, Port: 5432, DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: "tg-1"}}},
	}
	snap.TargetGroups[0].Protocol = api.ProtocolTCP
	snap.TargetGroups[0].HealthCheck = api.HealthCheck{Protocol: api.ProtocolTCP, IntervalSeconds: 10, TimeoutSeconds: 5, HealthyThresholdCount: 3, UnhealthyThresholdCount: 3}
	cfg, err := albConfig("lb-1", indexALBs(snap), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fwd := l7.Action{Forward: &l7.Forward{Backends: []l7.Backend{{TargetGroup: "tg-1", Weight: 1}}}}
	pass := fwd
	pass.TLSPassthrough = true
	want := l7.Config{
		Listeners: []l7.Listener{
			{Port: 443, Protocol: l7.ProtocolTLS, Rules: []l7.Rule{{Name: "rule-tls", Hosts: []string{"a.example.com", "*.example.org"}, Action: pass}}},
			{Port: 5432, Protocol: l7.ProtocolTCP, Rules: []l7.Rule{{Name: "l-tcp/default", Action: fwd}}},
		},
		TargetGroups: []l7.TargetGroup{{Name: "tg-1", Protocol: l7.ProtocolTCP, Targets: []l7.Target{{Addr: netip.MustParseAddrPort("10.0.1.101:8443"), State: l7.StateHealthy}}}},
	}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := l7.Validate(cfg); err != nil {
		t.Errorf("the engine refuses the translated config: %v", err)
	}
	w, err := Desired(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Checks) != 1 || !w.Checks[0].App || l7Check(w.Checks[0]).Protocol != l7.HealthTCP {
		t.Errorf("checks %+v, want the TCP group's target checked by TCP connect by the L7 checker", w.Checks)
	}
}

// TestRenderAppProgram: an application load balancer's program has no NAT chain, and nothing
// that needs conntrack unless it has source ranges to guard; its hash is in the program chain.
func TestRenderAppProgram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		snap   *api.Snapshot
		wantCt bool
	}{
		{"no source ranges", appSnap(api.SchemeInternetFacing, nil), false},
		{"source ranges", albSnap(), true},
		{"internal: the VPC only", appSnap(api.SchemeInternal, nil), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := desiredLBOf(t, tc.snap)
			script, hash := RenderLBProgram(lb.Program)
			if !lb.Program.App || hash != lb.Program.Hash {
				t.Fatalf("program %+v, hash %s; want an application one with its hash", lb.Program, hash)
			}
			for _, no := range []string{"type nat", lbChainDNAT, lbChainSNAT} {
				if strings.Contains(script, no) {
					t.Errorf("script has %q:\n%s", no, script)
				}
			}
			if got := strings.Contains(script, " ct "); got != tc.wantCt {
				t.Errorf("conntrack in the script: %v, want %v:\n%s", got, tc.wantCt, script)
			}
			if !strings.Contains(script, "add rule ip flatnet_lb program accept comment \""+lbHashTag+hash+"\"") {
				t.Errorf("no hash rule in chain program:\n%s", script)
			}
			rs := lbRulesetOf(lb.Program)
			for _, r := range rs.rules {
				for _, e := range r.Exprs {
					if _, ok := e.(*expr.NAT); ok {
						t.Errorf("a NAT expression in rule %+v", r)
					}
					if _, ok := e.(*expr.Ct); ok && !tc.wantCt {
						t.Errorf("a conntrack expression in rule %+v", r)
					}
				}
			}
		})
	}
}

// TestRuleRevisions: a rule whose conditions and actions are the slices built before, or
// equal ones, comes from memory with its Revision (and still names its target groups); a
// changed rule is built again under a new Revision; a rule the snapshot no longer holds is
// forgotten.
func TestRuleRevisions(t *testing.T) {
	m := newRuleRevisions()
	r := api.Rule{RuleID: "rule-1", Conditions: []api.RuleCondition{{Field: api.ConditionPathPattern,
		PathPatternConfig: &api.PathPatternConditionConfig{Values: []string{"/a", "/b"}}}},
		Actions: []api.Action{forwardAction("tg-1")}}
	build := func(r api.Rule) ([]l7.Rule, map[string]bool) {
		t.Helper()
		groups := map[string]bool{}
		rules, err := m.rules(&r, groups)
		if err != nil {
			t.Fatal(err)
		}
		return rules, groups
	}
	first, _ := build(r)
	if len(first) != 2 || first[0].Revision == "" || first[0].Revision != first[1].Revision {
		t.Fatalf("first build: %+v, want two rules (one per path) with one revision", first)
	}
	again, groups := build(r)
	if again[0].Revision != first[0].Revision || !groups["tg-1"] {
		t.Errorf("same slices: revision %q (was %q), groups %v; want the same revision and tg-1", again[0].Revision, first[0].Revision, groups)
	}
	copied := r
	copied.Conditions, copied.Actions = slices.Clone(r.Conditions), slices.Clone(r.Actions)
	if got, _ := build(copied); got[0].Revision != first[0].Revision {
		t.Errorf("equal content in new slices (a moved rule): revision %q, want %q kept", got[0].Revision, first[0].Revision)
	}
	changed := r
	changed.Actions = []api.Action{forwardAction("tg-2")}
	got, groups := build(changed)
	if got[0].Revision == first[0].Revision || got[0].Action.Forward.Backends[0].TargetGroup != "tg-2" || !groups["tg-2"] {
		t.Errorf("new actions: %+v, groups %v; want a new revision forwarding to tg-2", got[0], groups)
	}
	// Transforms alone are a change too (ModifyRule with Transforms or ResetTransforms).
	transformed := changed
	transformed.Transforms = []api.RuleTransform{{Type: api.TransformTypeURLRewrite, URLRewriteConfig: &api.RewriteConfig{Rewrites: []api.RegexRewrite{{Regex: "^/a", Replace: "/b"}}}}}
	got2, _ := build(transformed)
	if got2[0].Revision == got[0].Revision || len(got2[0].Action.Transforms) != 1 || got2[0].Action.Transforms[0].Replace != "/b" {
		t.Errorf("new transforms: %+v; want a new revision with the url-rewrite", got2[0])
	}
	if got3, _ := build(changed); got3[0].Revision == got2[0].Revision || len(got3[0].Action.Transforms) != 0 {
		t.Errorf("transforms reset: %+v; want a new revision without them", got3[0])
	}

	m.forget(&api.Snapshot{Rules: []api.Rule{r}})
	if len(m.byID) != 1 {
		t.Errorf("forgetting with the rule in the snapshot left %d kept, want 1", len(m.byID))
	}
	m.forget(&api.Snapshot{})
	if len(m.byID) != 0 {
		t.Errorf("forgetting with the rule gone left %d kept", len(m.byID))
	}
}

// TestALBBackendTLS: an HTTPS group's TlsVerification is the engine's BackendTLS (system roots:
// no CA PEM); without one its targets are not verified, as an ALB's.
func TestALBBackendTLS(t *testing.T) {
	ca, _ := selfSigned(t, "ca.example.com")
	for _, tc := range []struct {
		name string
		v    *api.TLSVerification
		want *l7.BackendTLS
	}{
		{"none", nil, &l7.BackendTLS{InsecureSkipVerify: true}},
		{"CA", &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: ca},
			&l7.BackendTLS{ServerName: "web.example.com", CAPEM: []byte(ca)}},
		{"system roots and alt names", &api.TLSVerification{ServerName: "web.example.com", UseSystemRoots: true, SubjectAltNames: []api.SubjectAltName{
			{Type: api.SANTypeHostname, Value: "*.example.com"}, {Type: api.SANTypeURI, Value: "spiffe://td/web"}}},
			&l7.BackendTLS{ServerName: "web.example.com", SubjectAltNames: []l7.SubjectAltName{
				{Type: l7.SANHostname, Value: "*.example.com"}, {Type: l7.SANURI, Value: "spiffe://td/web"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := albSnap()
			snap.TargetGroups[0].Protocol, snap.TargetGroups[0].TLSVerification = api.ProtocolHTTPS, tc.v
			cfg, err := albConfig("lb-1", indexALBs(snap), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TargetGroups[0]; got.Protocol != l7.ProtocolHTTPS || !cmp.Equal(got.TLS, tc.want) {
				t.Errorf("group %s: protocol %s, TLS %s", got.Name, got.Protocol, cmp.Diff(tc.want, got.TLS))
			}
			if err := l7.Validate(cfg); err != nil {
				t.Errorf("the engine refuses the translated config: %v", err)
			}
		})
	}
}

// TestALBBackendClientCertificate: an HTTPS group's ClientCertificateId is the engine's
// BackendTLS client certificate (chain and key read through the certificate source), verified
// or not; its HTTPS checks present it too. A certificate the source lacks fails the
// configuration, as a listener's does.
func TestALBBackendClientCertificate(t *testing.T) {
	ca, _ := selfSigned(t, "ca.example.com")
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	certs := pemSource{"cert-1": {CertificateID: "cert-1", CertificatePem: certPEM, PrivateKeyPem: keyPEM}}
	for _, tc := range []struct {
		name string
		v    *api.TLSVerification
		want *l7.BackendTLS
	}{
		{"unverified", nil, &l7.BackendTLS{InsecureSkipVerify: true, ClientCertPEM: []byte(certPEM), ClientKeyPEM: []byte(keyPEM)}},
		{"verified", &api.TLSVerification{ServerName: "web.example.com", CACertificatesPEM: ca},
			&l7.BackendTLS{ServerName: "web.example.com", CAPEM: []byte(ca), ClientCertPEM: []byte(certPEM), ClientKeyPEM: []byte(keyPEM)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := albSnap(tgt("10.0.1.101", 8443, api.TargetHealthHealthy))
			g := &snap.TargetGroups[0]
			g.Protocol, g.TLSVerification, g.ClientCertificateID = api.ProtocolHTTPS, tc.v, "cert-1"
			g.HealthCheck = api.HealthCheck{Protocol: api.ProtocolHTTPS, Path: "/healthz", IntervalSeconds: 10, TimeoutSeconds: 5, HealthyThresholdCount: 3, UnhealthyThresholdCount: 3}
			cfg, err := albConfig("lb-1", indexALBs(snap), certs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TargetGroups[0]; got.Protocol != l7.ProtocolHTTPS || !cmp.Equal(got.TLS, tc.want) {
				t.Errorf("group %s: protocol %s, TLS %s", got.Name, got.Protocol, cmp.Diff(tc.want, got.TLS))
			}
			if err := l7.Validate(cfg); err != nil {
				t.Errorf("the engine refuses the translated config: %v", err)
			}
			w, err := Desired(snap)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Checks) != 1 || w.Checks[0].ClientCertificateID != "cert-1" {
				t.Fatalf("checks %+v, want the HTTPS group's target with its client certificate", w.Checks)
			}
			ct := albCheckTarget(w.Checks[0], certs)
			if string(ct.ClientCertPEM) != certPEM || string(ct.ClientKeyPEM) != keyPEM || ct.Check.Protocol != l7.HealthHTTPS {
				t.Errorf("check target %+v, want an HTTPS check presenting cert-1", ct)
			}
		})
	}
	snap := albSnap()
	snap.TargetGroups[0].Protocol, snap.TargetGroups[0].ClientCertificateID = api.ProtocolHTTPS, "cert-9"
	for name, src := range map[string]CertificateSource{"unknown certificate": certs, "no source": nil} {
		if _, err := albConfig("lb-1", indexALBs(snap), src, nil); err == nil || !strings.Contains(err.Error(), "client certificate") {
			t.Errorf("%s: %v, want an error about the group's client certificate", name, err)
		}
	}
}

// TestALBClientAuth: an HTTPS listener's MutualAuthentication is the engine's
// Listener.ClientAuth (verify: Verify; passthrough: asked, not verified; the CA bundle as
// CAPEM); none asks for no certificate.
func TestALBClientAuth(t *testing.T) {
	ca, _ := selfSigned(t, "ca.example.com")
	certPEM, keyPEM := selfSigned(t, "lb.example.com")
	certs := pemSource{"cert-1": {CertificateID: "cert-1", CertificatePem: certPEM, PrivateKeyPem: keyPEM}}
	for _, tc := range []struct {
		name string
		m    *api.MutualAuthentication
		want *l7.ClientAuth
	}{
		{"none", nil, nil},
		{"verify", &api.MutualAuthentication{Mode: api.MutualAuthenticationVerify, CACertificatesPEM: ca}, &l7.ClientAuth{Verify: true, CAPEM: []byte(ca)}},
		{"passthrough with CAs", &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough, CACertificatesPEM: ca}, &l7.ClientAuth{CAPEM: []byte(ca)}},
		{"passthrough", &api.MutualAuthentication{Mode: api.MutualAuthenticationPassthrough}, &l7.ClientAuth{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := albSnap()
			l := &snap.Listeners[0]
			l.Protocol, l.Port, l.MutualAuthentication = api.ProtocolHTTPS, 443, tc.m
			l.Certificates = []api.ListenerCertificate{{CertificateID: "cert-1", IsDefault: true}}
			cfg, err := albConfig("lb-1", indexALBs(snap), certs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Listeners[0]; got.Protocol != l7.ProtocolHTTPS || !cmp.Equal(got.ClientAuth, tc.want) {
				t.Errorf("listener %d: protocol %s, ClientAuth %s", got.Port, got.Protocol, cmp.Diff(tc.want, got.ClientAuth))
			}
			if err := l7.Validate(cfg); err != nil {
				t.Errorf("the engine refuses the translated config: %v", err)
			}
		})
	}
}
