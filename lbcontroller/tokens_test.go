package lbcontroller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller"
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
	h.httpGateway(t, ns, class)
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
		// A pass saw the route gone (the rule may be gone already, deleted out of band): else
		// the route created again next could reach the controller in the same pass as the
		// delete, whose model would be the one deployed before, with nothing to write.
		eventually(t, "the Gateway counts no attached route", func() (bool, string) {
			var g gwv1.Gateway
			if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
				return false, err.Error()
			}
			for _, l := range g.Status.Listeners {
				if l.Name == "http" {
					return l.AttachedRoutes == 0, fmt.Sprintf("listener http: %d attached routes", l.AttachedRoutes)
				}
			}
			return false, fmt.Sprintf("no status of listener http: %+v", g.Status.Listeners)
		})
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
		update(t, h, client.ObjectKey{Namespace: ns, Name: "web"}, func(svc *corev1.Service) {
			if svc.Annotations == nil {
				svc.Annotations = map[string]string{}
			}
			svc.Annotations["test/round"] = fmt.Sprint(round)
		})
		if got := h.service(t, ns, "web").Generation; got != gen {
			t.Fatalf("the annotation changed the generation %d -> %d; the test needs it unchanged", gen, got)
		}
		eventually(t, fmt.Sprintf("round %d: the listener created again", round), oneListener)
	}
}

// TestGatewayUnchangedModelMakesNoCloudCalls: a pass whose model is the one deployed (woken by
// a change that does not touch it, a namespace's label) makes no cloud call at all; a route's
// change writes its rule.
func TestGatewayUnchangedModelMakesNoCloudCalls(t *testing.T) {
	// No garbage collection but the first: its reads would count.
	h := startCloud(t, nil, servertest.Options{}, func(c *lbcontroller.Config) { c.GCInterval = time.Hour })
	ctx := context.Background()
	ns := h.namespace(t)
	class := h.gatewayClass(t)
	h.webService(t, ns, "10.0.1.20")
	h.httpGateway(t, ns, class)
	if err := h.k8s.Create(ctx, benchRoute(ns, "r1", "/r1", 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Gateway Programmed and the route accepted", func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
			t.Fatal(err)
		}
		var r gwv1.HTTPRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r1"}, &r); err != nil {
			t.Fatal(err)
		}
		c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		accepted := len(r.Status.Parents) == 1 && meta.IsStatusConditionTrue(r.Status.Parents[0].Conditions, string(gwv1.RouteConditionAccepted))
		return c != nil && c.Status == metav1.ConditionTrue && accepted, fmt.Sprintf("Gateway %+v, route %+v", g.Status.Conditions, r.Status.Parents)
	})

	wake := func(label string) {
		t.Helper()
		var n corev1.Namespace
		if err := h.k8s.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
			t.Fatal(err)
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["test/wake"] = label
		passes := gatewayPasses(t)
		if err := h.k8s.Update(ctx, &n); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a pass for the namespace's label", func() (bool, string) {
			return gatewayPasses(t) > passes, "no pass yet"
		})
	}
	wake("settle") // a pass after everything above, so nothing of theirs is in flight
	calls, writes := cloudCalls(t, false), cloudCalls(t, true)
	for i := range 3 {
		wake(fmt.Sprint(i))
	}
	if got := cloudCalls(t, false); got != calls {
		t.Errorf("passes with an unchanged model called the cloud: %v calls, then %v", calls, got)
	}

	update(t, h, client.ObjectKey{Namespace: ns, Name: "r1"}, func(r *gwv1.HTTPRoute) {
		r.Spec.Rules[0].Matches[0].Path.Value = ptr("/r1-changed")
	})
	eventually(t, "the route's change written to the cloud", func() (bool, string) {
		got := cloudCalls(t, true)
		return got > writes, fmt.Sprintf("%v writes, as before the change", got)
	})
}

// cloudCalls sums the controller's cloud calls (writes: those that change something).
func cloudCalls(t *testing.T, writes bool) float64 {
	t.Helper()
	return metricSum(t, "flatnet_lb_cloud_calls_total", func(labels map[string]string) bool {
		if !writes {
			return true
		}
		a := labels["action"]
		for _, verb := range []string{"Create", "Modify", "Delete", "Register", "Deregister", "Set", "Add", "Remove", "Import"} {
			if strings.HasPrefix(a, verb) {
				return true
			}
		}
		return false
	})
}

// gatewayPasses counts the Gateway controller's passes.
func gatewayPasses(t *testing.T) float64 {
	t.Helper()
	return metricSum(t, "flatnet_lb_reconciles_total", func(labels map[string]string) bool { return labels["controller"] == "gateway" })
}

func metricSum(t *testing.T, name string, match func(labels map[string]string) bool) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if match(labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
