package deploy_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// mixedGateway mixes HTTP with TLS passthrough (two routes with different backends), TCP and UDP.
func mixedGateway() *gateway.ApplicationLoadBalancer {
	return &gateway.ApplicationLoadBalancer{
		Name: "alb-mixed",
		Listeners: []gateway.HTTPListener{{Port: 80, Protocol: gateway.ProtocolHTTP, Rules: []gateway.Rule{
			{Priority: 1, Source: "HTTPRoute infra/web rule 0", Conditions: gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: "/"}}, Action: gateway.Action{Forward: fwd("web", 1)}},
		}}},
		Passthrough: []gateway.L4Listener{
			{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
				{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/a rule 0", Forward: fwd("tls-a", 1)},
				{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/b rule 0", Forward: fwd("tls-b", 1)},
				{Hostnames: []string{"c.example.com"}, Source: "TLSRoute infra/c rule 0", Forward: fwd("tls-a", 1)},
			}},
			{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("tcp", 1)},
			{Port: 5300, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 3, "", 1)},
		},
		TargetGroups: []gateway.TargetGroup{
			{Name: "web", Service: "infra/web", Port: 80, Protocol: gateway.ProtocolHTTP, Targets: []model.Target{{IP: netip.MustParseAddr("10.0.1.50"), Port: 8080}}},
			udpGroup("dns", "10.0.1.40"), tcpGroup("tcp", "10.0.1.30"), tcpGroup("tls-a", "10.0.1.10"), tcpGroup("tls-b", "10.0.1.20"),
		},
	}
}

// TestSplitGateway: with providers.Capabilities.L4OnApplicationLB off, HTTP stays on the
// application load balancer and the L4 listeners go on a network one; the TLS route with
// another backend than the first's is unserved (testdata/gateway/split.golden).
func TestSplitGateway(t *testing.T) {
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "mixed", UID: "uid-mixed"}
	owner := model.Owner{Cluster: "test", Namespace: gw.Namespace, Name: gw.Name, UID: gw.UID}
	l7, nlb, unserved := deploy.SplitGateway(mixedGateway(), "nlb-mixed", owner, gatewayTags(gw))
	got, err := json.MarshalIndent(map[string]any{"applicationLoadBalancer": l7, "networkLoadBalancer": nlb, "unserved": unserved}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "gateway", "split.golden")
	if *updateGateway {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-gateway to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)+"\n"); diff != "" {
		t.Errorf("split (-%s +got):\n%s", golden, diff)
	}
	if len(unserved) != 1 || unserved[0].Source != "TLSRoute infra/b rule 0" {
		t.Errorf("unserved %+v; want TLSRoute infra/b only", unserved)
	}
	if l7, nlb, _ := deploy.SplitGateway(&gateway.ApplicationLoadBalancer{Name: "alb-http", Listeners: mixedGateway().Listeners}, "nlb-x", owner, nil); nlb != nil || l7.Name != "alb-http" {
		t.Errorf("HTTP only: network load balancer %+v; want none", nlb)
	}
}

// TestGatewayNetworkLoadBalancer deploys the split Gateway: both load balancers, again
// without change, then the L4 listeners go and so does the network load balancer.
func TestGatewayNetworkLoadBalancer(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "mixed", UID: "uid-mixed"}
	tags := gatewayTags(gw)
	owner := model.Owner{Cluster: "test", Namespace: gw.Namespace, Name: gw.Name, UID: gw.UID}
	l7, nlb, _ := deploy.SplitGateway(mixedGateway(), "nlb-mixed", owner, tags)
	alb, err := deploy.ApplicationLoadBalancer(ctx, d, l7, tags, "g1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := deploy.NetworkLoadBalancer(ctx, d, nlb, tags, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if !res.VIP.IsValid() || res.VIP == alb.VIP || len(res.TargetGroups) != 3 {
		t.Errorf("network load balancer %+v; want its own VIP and 3 target groups", res)
	}
	lbs, err := d.ListLoadBalancers(ctx, map[string]string{"flatnet.io/gateway": "infra/mixed", deploy.TagLayer: deploy.LayerL4})
	if err != nil || len(lbs) != 1 || len(lbs[0].Listeners) != 3 {
		t.Fatalf("network load balancers %+v (%v); want one with 3 listeners", lbs, err)
	}
	for _, tg := range nlb.TargetGroups {
		if got := live(t, d, res.TargetGroups[tg.Name]); len(got) != 1 || got[0] != tg.Targets[0].String() {
			t.Errorf("targets of %s: %v", tg.Name, got)
		}
	}
	if again, err := deploy.NetworkLoadBalancer(ctx, d, nlb, tags, "g2"); err != nil || again.Created || again.Registered+again.Deregistered != 0 {
		t.Errorf("deployed again: %+v (%v); want no change", again, err)
	}
	// The L4 listeners go: so does the network load balancer; the application one stays.
	_, nlb, _ = deploy.SplitGateway(&gateway.ApplicationLoadBalancer{Name: "alb-mixed", Listeners: l7.Listeners, TargetGroups: l7.TargetGroups}, "nlb-mixed", owner, tags)
	if _, err := deploy.NetworkLoadBalancer(ctx, d, nlb, tags, "g3"); err != nil {
		t.Fatal(err)
	}
	if lbs, err := d.ListLoadBalancers(ctx, map[string]string{"flatnet.io/gateway": "infra/mixed"}); err != nil || len(lbs) != 0 {
		t.Errorf("network load balancers left: %+v (%v)", lbs, err)
	}
	if tgs, err := d.ListTargetGroups(ctx, map[string]string{"flatnet.io/gateway": "infra/mixed", deploy.TagLayer: deploy.LayerL4}); err != nil || len(tgs) != 0 {
		t.Errorf("network target groups left: %+v (%v)", tgs, err)
	}
	if albs, err := d.ListApplicationLoadBalancers(ctx, tags); err != nil || len(albs) != 1 || albs[0].ID != alb.LoadBalancerID {
		t.Errorf("application load balancers %+v (%v); want %s kept", albs, err, alb.LoadBalancerID)
	}
	// Deleted by the Gateway's tags (uninstall, GC).
	if _, err := deploy.NetworkLoadBalancer(ctx, d, mustNLB(t, owner, tags), tags, "g4"); err != nil {
		t.Fatal(err)
	}
	if err := deploy.DeleteNetworkLoadBalancer(ctx, d, map[string]string{"flatnet.io/cluster": "test"}); err != nil {
		t.Fatal(err)
	}
	if lbs, err := d.ListLoadBalancers(ctx, map[string]string{"flatnet.io/cluster": "test"}); err != nil || len(lbs) != 0 {
		t.Errorf("after DeleteNetworkLoadBalancer: %+v (%v)", lbs, err)
	}
}

func mustNLB(t *testing.T, owner model.Owner, tags map[string]string) *model.LoadBalancer {
	t.Helper()
	_, nlb, _ := deploy.SplitGateway(mixedGateway(), "nlb-mixed", owner, tags)
	if nlb == nil {
		t.Fatal("no network load balancer")
	}
	return nlb
}
