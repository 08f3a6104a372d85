package deploy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
	"github.com/flatnet/flatnet/providers/providertest"
)

// golden returns the application load balancers Translate made of testdata/NAME.in.yaml, as
// its golden NAME.out.yaml records them (lbcontroller/gateway's tests keep the two in step).
func golden(t *testing.T, name string) []*gateway.GatewayLoadBalancers {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "gateway", "testdata", name+".out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out gateway.Output
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var gws []*gateway.GatewayLoadBalancers
	for i := range out.LoadBalancers {
		if out.LoadBalancers[i].L7 != nil {
			gws = append(gws, &out.LoadBalancers[i])
		}
	}
	if len(gws) == 0 {
		t.Fatalf("%s has no application load balancer", name)
	}
	return gws
}

func gatewayTags(gw *gateway.GatewayLoadBalancers) map[string]string {
	return map[string]string{"flatnet.io/cluster": "test", "flatnet.io/gateway": gw.Namespace + "/" + gw.Name, "flatnet.io/gateway-uid": gw.UID}
}

// writes are the calls of n that change something.
func writes(n map[string]int) map[string]int {
	out := map[string]int{}
	for action, c := range n {
		if !strings.HasPrefix(action, "Describe") {
			out[action] = c
		}
	}
	return out
}

// cloudRules reads back every rule of the deployed load balancer, by listener port.
// cloudRules are the rules of the cloud's listeners by port; a UDP listener (it has none) is
// under minus its port, as it may share its port with a TCP one (see udpKey).
func cloudRules(t *testing.T, d *fakecloud.LoadBalancing, tags map[string]string) map[int][]providers.Rule {
	t.Helper()
	albs, err := d.ListApplicationLoadBalancers(context.Background(), tags)
	if err != nil || len(albs) != 1 {
		t.Fatalf("application load balancers: %+v, %v", albs, err)
	}
	out := map[int][]providers.Rule{}
	for _, l := range albs[0].Listeners {
		rules, err := d.ListRules(context.Background(), l.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rules {
			rules[i].ID = ""
		}
		out[udpKey(l.Protocol, l.Port)] = rules
	}
	return out
}

// udpKey is a listener's key in cloudRules: its port, minus it for UDP.
func udpKey(protocol string, port int) int {
	if protocol == providers.ProtocolUDP {
		return -port
	}
	return port
}

// priorities of a listener's rules as "priority source" of the model, to compare with the
// cloud's by conditions (paths and hosts).
func ruleSummary(rules []providers.Rule) []string {
	var out []string
	for _, r := range rules {
		s := strings.Join(r.Conditions.Hosts, ",")
		if r.Conditions.Path != nil {
			s += " " + r.Conditions.Path.Type + ":" + r.Conditions.Path.Value
		}
		out = append(out, s)
	}
	return out
}

func modelSummary(rules []gateway.Rule) []string {
	var out []string
	for _, r := range rules {
		s := strings.Join(r.Conditions.Hosts, ",")
		if r.Conditions.Path != nil {
			s += " " + r.Conditions.Path.Type + ":" + r.Conditions.Path.Value
		}
		out = append(out, s)
	}
	return out
}

func TestGatewayDeployGoldenAndRepeat(t *testing.T) {
	for _, name := range []string{"http-basic", "http-filters", "http-precedence", "http-weights", "grpc", "hostname-intersection", "mixed-l4-l7", "tls-passthrough"} {
		t.Run(name, func(t *testing.T) {
			_, d, c := setup(t)
			ctx := context.Background()
			for _, gw := range golden(t, name) {
				tags := gatewayTags(gw)
				res, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "gen1")
				if err != nil {
					t.Fatalf("%s/%s: %v", gw.Namespace, gw.Name, err)
				}
				if !res.VIP.IsValid() || !res.Programmed || res.State != providers.LBActive {
					t.Errorf("%s: %+v; want a VIP, active (no data plane here)", gw.Name, res)
				}
				got := cloudRules(t, d, tags)
				for _, l := range gw.L7.Listeners {
					if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(got[l.Port])); diff != "" {
						t.Errorf("%s listener %d rules (-model +cloud):\n%s", gw.Name, l.Port, diff)
					}
					for i, r := range got[l.Port] {
						if r.Priority != i+1 {
							t.Errorf("rule %d has priority %d", i, r.Priority)
						}
					}
				}
				for _, l := range gw.L7.Passthrough {
					var want []string
					for _, r := range l.SNI {
						want = append(want, strings.Join(r.Hostnames, ","))
					}
					if diff := cmp.Diff(want, ruleSummary(got[udpKey(l.Protocol, l.Port)])); diff != "" {
						t.Errorf("%s %s listener %d rules (-model SNI +cloud):\n%s", gw.Name, l.Protocol, l.Port, diff)
					}
				}
				if n := len(gw.L7.Listeners) + len(gw.L7.Passthrough); len(got) != n {
					t.Errorf("%d listeners in the cloud, %d in the model", len(got), n)
				}
				tgs, err := d.ListTargetGroups(ctx, tags)
				if err != nil || len(tgs) != len(gw.L7.TargetGroups) {
					t.Errorf("target groups %+v (%v), want %d", tgs, err, len(gw.L7.TargetGroups))
				}
				for _, tg := range gw.L7.TargetGroups {
					var want []string
					for _, tt := range tg.Targets {
						want = append(want, tt.String())
					}
					if diff := cmp.Diff(want, live(t, d, res.TargetGroups[tg.Name])); diff != "" {
						t.Errorf("targets of %s (-want +got):\n%s", tg.Name, diff)
					}
				}
				c.take()

				again, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "gen2")
				if err != nil {
					t.Fatal(err)
				}
				if w := writes(c.take()); len(w) != 0 || len(again.Changes) != 0 {
					t.Errorf("%s: an unchanged model wrote %v (%v)", gw.Name, w, again.Changes)
				}
				if again.LoadBalancerID != res.LoadBalancerID {
					t.Errorf("another load balancer: %s, was %s", again.LoadBalancerID, res.LoadBalancerID)
				}
			}
		})
	}
}

func TestGatewayWeightChangeInPlace(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	gw := golden(t, "http-weights")[0]
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	before := cloudRules(t, d, tags)
	c.take()
	gw.L7.Listeners[0].Rules[0].Action.Forward.Backends[0].Weight = 0
	gw.L7.Listeners[0].Rules[0].Action.Forward.Backends[1].Weight = 100
	res, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{api.ActionModifyRule: 1}, writes(c.take())); diff != "" {
		t.Errorf("a weight change (-want +got calls):\n%s\n%v", diff, res.Changes)
	}
	after := cloudRules(t, d, tags)
	fw := after[80][0].Action.Forward
	if len(fw) != 2 || fw[0].Weight != 0 || fw[1].Weight != 100 || after[80][0].Priority != before[80][0].Priority {
		t.Errorf("after the change: %+v", after[80][0])
	}
}

func TestGatewayRouteRemovedAndInserted(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	gw := golden(t, "http-precedence")[0]
	tags := gatewayTags(gw)
	first, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1")
	if err != nil {
		t.Fatal(err)
	}
	l := &gw.L7.Listeners[0]
	if len(l.Rules) < 3 {
		t.Fatalf("http-precedence has %d rules", len(l.Rules))
	}

	// The first rule's route goes: its rule and the groups only it used go; the others move up.
	removed := l.Rules[0]
	l.Rules = l.Rules[1:]
	for i := range l.Rules {
		l.Rules[i].Priority = i + 1
	}
	used := usedGroups(gw.L7)
	var gone []string
	gw.L7.TargetGroups = slices.DeleteFunc(gw.L7.TargetGroups, func(tg gateway.TargetGroup) bool {
		if !used[tg.Name] {
			gone = append(gone, first.TargetGroups[tg.Name])
		}
		return !used[tg.Name]
	})
	c.take()
	res, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g2")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{api.ActionDeleteRule: 1, api.ActionSetRulePriorities: 1}
	if len(gone) > 0 {
		want[api.ActionDeleteTargetGroup] = len(gone)
	}
	if diff := cmp.Diff(want, writes(c.take())); diff != "" {
		t.Errorf("removing %s (-want +got calls):\n%s\n%v", removed.Source, diff, res.Changes)
	}
	if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloudRules(t, d, tags)[l.Port])); diff != "" {
		t.Errorf("rules after the removal (-model +cloud):\n%s", diff)
	}
	for _, id := range gone {
		if tgs, _ := d.ListTargetGroups(ctx, tags); slices.ContainsFunc(tgs, func(tg providers.TargetGroup) bool { return tg.ID == id }) {
			t.Errorf("target group %s is still there", id)
		}
	}

	if len(gone) != 0 {
		t.Fatalf("the first rule of http-precedence was the only user of %v: the test expects it shares its groups", gone)
	}

	// It comes back at the top: one create, one reorder.
	l.Rules = append([]gateway.Rule{removed}, l.Rules...)
	renumber(l.Rules)
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g3"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{api.ActionCreateRule: 1, api.ActionSetRulePriorities: 1}, writes(c.take())); diff != "" {
		t.Errorf("inserting a rule first (-want +got calls):\n%s", diff)
	}
	if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloudRules(t, d, tags)[l.Port])); diff != "" {
		t.Errorf("rules after the insertion (-model +cloud):\n%s", diff)
	}

	// Every route to one group goes: their rules, then the group, are deleted.
	tg := gw.L7.TargetGroups[0]
	n := len(l.Rules)
	l.Rules = slices.DeleteFunc(l.Rules, func(r gateway.Rule) bool {
		return r.Action.Forward != nil && slices.ContainsFunc(r.Action.Forward.Backends, func(b gateway.WeightedBackend) bool { return b.TargetGroup == tg.Name })
	})
	renumber(l.Rules)
	gw.L7.TargetGroups = gw.L7.TargetGroups[1:]
	if usedGroups(gw.L7)[tg.Name] || n == len(l.Rules) {
		t.Fatalf("%s is still used, or was not", tg.Name)
	}
	res, err = deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g4")
	if err != nil {
		t.Fatal(err)
	}
	got := writes(c.take())
	if got[api.ActionDeleteRule] != n-len(l.Rules) || got[api.ActionDeleteTargetGroup] != 1 || got[api.ActionCreateRule] != 0 {
		t.Errorf("removing the routes to %s: calls %v (%v)", tg.Name, got, res.Changes)
	}
	if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloudRules(t, d, tags)[l.Port])); diff != "" {
		t.Errorf("rules after removing a group's routes (-model +cloud):\n%s", diff)
	}
	if tgs, _ := d.ListTargetGroups(ctx, tags); slices.ContainsFunc(tgs, func(g providers.TargetGroup) bool { return g.ID == first.TargetGroups[tg.Name] }) {
		t.Errorf("target group %s is still there", tg.Name)
	}
}

func renumber(rules []gateway.Rule) {
	for i := range rules {
		rules[i].Priority = i + 1
	}
}

func usedGroups(alb *gateway.ApplicationLoadBalancer) map[string]bool {
	used := map[string]bool{}
	for _, l := range alb.Listeners {
		for _, r := range l.Rules {
			if r.Action.Forward != nil {
				for _, b := range r.Action.Forward.Backends {
					used[b.TargetGroup] = true
				}
			}
			for _, m := range r.Action.Mirrors {
				used[m.TargetGroup] = true
			}
		}
	}
	return used
}

// withCertificates gives every certificate of the model (HTTPS listeners and TLS ones in mode
// Terminate) a real PEM pair for its Secret (one per Secret, as the Secret holds one),
// fingerprinted as Translate does.
func withCertificates(t *testing.T, alb *gateway.ApplicationLoadBalancer, names map[string]string) {
	t.Helper()
	pairs := map[string][2][]byte{}
	var all []*gateway.Certificate
	for i := range alb.Listeners {
		for j := range alb.Listeners[i].Certificates {
			all = append(all, &alb.Listeners[i].Certificates[j])
		}
	}
	for i := range alb.Passthrough {
		for j := range alb.Passthrough[i].Certificates {
			all = append(all, &alb.Passthrough[i].Certificates[j])
		}
	}
	for _, c := range all {
		p, ok := pairs[c.Secret]
		if !ok {
			cert, key := providertest.SelfSigned(t, names[c.Secret])
			p = [2][]byte{cert, key}
			pairs[c.Secret] = p
		}
		block, _ := pem.Decode(p[0])
		sum := sha256.Sum256(block.Bytes)
		c.CertPEM, c.KeyPEM, c.Fingerprint = p[0], p[1], hex.EncodeToString(sum[:])
	}
}

func TestGatewayCertificatesImportedOnceAndRotated(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	var gw *gateway.GatewayLoadBalancers
	for _, g := range golden(t, "https-certs") {
		if len(g.L7.Listeners) > 0 && len(g.L7.Listeners[0].Certificates) > 1 {
			gw = g
		}
	}
	if gw == nil {
		t.Fatal("https-certs has no listener with two certificates")
	}
	tags := gatewayTags(gw)
	withCertificates(t, gw.L7, map[string]string{"infra/example-com": "example.com"})
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	if n := c.take(); n[api.ActionImportCertificate] != 1 {
		t.Errorf("one Secret's certificate, twice on the listener: %d imports", n[api.ActionImportCertificate])
	}
	certs, err := d.ListCertificates(ctx, tags)
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificates: %+v, %v", certs, err)
	}
	old := certs[0].ID
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g2"); err != nil {
		t.Fatal(err)
	}
	if w := writes(c.take()); len(w) != 0 {
		t.Errorf("redeploy wrote %v", w)
	}

	// The Secret is renewed: the new certificate is imported, served, and the old one deleted.
	withCertificates(t, gw.L7, map[string]string{"infra/example-com": "example.com"})
	res, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g3")
	if err != nil {
		t.Fatal(err)
	}
	n := writes(c.take())
	if n[api.ActionImportCertificate] != 1 || n[api.ActionModifyListener] != 1 || n[api.ActionDeleteCertificate] != 1 {
		t.Errorf("rotation: %v (%v)", n, res.Changes)
	}
	certs, _ = d.ListCertificates(ctx, tags)
	if len(certs) != 1 || certs[0].ID == old {
		t.Fatalf("after rotation: %+v (old %s)", certs, old)
	}
	albs, _ := d.ListApplicationLoadBalancers(ctx, tags)
	if got := albs[0].Listeners[0].Certificates; !slices.Equal(got, []string{certs[0].ID}) {
		t.Errorf("listener serves %v, want %s", got, certs[0].ID)
	}

	// The listener's hostname scopes are the model's; a change to them modifies the listener.
	scopes := gw.L7.Listeners[0].HostnameScopes
	if got := albs[0].Listeners[0].HostnameScopes; len(scopes) != 2 || !slices.Equal(got, scopes) {
		t.Errorf("listener hostname scopes %q, want the model's %q (two)", got, scopes)
	}
	gw.L7.Listeners[0].HostnameScopes = scopes[:1]
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g4"); err != nil {
		t.Fatal(err)
	}
	if n := writes(c.take()); n[api.ActionModifyListener] != 1 || len(n) != 1 {
		t.Errorf("a scope removed: %v, want one ModifyListener", n)
	}
	albs, _ = d.ListApplicationLoadBalancers(ctx, tags)
	if got := albs[0].Listeners[0].HostnameScopes; !slices.Equal(got, scopes[:1]) {
		t.Errorf("after the change: scopes %q, want %q", got, scopes[:1])
	}
}

func TestGatewayThrottleRetried(t *testing.T) {
	env, d, _ := setup(t)
	ctx := context.Background()
	gw := golden(t, "http-filters")[0]
	tags := gatewayTags(gw)
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: "*", ErrorRate: 0.3, ErrorCode: api.CodeRequestLimitExceeded}}); err != nil {
		t.Fatal(err)
	}
	p := providers.NewPolicy(providers.PolicyConfig{MaxAttempts: 30, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, BreakerThreshold: -1})
	res, err := deploy.ApplicationLoadBalancer(ctx, p.ApplicationLoadBalancing(d), gw.L7, tags, "g1")
	if err != nil {
		t.Fatalf("under 30%% throttling, retried by the policy: %v", err)
	}
	if _, err := env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(modelSummary(gw.L7.Listeners[0].Rules), ruleSummary(cloudRules(t, d, tags)[gw.L7.Listeners[0].Port])); diff != "" {
		t.Errorf("rules (-model +cloud):\n%s", diff)
	}
	again, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1")
	if err != nil || len(again.Changes) != 0 || again.LoadBalancerID != res.LoadBalancerID {
		t.Errorf("after the throttled pass, another changed %v (%v)", again.Changes, err)
	}
}

func TestGatewayDeleteIsDeployingNothing(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	gw := golden(t, "https-certs")[0]
	withCertificates(t, gw.L7, map[string]string{"infra/example-com": "example.com", "apps/example-com": "example.com"})
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	res, err := deploy.ApplicationLoadBalancer(ctx, d, nil, tags, "g2")
	if err != nil {
		t.Fatal(err)
	}
	albs, _ := d.ListApplicationLoadBalancers(ctx, tags)
	tgs, _ := d.ListTargetGroups(ctx, tags)
	certs, _ := d.ListCertificates(ctx, tags)
	if len(albs)+len(tgs)+len(certs) != 0 || len(res.Changes) == 0 {
		t.Errorf("left after deleting: %v %v %v (did %v)", albs, tgs, certs, res.Changes)
	}
}

// TestGatewayDeployAfterLostAnswers: each create's answer is lost once (the call was carried
// out); repeating the pass converges on exactly one of each resource.
func TestGatewayDeployAfterLostAnswers(t *testing.T) {
	env, d, c := setup(t)
	ctx := context.Background()
	gws := golden(t, "https-certs")
	gw := gws[len(gws)-1]
	if len(gw.L7.TargetGroups) == 0 || len(gw.L7.Listeners[0].Rules) == 0 {
		t.Fatalf("the last Gateway of https-certs has no rules: %+v", gw.L7)
	}
	withCertificates(t, gw.L7, map[string]string{"infra/example-com": "example.com", "apps/example-com": "example.com"})
	tags := gatewayTags(gw)
	for _, action := range []string{api.ActionCreateLoadBalancer, api.ActionCreateTargetGroup, api.ActionImportCertificate, api.ActionCreateListener, api.ActionCreateRule} {
		if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: action, ErrorRate: 1, ErrorCode: api.CodeInternalError, AfterCommit: true}}); err != nil {
			t.Fatal(err)
		}
		_, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1")
		if !providers.Retryable(err) {
			t.Fatalf("with %s's answer lost: %v, want a retryable error", action, err)
		}
		if _, err := env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	albs, _ := d.ListApplicationLoadBalancers(ctx, tags)
	tgs, _ := d.ListTargetGroups(ctx, tags)
	certs, _ := d.ListCertificates(ctx, tags)
	if len(albs) != 1 || len(tgs) != len(gw.L7.TargetGroups) || len(certs) != 1 || len(albs[0].Listeners) != len(gw.L7.Listeners) {
		t.Fatalf("after repeated passes: %d load balancers (%+v), %d target groups, %d certificates", len(albs), albs, len(tgs), len(certs))
	}
	for _, l := range gw.L7.Listeners {
		if diff := cmp.Diff(modelSummary(l.Rules), ruleSummary(cloudRules(t, d, tags)[l.Port])); diff != "" {
			t.Errorf("rules of %d (-model +cloud):\n%s", l.Port, diff)
		}
	}
	c.take()
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	if w := writes(c.take()); len(w) != 0 {
		t.Errorf("converged, then wrote %v", w)
	}
}

// TestGatewayRuleBeyondConditionQuota: a rule with more condition values than a cloud rule
// holds becomes one rule per host, at consecutive priorities; a second pass writes nothing.
func TestGatewayRuleBeyondConditionQuota(t *testing.T) {
	_, d, c := setup(t)
	ctx := context.Background()
	gw := golden(t, "http-basic")[0]
	tags := gatewayTags(gw)
	r := &gw.L7.Listeners[0].Rules[0]
	r.Conditions.Hosts = []string{"a.example.com", "b.example.com", "c.example.com"}
	r.Conditions.Headers = []gateway.StringMatch{{Name: "x-a", Type: gateway.MatchExact, Value: "1"}, {Name: "x-b", Type: gateway.MatchExact, Value: "2"}}
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g1"); err != nil {
		t.Fatal(err)
	}
	rules := cloudRules(t, d, tags)[gw.L7.Listeners[0].Port]
	var hosts []string
	for i, cr := range rules[:3] {
		if cr.Priority != i+1 || len(cr.Conditions.Hosts) != 1 || len(cr.Conditions.Headers) != 2 {
			t.Errorf("cloud rule %d: %+v", i, cr)
		}
		hosts = append(hosts, cr.Conditions.Hosts...)
	}
	if diff := cmp.Diff(r.Conditions.Hosts, hosts); diff != "" || len(rules) != len(gw.L7.Listeners[0].Rules)+2 {
		t.Errorf("%d cloud rules, hosts (-model +cloud):\n%s", len(rules), diff)
	}
	c.take()
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, gw.L7, tags, "g2"); err != nil {
		t.Fatal(err)
	}
	if w := writes(c.take()); len(w) != 0 {
		t.Errorf("redeploy wrote %v", w)
	}
}
