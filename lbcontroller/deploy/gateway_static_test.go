package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// TestGatewayStaticAddress: a model with an Address is created at it; a repeated deploy
// changes nothing; a new Address gets a new load balancer (its address is fixed at creation;
// the model names it after the address) and the old one is deleted once the new one exists; an
// address the cloud cannot give fails the deploy with ErrAddressUnusable (not retryable) and
// leaves the load balancer serving where it was; pinning the address a load balancer has keeps
// it, whatever its name; dropping the Address keeps whatever load balancer serves.
func TestGatewayStaticAddress(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "static", UID: "uid-static"}
	tags := gatewayTags(gw)
	alb := func(addr string) *gateway.ApplicationLoadBalancer {
		name := "alb-static"
		if addr != "" {
			name += "-" + strings.ReplaceAll(addr, ".", "-")
		}
		return &gateway.ApplicationLoadBalancer{Name: name, Address: addr, Listeners: []gateway.HTTPListener{{Port: 80, Protocol: gateway.ProtocolHTTP}}}
	}
	only := func(step, id string) {
		t.Helper()
		lbs, err := d.ListApplicationLoadBalancers(ctx, tags)
		if err != nil || len(lbs) != 1 || lbs[0].ID != id {
			t.Errorf("%s: load balancers %+v, %v; want only %s", step, lbs, err, id)
		}
	}
	dynamic, err := deploy.ApplicationLoadBalancer(ctx, d, alb(""), tags, "t0")
	if err != nil {
		t.Fatal(err)
	}
	// Pinning the address the cloud gave keeps the load balancer.
	pinned, err := deploy.ApplicationLoadBalancer(ctx, d, alb(dynamic.VIP.String()), tags, "t1")
	if err != nil || pinned.LoadBalancerID != dynamic.LoadBalancerID || len(pinned.Changes) != 0 {
		t.Errorf("pinned at %s: %+v, %v; want %s kept, no change", dynamic.VIP, pinned, err, dynamic.LoadBalancerID)
	}
	first, err := deploy.ApplicationLoadBalancer(ctx, d, alb("198.51.100.200"), tags, "t2")
	if err != nil || first.VIP != netip.MustParseAddr("198.51.100.200") || first.LoadBalancerID == dynamic.LoadBalancerID {
		t.Fatalf("at 198.51.100.200: %+v, %v; want a new load balancer there", first, err)
	}
	if !strings.Contains(strings.Join(first.Changes, "\n"), "delete load balancer "+dynamic.LoadBalancerID) {
		t.Errorf("changes %v; want the load balancer at the old address deleted", first.Changes)
	}
	only("moved to 198.51.100.200", first.LoadBalancerID)
	again, err := deploy.ApplicationLoadBalancer(ctx, d, alb("198.51.100.200"), tags, "t3")
	if err != nil || len(again.Changes) != 0 || again.LoadBalancerID != first.LoadBalancerID {
		t.Errorf("deployed again: %v (%v), load balancer %s; want no change to %s", again.Changes, err, again.LoadBalancerID, first.LoadBalancerID)
	}
	// Another Gateway holds 198.51.100.201; 203.0.113.5 is outside the pool. Asking for either
	// fails, and the load balancer at .200 serves on.
	other := gatewayTags(&gateway.GatewayLoadBalancers{Namespace: "infra", Name: "other", UID: "uid-other"})
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, &gateway.ApplicationLoadBalancer{Name: "alb-other", Address: "198.51.100.201"}, other, "o1"); err != nil {
		t.Fatal(err)
	}
	for i, addr := range []string{"198.51.100.201", "203.0.113.5"} {
		res, err := deploy.ApplicationLoadBalancer(ctx, d, alb(addr), tags, fmt.Sprint("t4-", i))
		if !errors.Is(err, providers.ErrAddressUnusable) || providers.Retryable(err) {
			t.Errorf("a load balancer at %s: %v; want ErrAddressUnusable, not retryable", addr, err)
		}
		if res.LoadBalancerID != first.LoadBalancerID || res.VIP != first.VIP {
			t.Errorf("a load balancer at %s refused: the result names %s at %s; want the one serving on, %s at %s", addr, res.LoadBalancerID, res.VIP, first.LoadBalancerID, first.VIP)
		}
		only("refused "+addr, first.LoadBalancerID)
	}
	// Without an Address, the load balancer serving stays, at its address.
	kept, err := deploy.ApplicationLoadBalancer(ctx, d, alb(""), tags, "t5")
	if err != nil || kept.LoadBalancerID != first.LoadBalancerID || kept.VIP != first.VIP {
		t.Errorf("address dropped: %+v, %v; want %s kept at %s", kept, err, first.LoadBalancerID, first.VIP)
	}
}

// TestGatewayTargetGroupProtocols: the model's group protocols become the cloud's protocol and
// version: HTTP/HTTP1, H2C as HTTP/GRPC, HTTPS (appProtocol https) as HTTPS/HTTP1, TCP and UDP
// as themselves; a protocol an application load balancer cannot serve fails the deploy.
func TestGatewayTargetGroupProtocols(t *testing.T) {
	_, d, _ := setup(t)
	ctx := context.Background()
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "protocols", UID: "uid-protocols"}
	tags := gatewayTags(gw)
	group := func(name, proto string) gateway.TargetGroup {
		return gateway.TargetGroup{Name: name, Service: "infra/" + name, Port: 443, Protocol: proto}
	}
	fw := func(tg string) gateway.Action {
		return gateway.Action{Forward: &gateway.Forward{Backends: []gateway.WeightedBackend{{TargetGroup: tg, Weight: 1}}}}
	}
	alb := &gateway.ApplicationLoadBalancer{Name: "alb-protocols", Listeners: []gateway.HTTPListener{{Port: 80, Protocol: gateway.ProtocolHTTP, Rules: []gateway.Rule{
		{Priority: 1, Source: "a", Conditions: gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: "/plain"}}, Action: fw("plain")},
		{Priority: 2, Source: "b", Conditions: gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: "/grpc"}}, Action: fw("grpc")},
		{Priority: 3, Source: "c", Conditions: gateway.Conditions{Path: &gateway.PathMatch{Type: gateway.MatchPrefix, Value: "/secure"}}, Action: fw("secure")},
	}}}, TargetGroups: []gateway.TargetGroup{group("grpc", gateway.ProtocolH2C), group("plain", gateway.ProtocolHTTP), group("secure", gateway.ProtocolHTTPS)}}
	res, err := deploy.ApplicationLoadBalancer(ctx, d, alb, tags, "t1")
	if err != nil {
		t.Fatal(err)
	}
	tgs, err := d.ListTargetGroups(ctx, tags)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range tgs {
		got[tg.Name] = tg.Protocol + "/" + tg.ProtocolVersion
	}
	want := map[string]string{"plain": "HTTP/" + providers.ProtocolVersionHTTP1, "grpc": "HTTP/" + providers.ProtocolVersionGRPC, "secure": "HTTPS/" + providers.ProtocolVersionHTTP1}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("target group %s (%s): %q, want %q", name, res.TargetGroups[name], got[name], w)
		}
	}
	alb.TargetGroups = append(alb.TargetGroups, group("odd", "SCTP"))
	if _, err := deploy.ApplicationLoadBalancer(ctx, d, alb, tags, "t2"); err == nil || !strings.Contains(err.Error(), `"SCTP" cannot serve an application load balancer`) {
		t.Errorf("an SCTP group: %v; want the deploy refused, naming the protocol", err)
	}
}
