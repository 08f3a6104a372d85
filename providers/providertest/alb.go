package providertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
)

// ApplicationLoadBalancingEnv is one application load balancing driver under test and its cloud.
type ApplicationLoadBalancingEnv struct {
	// Cloud is the fakecloud the driver reaches; the suite arranges it through Cloud.Admin.
	Cloud *servertest.Env
	// New builds the driver with the account's credentials, creating load balancers in subnet.
	New func(t *testing.T, subnet api.Subnet) providers.ApplicationLoadBalancing
	// CoreActionsOnly: the driver's cloud says only what ELBv2 says (forward, redirect,
	// fixed response, a forward's rewrite; no header changes, mirrors or timeouts). Such a driver must
	// refuse the others with providers.ErrInvalid, and the suite checks that instead.
	CoreActionsOnly bool
}

// RunApplicationLoadBalancing runs the application load balancing contract: every subtest gets
// a fresh cloud and driver from newEnv.
func RunApplicationLoadBalancing(t *testing.T, newEnv func(t *testing.T) ApplicationLoadBalancingEnv) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *albScene)
	}{
		{"ApplicationLoadBalancerIdempotent", albCreate},
		{"StaticAddresses", albStaticAddress},
		{"ListenersAndRules", albRules},
		{"RulePriorities", albPriorities},
		{"Certificates", albCertificates},
		{"CertificateTags", albCertificateTags},
		{"PassthroughListeners", albPassthrough},
		{"BackendTLSVerification", albBackendTLS},
		{"BackendClientCertificates", albBackendClientCert},
		{"FrontendClientValidation", albFrontendClientValidation},
		{"ThrottleIsRetryable", albThrottled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t)
			sn, _ := env.Cloud.Launch(t, vpcCIDR, "10.0.0.0/20", "m5.large", 1)
			tc.run(t, &albScene{env: env, d: env.New(t, sn)})
		})
	}
}

type albScene struct {
	env ApplicationLoadBalancingEnv
	d   providers.ApplicationLoadBalancing
}

func (s *albScene) alb(t *testing.T, name string) providers.ApplicationLoadBalancer {
	t.Helper()
	lb, err := s.d.CreateApplicationLoadBalancer(bg(), providers.LoadBalancerSpec{Name: name, Internal: true, Tags: owner(name), ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatalf("create application load balancer %s: %v", name, err)
	}
	return lb
}

func (s *albScene) httpTG(t *testing.T, name, version string) providers.TargetGroup {
	t.Helper()
	tg, err := s.d.CreateTargetGroup(bg(), providers.TargetGroupSpec{Name: name, Protocol: "HTTP", ProtocolVersion: version, Port: 8080,
		DeregistrationDelay: 30 * time.Second, Tags: owner(name), ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatalf("create HTTP target group %s: %v", name, err)
	}
	return tg
}

var notFound = providers.RuleAction{FixedResponse: &providers.FixedResponse{StatusCode: 404}}

func (s *albScene) listener(t *testing.T, lbID string, port int) providers.HTTPListener {
	t.Helper()
	l, err := s.d.CreateHTTPListener(bg(), lbID, providers.HTTPListenerSpec{Protocol: "HTTP", Port: port, DefaultAction: notFound, ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatalf("create HTTP listener :%d: %v", port, err)
	}
	return l
}

func albCreate(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-a")
	b, err := s.d.CreateApplicationLoadBalancer(bg(), providers.LoadBalancerSpec{Name: "alb-a", Internal: true, Tags: owner("alb-a"), ClientToken: providers.NewToken()})
	if err != nil || b.ID != a.ID {
		t.Fatalf("the same name again: %+v, %v; want %s", b, err, a.ID)
	}
	if !a.VIP.IsValid() {
		t.Errorf("no VIP: %+v", a)
	}
	albs, err := s.d.ListApplicationLoadBalancers(bg(), owner("alb-a"))
	if err != nil || len(albs) != 1 || albs[0].ID != a.ID {
		t.Fatalf("listed by tags: %+v, %v", albs, err)
	}
	nlbs, err := s.d.ListLoadBalancers(bg(), owner("alb-a"))
	if err != nil || len(nlbs) != 0 {
		t.Errorf("ListLoadBalancers lists network load balancers only: %+v, %v", nlbs, err)
	}
	if err := s.d.DeleteLoadBalancer(bg(), a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteLoadBalancer(bg(), a.ID); err != nil {
		t.Errorf("delete again: %v", err)
	}
}

// albStaticAddress: a driver with Capabilities.StaticAddresses creates a load balancer at the
// address asked for and refuses one held by another with ErrAddressUnusable; one without it
// refuses any Address with ErrInvalid.
func albStaticAddress(t *testing.T, s *albScene) {
	want := netip.MustParseAddr("10.0.3.33") // in the scene's subnet, 10.0.0.0/20
	spec := func(name string) providers.LoadBalancerSpec {
		return providers.LoadBalancerSpec{Name: name, Internal: true, Address: want, Tags: owner(name), ClientToken: providers.NewToken()}
	}
	a, err := s.d.CreateApplicationLoadBalancer(bg(), spec("alb-static"))
	if !providers.CapabilitiesOf(s.d).StaticAddresses {
		if !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("a static address from a driver without StaticAddresses: %+v, %v; want ErrInvalid", a, err)
		}
		return
	}
	if err != nil || a.VIP != want {
		t.Fatalf("load balancer at %s: %+v, %v", want, a, err)
	}
	if b, err := s.d.CreateApplicationLoadBalancer(bg(), spec("alb-static")); err != nil || b.ID != a.ID {
		t.Errorf("the same name and address again: %+v, %v; want %s", b, err, a.ID)
	}
	b, err := s.d.CreateApplicationLoadBalancer(bg(), spec("alb-static-b"))
	if !errors.Is(err, providers.ErrAddressUnusable) || providers.Retryable(err) {
		t.Errorf("a second load balancer at %s: %+v, %v; want ErrAddressUnusable, not retryable", want, b, err)
	}
	if err := s.d.DeleteLoadBalancer(bg(), a.ID); err != nil {
		t.Fatal(err)
	}
	if b, err := s.d.CreateApplicationLoadBalancer(bg(), spec("alb-static-b")); err != nil || b.VIP != want {
		t.Errorf("the address once freed: %+v, %v", b, err)
	}
}

func albRules(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-r")
	web := s.httpTG(t, "tg-web", providers.ProtocolVersionHTTP1)
	grpc := s.httpTG(t, "tg-grpc", providers.ProtocolVersionGRPC)
	tgs, err := s.d.ListTargetGroups(bg(), owner("tg-grpc"))
	if err != nil || len(tgs) != 1 || tgs[0].Protocol != "HTTP" || tgs[0].ProtocolVersion != providers.ProtocolVersionGRPC {
		t.Fatalf("the gRPC group listed: %+v, %v", tgs, err)
	}
	l := s.listener(t, a.ID, 80)
	again, err := s.d.CreateHTTPListener(bg(), a.ID, providers.HTTPListenerSpec{Protocol: "HTTP", Port: 80, DefaultAction: notFound, ClientToken: providers.NewToken()})
	if err != nil || again.ID != l.ID {
		t.Errorf("the same listener again: %+v, %v; want %s", again, err, l.ID)
	}
	mods := &providers.HeaderModifier{Set: []providers.Header{{Name: "X-A", Value: "1"}}, Remove: []string{"X-B"}}
	specs := []providers.RuleSpec{
		{Priority: 1, Conditions: providers.RuleConditions{Hosts: []string{"a.example.com"}, Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/api"},
			Method: "GET", Headers: []providers.StringMatch{{Name: "x-v", Type: providers.MatchExact, Value: "1"}},
			Query: []providers.StringMatch{{Name: "q", Type: providers.MatchRegex, Value: "a.*"}}},
			Action: providers.RuleAction{Forward: []providers.WeightedTargetGroup{{TargetGroupID: web.ID, Weight: 3, RequestHeaders: mods}, {TargetGroupID: grpc.ID, Weight: 1}},
				RequestHeaders: mods, Rewrite: &providers.Rewrite{Host: "b", Path: &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: "/v2"}},
				Mirrors: []providers.Mirror{{TargetGroupID: grpc.ID, Percent: 50}}, RequestTimeout: 2 * time.Second, BackendTimeout: time.Second,
				Retry: &providers.Retry{Codes: []int{500, 503}, Attempts: 2, Backoff: 100 * time.Millisecond},
				CORS: &providers.CORS{AllowOrigins: []string{"https://a.example.com", "https://*.b.example.com"}, AllowMethods: []string{"GET", "PUT"},
					AllowHeaders: []string{"x-a"}, ExposeHeaders: []string{"x-b"}, AllowCredentials: true, MaxAge: time.Hour}}},
		{Priority: 2, Conditions: providers.RuleConditions{Path: &providers.StringMatch{Type: providers.MatchExact, Value: "/old"}},
			Action: providers.RuleAction{Redirect: &providers.Redirect{Scheme: "HTTPS", Port: 443, Path: &providers.PathModifier{Type: providers.ReplaceFullPath, Value: "/new"}, StatusCode: 301}}},
		{Priority: 3, Conditions: providers.RuleConditions{Hosts: []string{"*.example.com"}},
			Action: providers.RuleAction{FixedResponse: &providers.FixedResponse{StatusCode: 503, Body: "down"}, ResponseHeaders: mods}},
		// A GRPCRoute's rule as lbcontroller writes it: a host, the service's path and the gRPC
		// content type as a regex of three alternatives (five values: ELBv2's quota).
		{Priority: 4, Conditions: providers.RuleConditions{Hosts: []string{"grpc.example.com"}, Path: &providers.StringMatch{Type: providers.MatchPrefix, Value: "/grpc.health.v1.Health"},
			Headers: []providers.StringMatch{{Name: "content-type", Type: providers.MatchRegex, Value: `application/grpc|application/grpc\+.*|application/grpc;.*`}}},
			Action: providers.RuleAction{Forward: []providers.WeightedTargetGroup{{TargetGroupID: grpc.ID, Weight: 1}}}},
	}
	if s.env.CoreActionsOnly {
		specs = coreOnly(t, s, l.ID, specs)
	}
	var want []providers.Rule
	for _, spec := range specs {
		// providers.CheckRule answers what CreateRule does: these are taken.
		if err := providers.CheckRule(s.d, spec); err != nil {
			t.Errorf("CheckRule of rule %d, which the cloud takes: %v", spec.Priority, err)
		}
		spec.ClientToken = providers.NewToken()
		r, err := s.d.CreateRule(bg(), l.ID, spec)
		if err != nil {
			t.Fatalf("create rule %d: %v", spec.Priority, err)
		}
		want = append(want, providers.Rule{ID: r.ID, Priority: spec.Priority, Conditions: spec.Conditions, Action: spec.Action})
	}
	got, err := s.d.ListRules(bg(), l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules read back (-created +listed):\n%s", diff)
	}
	// A weight change in place.
	spec := specs[0]
	spec.Action.Forward = []providers.WeightedTargetGroup{{TargetGroupID: web.ID, Weight: 0}, {TargetGroupID: grpc.ID, Weight: 100}}
	if _, err := s.d.ModifyRule(bg(), want[0].ID, spec); err != nil {
		t.Fatal(err)
	}
	got, _ = s.d.ListRules(bg(), l.ID)
	if len(got) != len(specs) || got[0].ID != want[0].ID || !cmp.Equal(got[0].Action.Forward, spec.Action.Forward) {
		t.Errorf("after ModifyRule: %+v", got)
	}
	// The rewrite changed, then taken away (ELBv2's transforms replaced, then reset).
	spec.Action.Rewrite = &providers.Rewrite{Path: &providers.PathModifier{Type: providers.ReplaceFullPath, Value: "/v3"}}
	for _, rw := range []*providers.Rewrite{spec.Action.Rewrite, nil} {
		spec.Action.Rewrite = rw
		if _, err := s.d.ModifyRule(bg(), want[0].ID, spec); err != nil {
			t.Fatal(err)
		}
		got, err = s.d.ListRules(bg(), l.ID)
		if err != nil || len(got) != len(specs) {
			t.Fatalf("after ModifyRule with the rewrite %+v: %d rules, %v", rw, len(got), err)
		}
		if d := cmp.Diff(spec.Action, got[0].Action); d != "" {
			t.Errorf("after ModifyRule with the rewrite %+v (-want +got):\n%s", rw, d)
		}
	}
	if err := s.d.DeleteTargetGroup(bg(), grpc.ID); !isKind(err, providers.ErrConflict) {
		t.Errorf("deleting a group a rule forwards to: %v; want ErrConflict", err)
	}
	for range 2 {
		if err := s.d.DeleteRule(bg(), want[0].ID); err != nil {
			t.Fatalf("delete rule (again is fine): %v", err)
		}
	}
	if err := s.d.DeleteRule(bg(), want[len(want)-1].ID); err != nil {
		t.Fatalf("delete the gRPC rule: %v", err)
	}
	if err := s.d.DeleteTargetGroup(bg(), grpc.ID); err != nil {
		t.Errorf("delete the group once no rule uses it: %v", err)
	}
	albs, err := s.d.ListApplicationLoadBalancers(bg(), owner("alb-r"))
	if err != nil || len(albs) != 1 || len(albs[0].Listeners) != 1 || !cmp.Equal(albs[0].Listeners[0].DefaultAction, notFound) {
		t.Errorf("listener listed with its default action: %+v, %v", albs, err)
	}
	if err := s.d.DeleteListener(bg(), l.ID); err != nil {
		t.Fatal(err)
	}
}

// coreOnly checks that a driver without the extensions refuses each rule using them, and
// returns the rules without them.
func coreOnly(t *testing.T, s *albScene, listenerID string, specs []providers.RuleSpec) []providers.RuleSpec {
	t.Helper()
	var out []providers.RuleSpec
	for _, spec := range specs {
		a := spec.Action
		if a.RequestHeaders != nil || a.ResponseHeaders != nil || len(a.Mirrors) > 0 || a.RequestTimeout > 0 || a.BackendTimeout > 0 ||
			a.Retry != nil || a.CORS != nil {
			spec.ClientToken = providers.NewToken()
			_, err := s.d.CreateRule(bg(), listenerID, spec)
			wantKind(t, fmt.Sprintf("rule %d with actions beyond ELBv2's", spec.Priority), err, providers.ErrInvalid)
			// providers.CheckRule answers the same, before any call.
			wantKind(t, fmt.Sprintf("CheckRule of rule %d with actions beyond ELBv2's", spec.Priority), providers.CheckRule(s.d, spec), providers.ErrInvalid)
		}
		// A rewrite stays: ELBv2's rule transforms say it.
		a.RequestHeaders, a.ResponseHeaders, a.Mirrors, a.RequestTimeout, a.BackendTimeout, a.Retry, a.CORS = nil, nil, nil, 0, 0, nil, nil
		a.Forward = slices.Clone(a.Forward)
		for i := range a.Forward {
			a.Forward[i].RequestHeaders, a.Forward[i].ResponseHeaders = nil, nil
		}
		spec.Action = a
		out = append(out, spec)
	}
	if rules, err := s.d.ListRules(bg(), listenerID); err != nil || len(rules) != 0 {
		t.Fatalf("refused rules left %+v, %v", rules, err)
	}
	return out
}

func albPriorities(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-p")
	l := s.listener(t, a.ID, 80)
	var ids []string
	for i, p := range []string{"/a", "/b"} {
		r, err := s.d.CreateRule(bg(), l.ID, providers.RuleSpec{Priority: i + 1, ClientToken: providers.NewToken(),
			Conditions: providers.RuleConditions{Path: &providers.StringMatch{Type: providers.MatchExact, Value: p}}, Action: notFound})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	_, err := s.d.CreateRule(bg(), l.ID, providers.RuleSpec{Priority: 1, ClientToken: providers.NewToken(),
		Conditions: providers.RuleConditions{Method: "GET"}, Action: notFound})
	wantKind(t, "a rule at a priority taken", err, providers.ErrConflict)
	if err := s.d.SetRulePriorities(bg(), map[string]int{ids[0]: 2, ids[1]: 1}); err != nil {
		t.Fatalf("swap: %v", err)
	}
	got, err := s.d.ListRules(bg(), l.ID)
	if err != nil || len(got) != 2 || got[0].ID != ids[1] || got[0].Priority != 1 || got[1].ID != ids[0] {
		t.Errorf("after the swap: %+v, %v", got, err)
	}
}

func albCertificates(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-c")
	tags := map[string]string{"flatnet.io/cluster": "contract", "flatnet.io/gateway": "ns/gw"}
	var certs []providers.Certificate
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certPEM, keyPEM := SelfSigned(t, name)
		c, err := s.d.ImportCertificate(bg(), providers.CertificateSpec{CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, Tags: tags, ClientToken: providers.NewToken()})
		if err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
		if !cmp.Equal(c.DNSNames, []string{name}) {
			t.Errorf("names of %s: %v", c.ID, c.DNSNames)
		}
		certs = append(certs, c)
	}
	listed, err := s.d.ListCertificates(bg(), tags)
	if err != nil || len(listed) != 2 {
		t.Fatalf("listed by tags: %+v, %v", listed, err)
	}
	if other, _ := s.d.ListCertificates(bg(), map[string]string{"flatnet.io/gateway": "ns/other"}); len(other) != 0 {
		t.Errorf("another owner's tags list %+v", other)
	}
	l, err := s.d.CreateHTTPListener(bg(), a.ID, providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, DefaultAction: notFound,
		Certificates: []string{certs[0].ID, certs[1].ID}, ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(l.Certificates, []string{certs[0].ID, certs[1].ID}) {
		t.Errorf("listener certificates %v", l.Certificates)
	}
	wantKind(t, "delete a certificate in use", s.d.DeleteCertificate(bg(), certs[0].ID), providers.ErrConflict)
	// Rotate: the second becomes the default, the first leaves.
	if l, err = s.d.ModifyHTTPListener(bg(), l.ID, providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, DefaultAction: notFound, Certificates: []string{certs[1].ID}}); err != nil {
		t.Fatal(err)
	}
	albs, err := s.d.ListApplicationLoadBalancers(bg(), owner("alb-c"))
	if err != nil || len(albs) != 1 || len(albs[0].Listeners) != 1 || !cmp.Equal(albs[0].Listeners[0].Certificates, []string{certs[1].ID}) {
		t.Fatalf("after the rotation: %+v, %v", albs, err)
	}
	// Hostname scopes: set, listed and removed where the cloud has them; refused with a reason
	// where it has not.
	scoped := providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, DefaultAction: notFound, Certificates: []string{certs[1].ID},
		HostnameScopes: []string{"a.example.com", "*.example.org"}}
	if !providers.CapabilitiesOf(s.d).HostnameScopes {
		_, err := s.d.ModifyHTTPListener(bg(), l.ID, scoped)
		wantKind(t, "hostname scopes on a cloud without them", err, providers.ErrInvalid)
	} else {
		l, err = s.d.ModifyHTTPListener(bg(), l.ID, scoped)
		if err != nil || !cmp.Equal(l.HostnameScopes, scoped.HostnameScopes) {
			t.Fatalf("scopes set: %+v, %v", l, err)
		}
		albs, err = s.d.ListApplicationLoadBalancers(bg(), owner("alb-c"))
		if err != nil || len(albs) != 1 || !cmp.Equal(albs[0].Listeners[0].HostnameScopes, scoped.HostnameScopes) {
			t.Fatalf("scopes listed: %+v, %v", albs, err)
		}
		scoped.HostnameScopes = nil
		if l, err = s.d.ModifyHTTPListener(bg(), l.ID, scoped); err != nil || len(l.HostnameScopes) != 0 {
			t.Fatalf("scopes removed: %+v, %v", l, err)
		}
	}
	for range 2 {
		if err := s.d.DeleteCertificate(bg(), certs[0].ID); err != nil {
			t.Fatalf("delete the unused certificate (again is fine): %v", err)
		}
	}
}

// albCertificateTags: TagResources and UntagResources reach certificates too, in one call with an
// application load balancer: ListCertificates and ListApplicationLoadBalancers find exactly
// those by the tag added, and no certificate once it is removed.
func albCertificateTags(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-t")
	var certs []providers.Certificate
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certPEM, keyPEM := SelfSigned(t, name)
		c, err := s.d.ImportCertificate(bg(), providers.CertificateSpec{CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, Tags: owner("alb-t"), ClientToken: providers.NewToken()})
		if err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
		certs = append(certs, c)
	}
	prod := map[string]string{"env": "prod"}
	if err := s.d.TagResources(bg(), []string{a.ID, certs[0].ID}, prod); err != nil {
		t.Fatal(err)
	}
	listed, err := s.d.ListCertificates(bg(), prod)
	if err != nil || len(listed) != 1 || listed[0].ID != certs[0].ID {
		t.Fatalf("certificates tagged %v: %+v, %v; want %s alone", prod, listed, err, certs[0].ID)
	}
	want := owner("alb-t")
	want["env"] = "prod"
	if d := cmp.Diff(want, listed[0].Tags); d != "" {
		t.Errorf("the certificate's tags (-want +got):\n%s", d)
	}
	if albs, err := s.d.ListApplicationLoadBalancers(bg(), prod); err != nil || len(albs) != 1 || albs[0].ID != a.ID {
		t.Errorf("application load balancers tagged %v: %+v, %v; want %s alone", prod, albs, err, a.ID)
	}
	if err := s.d.UntagResources(bg(), []string{certs[0].ID}, []string{"env"}); err != nil {
		t.Fatal(err)
	}
	if listed, err := s.d.ListCertificates(bg(), prod); err != nil || len(listed) != 0 {
		t.Errorf("certificates tagged %v after the untag: %+v, %v", prod, listed, err)
	}
	if listed, err := s.d.ListCertificates(bg(), owner("alb-t")); err != nil || len(listed) != 2 {
		t.Errorf("certificates of their owner after the untag: %+v, %v; want both", listed, err)
	}
	if err := s.d.DeleteCertificate(bg(), certs[1].ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "tag a deleted certificate", s.d.TagResources(bg(), []string{certs[1].ID}, prod), providers.ErrNotFound)
}

func albThrottled(t *testing.T, s *albScene) {
	cloud := s.env.Cloud
	throttleEverything(t, cloud)
	_, err := s.d.ListApplicationLoadBalancers(bg(), owner("x"))
	wantThrottled(t, "ListApplicationLoadBalancers", err)
	_, err = s.d.ListCertificates(bg(), owner("x"))
	wantThrottled(t, "ListCertificates", err)
	// Under a policy, the call goes on through the throttle and succeeds once it lifts.
	p := providers.NewPolicy(providers.PolicyConfig{MaxAttempts: 200, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, BreakerThreshold: -1})
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = cloud.Admin.ClearFaults(bg(), &api.ClearFaultsRequest{})
	}()
	if _, err := p.ApplicationLoadBalancing(s.d).ListApplicationLoadBalancers(bg(), owner("x")); err != nil {
		t.Errorf("under a policy, once the throttle lifts: %v", err)
	}
}

// albBackendTLS: a driver with Capabilities.BackendTLSVerification creates an HTTPS group
// whose TLS it shows again (create, list); the same spec again is the same group, another TLS
// under the name ErrConflict, a TLS the cloud cannot take ErrInvalid. One without it refuses
// TLS with ErrInvalid.
func albBackendTLS(t *testing.T, s *albScene) {
	ca, _ := SelfSigned(t, "ca.example.com")
	spec := func(name string, tls *providers.BackendTLS) providers.TargetGroupSpec {
		return providers.TargetGroupSpec{Name: name, Protocol: "HTTPS", ProtocolVersion: providers.ProtocolVersionHTTP1, Port: 8443,
			DeregistrationDelay: 30 * time.Second, TLS: tls, Tags: owner(name), ClientToken: providers.NewToken()}
	}
	want := &providers.BackendTLS{ServerName: "web.example.com", CAPEM: ca, SubjectAltNames: []providers.SubjectAltName{
		{Type: providers.SANHostname, Value: "*.web.example.com"}, {Type: providers.SANURI, Value: "spiffe://cluster.local/ns/web/sa/app"}}}
	tg, err := s.d.CreateTargetGroup(bg(), spec("tg-tls", want))
	if !providers.CapabilitiesOf(s.d).BackendTLSVerification {
		if !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
			t.Errorf("TLS from a driver without BackendTLSVerification: %+v, %v; want ErrInvalid, not retryable", tg, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("create an HTTPS group with TLS: %v", err)
	}
	if diff := cmp.Diff(want, tg.TLS); diff != "" {
		t.Errorf("created group's TLS (-want +got):\n%s", diff)
	}
	tgs, err := s.d.ListTargetGroups(bg(), owner("tg-tls"))
	if err != nil || len(tgs) != 1 {
		t.Fatalf("listed: %+v, %v", tgs, err)
	}
	if diff := cmp.Diff(want, tgs[0].TLS); diff != "" {
		t.Errorf("listed group's TLS (-want +got):\n%s", diff)
	}
	if again, err := s.d.CreateTargetGroup(bg(), spec("tg-tls", want)); err != nil || again.ID != tg.ID {
		t.Errorf("the same spec again: %+v, %v; want %s", again, err, tg.ID)
	}
	if other, err := s.d.CreateTargetGroup(bg(), spec("tg-tls", &providers.BackendTLS{ServerName: "web.example.com", SystemRoots: true})); !errors.Is(err, providers.ErrConflict) {
		t.Errorf("another TLS under the name: %+v, %v; want ErrConflict", other, err)
	}
	if bad, err := s.d.CreateTargetGroup(bg(), spec("tg-tls-bad", &providers.BackendTLS{CAPEM: ca})); !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
		t.Errorf("TLS without a server name: %+v, %v; want ErrInvalid, not retryable", bad, err)
	}
	plain, err := s.d.CreateTargetGroup(bg(), spec("tg-tls-plain", nil))
	if err != nil || plain.TLS != nil {
		t.Errorf("an HTTPS group without TLS: %+v, %v; want no TLS", plain, err)
	}
}

// albFrontendClientValidation: a driver with Capabilities.FrontendClientValidation creates an
// HTTPS listener validating client certificates, which it shows again (create, list);
// ModifyHTTPListener replaces it (verify to passthrough) and, given none, removes it; a
// validation the cloud cannot take (Verify without CAs) is ErrInvalid. One without the
// capability refuses ClientValidation with ErrInvalid.
func albFrontendClientValidation(t *testing.T, s *albScene) {
	a := s.alb(t, "alb-mtls")
	certPEM, keyPEM := SelfSigned(t, "lb.example.com")
	cert, err := s.d.ImportCertificate(bg(), providers.CertificateSpec{CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, Tags: owner("alb-mtls"), ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := SelfSigned(t, "ca.example.com")
	spec := func(v *providers.ClientValidation) providers.HTTPListenerSpec {
		return providers.HTTPListenerSpec{Protocol: "HTTPS", Port: 443, DefaultAction: notFound, Certificates: []string{cert.ID},
			ClientValidation: v, ClientToken: providers.NewToken()}
	}
	verify := &providers.ClientValidation{Verify: true, CAPEM: ca}
	l, err := s.d.CreateHTTPListener(bg(), a.ID, spec(verify))
	if !providers.CapabilitiesOf(s.d).FrontendClientValidation {
		if !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
			t.Errorf("ClientValidation from a driver without FrontendClientValidation: %+v, %v; want ErrInvalid, not retryable", l, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("create an HTTPS listener validating clients: %v", err)
	}
	if diff := cmp.Diff(verify, l.ClientValidation); diff != "" {
		t.Errorf("created listener's ClientValidation (-want +got):\n%s", diff)
	}
	listed := func() *providers.ClientValidation {
		t.Helper()
		albs, err := s.d.ListApplicationLoadBalancers(bg(), owner("alb-mtls"))
		if err != nil || len(albs) != 1 || len(albs[0].Listeners) != 1 {
			t.Fatalf("listed: %+v, %v", albs, err)
		}
		return albs[0].Listeners[0].ClientValidation
	}
	if diff := cmp.Diff(verify, listed()); diff != "" {
		t.Errorf("listed listener's ClientValidation (-want +got):\n%s", diff)
	}
	pass := &providers.ClientValidation{}
	if l, err = s.d.ModifyHTTPListener(bg(), l.ID, spec(pass)); err != nil || !cmp.Equal(l.ClientValidation, pass) {
		t.Errorf("modified to passthrough: %+v, %v", l.ClientValidation, err)
	}
	if diff := cmp.Diff(pass, listed()); diff != "" {
		t.Errorf("listed after the change to passthrough (-want +got):\n%s", diff)
	}
	_, err = s.d.ModifyHTTPListener(bg(), l.ID, spec(&providers.ClientValidation{Verify: true}))
	if !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
		t.Errorf("Verify without CAs: %v; want ErrInvalid, not retryable", err)
	}
	if l, err = s.d.ModifyHTTPListener(bg(), l.ID, spec(nil)); err != nil || l.ClientValidation != nil {
		t.Errorf("modified to none: %+v, %v; want no ClientValidation", l.ClientValidation, err)
	}
	if got := listed(); got != nil {
		t.Errorf("listed after the removal: %+v", got)
	}
}

// albBackendClientCert: a driver with Capabilities.BackendClientCertificates creates an HTTPS
// group presenting an imported certificate, which it shows again (create, list); the same
// spec again is the same group, another certificate under the name ErrConflict, a certificate
// that does not exist ErrNotFound or ErrInvalid (not retryable); the certificate cannot be
// deleted while the group names it (ErrConflict), and can once the group is gone. One without
// the capability refuses a client certificate with ErrInvalid.
func albBackendClientCert(t *testing.T, s *albScene) {
	var certs []providers.Certificate
	for _, name := range []string{"lb.example.com", "other.example.com"} {
		certPEM, keyPEM := SelfSigned(t, name)
		c, err := s.d.ImportCertificate(bg(), providers.CertificateSpec{CertificatePEM: certPEM, PrivateKeyPEM: keyPEM, Tags: owner("tg-mtls"), ClientToken: providers.NewToken()})
		if err != nil {
			t.Fatalf("import %s: %v", name, err)
		}
		certs = append(certs, c)
	}
	spec := func(name, certID string) providers.TargetGroupSpec {
		return providers.TargetGroupSpec{Name: name, Protocol: "HTTPS", ProtocolVersion: providers.ProtocolVersionHTTP1, Port: 8443,
			DeregistrationDelay: 30 * time.Second, ClientCertificateID: certID, Tags: owner(name), ClientToken: providers.NewToken()}
	}
	tg, err := s.d.CreateTargetGroup(bg(), spec("tg-mtls", certs[0].ID))
	if !providers.CapabilitiesOf(s.d).BackendClientCertificates {
		if !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
			t.Errorf("a client certificate from a driver without BackendClientCertificates: %+v, %v; want ErrInvalid, not retryable", tg, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("create an HTTPS group with a client certificate: %v", err)
	}
	if tg.ClientCertificateID != certs[0].ID {
		t.Errorf("created group's ClientCertificateID %q, want %s", tg.ClientCertificateID, certs[0].ID)
	}
	tgs, err := s.d.ListTargetGroups(bg(), owner("tg-mtls"))
	if err != nil || len(tgs) != 1 || tgs[0].ClientCertificateID != certs[0].ID {
		t.Fatalf("listed: %+v, %v; want the group with %s", tgs, err, certs[0].ID)
	}
	if again, err := s.d.CreateTargetGroup(bg(), spec("tg-mtls", certs[0].ID)); err != nil || again.ID != tg.ID {
		t.Errorf("the same spec again: %+v, %v; want %s", again, err, tg.ID)
	}
	if other, err := s.d.CreateTargetGroup(bg(), spec("tg-mtls", certs[1].ID)); !errors.Is(err, providers.ErrConflict) {
		t.Errorf("another client certificate under the name: %+v, %v; want ErrConflict", other, err)
	}
	unknown, err := s.d.CreateTargetGroup(bg(), spec("tg-mtls-unknown", "cert-does-not-exist"))
	if !errors.Is(err, providers.ErrNotFound) && !errors.Is(err, providers.ErrInvalid) || providers.Retryable(err) {
		t.Errorf("a client certificate that does not exist: %+v, %v; want ErrNotFound or ErrInvalid, not retryable", unknown, err)
	}
	wantKind(t, "delete a certificate a target group presents", s.d.DeleteCertificate(bg(), certs[0].ID), providers.ErrConflict)
	if err := s.d.DeleteTargetGroup(bg(), tg.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DeleteCertificate(bg(), certs[0].ID); err != nil {
		t.Errorf("delete the certificate once no group presents it: %v", err)
	}
}

func isKind(err, kind error) bool { return err != nil && errors.Is(err, kind) }

// SelfSigned returns a PEM certificate for names (the first is the subject), valid for a day,
// and its PEM (PKCS#8) ECDSA key: what a kubernetes.io/tls Secret holds.
func SelfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// albPassthrough: TLS-passthrough listeners route by SNI with Hosts-only rules and may have no
// default; TCP listeners forward; both to TCP groups. A cloud that cannot (CoreActionsOnly:
// ELBv2) refuses them with ErrInvalid.
func albPassthrough(t *testing.T, s *albScene) {
	lb := s.alb(t, "alb-l4")
	tg, err := s.d.CreateTargetGroup(bg(), providers.TargetGroupSpec{Name: "tls-tg", Protocol: "TCP", Port: 8443,
		DeregistrationDelay: 30 * time.Second, Tags: owner("tls-tg"), ClientToken: providers.NewToken()})
	if err != nil {
		t.Fatal(err)
	}
	fwd := providers.RuleAction{Forward: []providers.WeightedTargetGroup{{TargetGroupID: tg.ID, Weight: 1}}}
	l, err := s.d.CreateHTTPListener(bg(), lb.ID, providers.HTTPListenerSpec{Protocol: providers.ProtocolTLS, Port: 443, ClientToken: providers.NewToken()})
	if s.env.CoreActionsOnly {
		if !errors.Is(err, providers.ErrInvalid) {
			t.Errorf("a TLS-passthrough listener: %+v, %v; want ErrInvalid", l, err)
		}
		return
	}
	if err != nil || l.Protocol != providers.ProtocolTLS || len(l.DefaultAction.Forward) != 0 {
		t.Fatalf("TLS listener without a default: %+v, %v", l, err)
	}
	spec := providers.RuleSpec{Priority: 1, Conditions: providers.RuleConditions{Hosts: []string{"a.example.com", "*.example.org"}}, Action: fwd, ClientToken: providers.NewToken()}
	if _, err := s.d.CreateRule(bg(), l.ID, spec); err != nil {
		t.Fatal(err)
	}
	// A rule passing its names' TLS through where the listener would terminate the rest.
	pass := providers.RuleSpec{Priority: 3, Conditions: providers.RuleConditions{Hosts: []string{"pass.example.com"}}, Action: fwd, ClientToken: providers.NewToken()}
	pass.Action.TLSPassthrough = true
	if err := providers.CheckRule(s.d, pass); err != nil {
		t.Errorf("CheckRule of a TLS-passthrough rule: %v", err)
	}
	if _, err := s.d.CreateRule(bg(), l.ID, pass); err != nil {
		t.Fatal(err)
	}
	rules, err := s.d.ListRules(bg(), l.ID)
	if err != nil || len(rules) != 2 || !slices.Equal(rules[0].Conditions.Hosts, spec.Conditions.Hosts) || rules[0].Action.TLSPassthrough ||
		!rules[1].Action.TLSPassthrough {
		t.Errorf("rules %+v, %v; want the SNI rule, then the passthrough one", rules, err)
	}
	spec.Conditions.Path = &providers.StringMatch{Type: providers.MatchExact, Value: "/"}
	spec.Priority, spec.ClientToken = 2, providers.NewToken()
	if _, err := s.d.CreateRule(bg(), l.ID, spec); !errors.Is(err, providers.ErrInvalid) {
		t.Errorf("a path on a TLS listener: %v; want ErrInvalid", err)
	}
	tcp, err := s.d.CreateHTTPListener(bg(), lb.ID, providers.HTTPListenerSpec{Protocol: providers.ProtocolTCP, Port: 5432, DefaultAction: fwd, ClientToken: providers.NewToken()})
	if err != nil || tcp.Protocol != providers.ProtocolTCP {
		t.Fatalf("TCP listener: %+v, %v", tcp, err)
	}
	l, err = s.d.ModifyHTTPListener(bg(), l.ID, providers.HTTPListenerSpec{Protocol: providers.ProtocolTLS, Port: 443, DefaultAction: fwd})
	if err != nil || len(l.DefaultAction.Forward) != 1 {
		t.Errorf("TLS listener given a default: %+v, %v", l, err)
	}
	albs, err := s.d.ListApplicationLoadBalancers(bg(), owner("alb-l4"))
	if err != nil || len(albs) != 1 || len(albs[0].Listeners) != 2 {
		t.Errorf("listed: %+v, %v; want both listeners", albs, err)
	}
}
