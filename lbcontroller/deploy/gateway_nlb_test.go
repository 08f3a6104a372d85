package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
			// b is the oldest route, though last but one in SNI order.
			{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
				{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/a rule 0", Forward: fwd("tls-a", 1)},
				{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/b rule 0", Forward: fwd("tls-b", 1)},
				{Hostnames: []string{"c.example.com"}, Source: "TLSRoute infra/c rule 0", Forward: fwd("tls-a", 1)},
			}, RouteOrder: []string{"TLSRoute infra/b rule 0", "TLSRoute infra/c rule 0", "TLSRoute infra/a rule 0"}},
			{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("tcp", 1), DefaultSource: "TCPRoute infra/tcp rule 0",
				RouteOrder: []string{"TCPRoute infra/tcp rule 0"}},
			// A quarter of the datagrams for an unresolved backend: the cloud cannot drop them.
			{Port: 5300, Protocol: gateway.ProtocolUDP, Default: fwd("dns", 3, "", 1), DefaultSource: "UDPRoute infra/dns rule 0",
				RouteOrder: []string{"UDPRoute infra/dns rule 0"}},
		},
		TargetGroups: []gateway.TargetGroup{
			{Name: "web", Service: "infra/web", Port: 80, Protocol: gateway.ProtocolHTTP, Targets: []model.Target{{IP: netip.MustParseAddr("10.0.1.50"), Port: 8080}}},
			udpGroup("dns", "10.0.1.40"), tcpGroup("tcp", "10.0.1.30"), tcpGroup("tls-a", "10.0.1.10"), tcpGroup("tls-b", "10.0.1.20"),
		},
	}
}

// TestSplitGateway: with providers.Capabilities.L4OnApplicationLB off, HTTP stays on the
// application load balancer and the L4 listeners go on a network one; the TLS listener serves
// the oldest route's backend (b's, not a's, first in SNI order), the routes with another
// backend are unserved, and the UDP route with an unresolved share is served in part
// (testdata/gateway/split.golden).
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
	var srcs []string
	for _, u := range unserved {
		srcs = append(srcs, fmt.Sprintf("%s partial=%v", u.Source, u.Partial))
	}
	if want := []string{"TLSRoute infra/c rule 0 partial=false", "TLSRoute infra/a rule 0 partial=false", "UDPRoute infra/dns rule 0 partial=true"}; !slices.Equal(srcs, want) {
		t.Errorf("unserved %q; want %q", srcs, want)
	}
	if nlb.Listeners[0].Port != 443 || nlb.Listeners[0].TargetGroup != "tls-b" {
		t.Errorf("TLS 443 forwards to %+v; want tls-b, the oldest route's", nlb.Listeners[0])
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

// TestSplitGatewayL4Choice: which route and backend a network listener serves, and what the
// routes it leaves out are told. The oldest route wins whatever the SNI order; of a weighted
// forward the backend of the greatest weight is served (the first of equal ones), a weight 0
// backend never; a route served in part stays accepted (Partial).
func TestSplitGatewayL4Choice(t *testing.T) {
	groups := []gateway.TargetGroup{tcpGroup("a", "10.0.1.10"), tcpGroup("b", "10.0.1.20"), tcpGroup("c", "10.0.1.30")}
	owner := model.Owner{Cluster: "test", Namespace: "infra", Name: "l4", UID: "uid-l4"}
	for _, tc := range []struct {
		name     string
		l        gateway.L4Listener
		want     string   // the listener's target group, "" none
		unserved []string // Source, and "(partial)" when served in part
		groups   []string // the network load balancer's target groups
	}{{
		name: "oldest TLS route, not the first SNI entry",
		l: gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
			{Hostnames: []string{"x.a.example.com"}, Source: "TLSRoute infra/new rule 0", Forward: fwd("a", 1)},
			{Hostnames: []string{"*.example.com"}, Source: "TLSRoute infra/old rule 0", Forward: fwd("b", 1)},
		}, RouteOrder: []string{"TLSRoute infra/old rule 0", "TLSRoute infra/new rule 0"}},
		want: "b", unserved: []string{"TLSRoute infra/new rule 0"}, groups: []string{"b"},
	}, {
		name: "the oldest route is the default",
		l: gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
			{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/new rule 0", Forward: fwd("a", 1)},
			{Hostnames: []string{"b.example.com"}, Source: "listener tls-b: no route matches"},
		}, Default: fwd("c", 1), DefaultSource: "TLSRoute infra/any rule 0",
			RouteOrder: []string{"TLSRoute infra/any rule 0", "TLSRoute infra/new rule 0"}},
		want: "c", unserved: []string{"TLSRoute infra/new rule 0"}, groups: []string{"c"},
	}, {
		name: "a newer route with the same backend is served",
		l: gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
			{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/new rule 0", Forward: fwd("a", 1)},
			{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/old rule 0", Forward: fwd("a", 2)},
		}, RouteOrder: []string{"TLSRoute infra/old rule 0", "TLSRoute infra/new rule 0"}},
		want: "a", groups: []string{"a"},
	}, {
		name: "weighted TCP: the heaviest backend, the rest reported",
		l: gateway.L4Listener{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("a", 1, "b", 3, "c", 0),
			DefaultSource: "TCPRoute infra/canary rule 0", RouteOrder: []string{"TCPRoute infra/canary rule 0"}},
		want: "b", unserved: []string{"TCPRoute infra/canary rule 0 (partial)"}, groups: []string{"b"},
	}, {
		name: "equal weights: the first",
		l: gateway.L4Listener{Port: 53, Protocol: gateway.ProtocolUDP, Default: fwd("c", 2, "a", 2),
			DefaultSource: "UDPRoute infra/dns rule 0", RouteOrder: []string{"UDPRoute infra/dns rule 0"}},
		want: "c", unserved: []string{"UDPRoute infra/dns rule 0 (partial)"}, groups: []string{"c"},
	}, {
		name: "weight 0 backends get nothing, and are not reported",
		l: gateway.L4Listener{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("a", 0, "b", 1, "c", 0),
			DefaultSource: "TCPRoute infra/blue-green rule 0", RouteOrder: []string{"TCPRoute infra/blue-green rule 0"}},
		want: "b", groups: []string{"b"},
	}, {
		name: "an older weighted route and a newer one sharing its heaviest backend",
		l: gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
			{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/new rule 0", Forward: fwd("b", 1, "c", 1)},
			{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/old rule 0", Forward: fwd("a", 1, "b", 5)},
		}, RouteOrder: []string{"TLSRoute infra/old rule 0", "TLSRoute infra/new rule 0"}},
		want: "b", unserved: []string{"TLSRoute infra/old rule 0 (partial)", "TLSRoute infra/new rule 0 (partial)"}, groups: []string{"b"},
	}, {
		name: "the oldest route resolved nothing: the next one is served",
		l: gateway.L4Listener{Port: 443, Protocol: gateway.ProtocolTLS, SNI: []gateway.SNIRoute{
			{Hostnames: []string{"a.example.com"}, Source: "TLSRoute infra/new rule 0", Forward: fwd("a", 1)},
			{Hostnames: []string{"b.example.com"}, Source: "TLSRoute infra/old rule 0", Forward: fwd("", 1)},
		}, RouteOrder: []string{"TLSRoute infra/old rule 0", "TLSRoute infra/new rule 0"}},
		want: "a", groups: []string{"a"},
	}, {
		name: "every weight 0: no listener",
		l: gateway.L4Listener{Port: 5432, Protocol: gateway.ProtocolTCP, Default: fwd("a", 0),
			DefaultSource: "TCPRoute infra/off rule 0", RouteOrder: []string{"TCPRoute infra/off rule 0"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			alb := &gateway.ApplicationLoadBalancer{Name: "alb-l4", Passthrough: []gateway.L4Listener{tc.l}, TargetGroups: groups}
			_, nlb, unserved := deploy.SplitGateway(alb, "nlb-l4", owner, nil)
			var got string
			var tgs []string
			if nlb != nil {
				got = nlb.Listeners[0].TargetGroup
				for _, tg := range nlb.TargetGroups {
					tgs = append(tgs, tg.Name)
				}
			}
			var srcs []string
			for _, u := range unserved {
				s := u.Source
				if u.Partial {
					s += " (partial)"
				}
				srcs = append(srcs, s)
				if u.Message == "" {
					t.Errorf("%s: no message", u.Source)
				}
			}
			if got != tc.want || !slices.Equal(srcs, tc.unserved) || !slices.Equal(tgs, tc.groups) {
				t.Errorf("forwards to %q, groups %q, unserved %q; want %q, %q, %q", got, tgs, srcs, tc.want, tc.groups, tc.unserved)
			}
			for _, u := range unserved {
				t.Logf("%s: %s", u.Source, u.Message)
			}
		})
	}
}

// TestSplitGatewayTLSTerminate: a TLS listener in mode Terminate gets no network listener
// (it would pass TLS through to backends that want the decrypted stream): its routes are
// unserved, saying why, and its group goes nowhere; the passthrough listeners are served.
func TestSplitGatewayTLSTerminate(t *testing.T) {
	alb := mixedGateway()
	alb.Passthrough = append(alb.Passthrough, gateway.L4Listener{Port: 9443, Protocol: gateway.ProtocolTLS,
		Certificates: []gateway.Certificate{{Default: true, Secret: "infra/db-cert", Fingerprint: "f1"}},
		SNI:          []gateway.SNIRoute{{Hostnames: []string{"db.example.com"}, Source: "TLSRoute infra/db rule 0", Forward: fwd("db", 1)}},
		RouteOrder:   []string{"TLSRoute infra/db rule 0"}})
	alb.TargetGroups = append(alb.TargetGroups, tcpGroup("db", "10.0.1.60"))
	owner := model.Owner{Cluster: "test", Namespace: "infra", Name: "mixed", UID: "uid-mixed"}
	_, nlb, unserved := deploy.SplitGateway(alb, "nlb-mixed", owner, nil)
	for _, l := range nlb.Listeners {
		if l.Port == 9443 {
			t.Errorf("a network listener for the terminating TLS listener: %+v", l)
		}
	}
	for _, tg := range nlb.TargetGroups {
		if tg.Name == "db" {
			t.Errorf("the terminating listener's group is on the network load balancer: %+v", tg)
		}
	}
	i := slices.IndexFunc(unserved, func(u deploy.Unserved) bool { return u.Source == "TLSRoute infra/db rule 0" })
	if i < 0 || unserved[i].Partial || !strings.Contains(unserved[i].Message, "does not terminate TLS") {
		t.Errorf("unserved %+v; want the db route refused, saying the network load balancer does not terminate TLS", unserved)
	}
	if len(nlb.Listeners) != 3 {
		t.Errorf("network listeners %+v; want the 3 passthrough ones", nlb.Listeners)
	}
}
