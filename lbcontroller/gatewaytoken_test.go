package lbcontroller_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
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
	class := fmt.Sprintf("flatnet-%d", namespaces.Add(1))
	if err := h.k8s.Create(ctx, &gwv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: class},
		Spec:       gwv1.GatewayClassSpec{ControllerName: gateway.ControllerName},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "web", readyEP("10.0.1.20"))); err != nil {
		t.Fatal(err)
	}
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
