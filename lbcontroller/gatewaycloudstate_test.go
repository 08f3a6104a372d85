package lbcontroller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// TestGatewayFollowsLoadBalancerState: a Programmed Gateway whose application load balancer
// fails in the cloud (its data plane refuses the configuration, say) says so without any change
// in the cluster, and says Programmed again once the load balancer recovers: the cloud's change
// stream brings the pass. A route change while the load balancer is failed is still deployed.
func TestGatewayFollowsLoadBalancerState(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ns := h.namespace(t)
	class := h.gatewayClass(t)
	h.webService(t, ns, "10.0.1.20", "10.0.1.21")
	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
	if err := h.k8s.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	route := benchRoute(ns, "r", "/r", 0)
	if err := h.k8s.Create(ctx, route); err != nil {
		t.Fatal(err)
	}
	programmed := func(want metav1.ConditionStatus, reason, msg string) func() (bool, string) {
		return func() (bool, string) {
			var g gwv1.Gateway
			if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
			return c != nil && c.Status == want && c.Reason == reason && strings.Contains(c.Message, msg), fmt.Sprintf("%+v", c)
		}
	}
	eventually(t, "the Gateway is Programmed", programmed(metav1.ConditionTrue, string(gwv1.GatewayReasonProgrammed), ""))
	albs := h.gatewayALBs(t, ns, "gw")
	if len(albs) != 1 {
		t.Fatalf("application load balancers %+v", albs)
	}
	report := func(state, reason string) {
		t.Helper()
		if _, err := h.cloud.Admin.ReportLoadBalancerState(ctx, &api.ReportLoadBalancerStateRequest{Reports: []api.LoadBalancerStateReport{
			{LoadBalancerID: albs[0].ID, State: state, Reason: reason}}}); err != nil {
			t.Fatal(err)
		}
	}
	const why = "the L7 engine refused the configuration"
	report(api.LoadBalancerStateFailed, why)
	eventually(t, "the Gateway is no longer Programmed, and says the load balancer failed and why",
		programmed(metav1.ConditionFalse, string(gwv1.GatewayReasonPending), why))

	// A route change while failed reaches the cloud all the same.
	update(t, h, client.ObjectKeyFromObject(route), func(r *gwv1.HTTPRoute) {
		r.Spec.Rules[0].Matches[0].Path.Value = ptr("/moved")
	})
	eventually(t, "the route's change is in the cloud while the load balancer is failed", func() (bool, string) {
		paths := h.rulePaths(t, albs[0].ID)
		for _, p := range paths {
			if p == "/moved" {
				return true, ""
			}
		}
		return false, fmt.Sprint(paths)
	})

	report(api.LoadBalancerStateActive, "")
	eventually(t, "the Gateway is Programmed again once the load balancer recovers",
		programmed(metav1.ConditionTrue, string(gwv1.GatewayReasonProgrammed), ""))
}

// rulePaths lists the path values of every rule of the application load balancer id, as the
// cloud holds them.
func (h *harness) rulePaths(t testing.TB, id string) []string {
	t.Helper()
	ctx := context.Background()
	albs, err := h.p.ListApplicationLoadBalancers(ctx, map[string]string{model.TagCluster: h.cluster})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, lb := range albs {
		if lb.ID != id {
			continue
		}
		for _, l := range lb.Listeners {
			rules, err := h.p.ListRules(ctx, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				if r.Conditions.Path != nil {
					out = append(out, r.Conditions.Path.Value)
				}
			}
		}
	}
	return out
}
