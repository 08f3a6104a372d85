package lbcontroller_test

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/providers"
)

// TestGatewayRuleCreatedAgainAfterDelete: a model deployed before (a route removed and added
// again, unchanged) gets its rule created again, also after the rule was deleted out of band.
// With the earlier pass's client tokens the cloud answered the create with the earlier rule,
// gone by then, and the listener stayed without it.
func TestGatewayRuleCreatedAgainAfterDelete(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ns := h.namespace(t)
	class := h.gatewayClass(t)
	h.webService(t, ns, "10.0.1.20")
	if err := h.k8s.Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	rules := func() []providers.Rule {
		albs, err := h.p.ListApplicationLoadBalancers(ctx, map[string]string{"flatnet.io/gateway": ns + "/gw"})
		if err != nil {
			t.Fatal(err)
		}
		var out []providers.Rule
		for _, a := range albs {
			for _, l := range a.Listeners {
				rs, err := h.p.ListRules(ctx, l.ID)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, rs...)
			}
		}
		return out
	}
	ruleCount := func(want int) func() (bool, string) {
		return func() (bool, string) {
			rs := rules()
			return len(rs) == want, fmt.Sprintf("%d rules in the cloud, want %d", len(rs), want)
		}
	}
	addRoute := func() {
		t.Helper()
		if err := h.k8s.Create(ctx, benchRoute(ns, "r1", "/r1", 0)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the route's rule in the cloud", ruleCount(1))
	}
	removeRoute := func() {
		t.Helper()
		if err := h.k8s.Delete(ctx, benchRoute(ns, "r1", "/r1", 0)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the route's rule gone", ruleCount(0))
	}

	addRoute()
	removeRoute()
	addRoute() // the same model as the first time

	// Deleted out of band, then the route removed and added again.
	for _, r := range rules() {
		if err := h.p.DeleteRule(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	removeRoute()
	addRoute()
}

// TestServiceListenerCreatedAgainAfterDelete: a Service's listener deleted out of band is
// created again on the Service's next pass, although the Service (UID and generation) is
// unchanged. With the tokens of the pass that created it, the cloud answered the create with
// the listener that is gone, and the load balancer stayed without it.
func TestServiceListenerCreatedAgainAfterDelete(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "web")); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "web", readyEP("10.0.1.10"))); err != nil {
		t.Fatal(err)
	}
	listeners := func() []providers.Listener {
		lbs, _ := h.owned(t, ns, "web")
		var out []providers.Listener
		for _, lb := range lbs {
			out = append(out, lb.Listeners...)
		}
		return out
	}
	oneListener := func() (bool, string) {
		ls := listeners()
		return len(ls) == 1, fmt.Sprintf("listeners in the cloud: %+v, want 1", ls)
	}
	eventually(t, "the Service's listener in the cloud", oneListener)
	for round := range 2 {
		gen := h.service(t, ns, "web").Generation
		for _, l := range listeners() {
			if err := h.p.DeleteListener(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
		}
		// A change that brings the Service back without changing its generation.
		svc := h.service(t, ns, "web")
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations["test/round"] = fmt.Sprint(round)
		if err := h.k8s.Update(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if got := h.service(t, ns, "web").Generation; got != gen {
			t.Fatalf("the annotation changed the generation %d -> %d; the test needs it unchanged", gen, got)
		}
		eventually(t, fmt.Sprintf("round %d: the listener created again", round), oneListener)
	}
}
