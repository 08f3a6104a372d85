package lbcontroller_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// TestRepairsDrift: what someone changes in the cloud behind the controller's back (a listener
// deleted, a target deregistered, a rule deleted) is put back within the resync period, with
// nothing changed in the cluster to bring a pass. (With the period at an hour, none of it comes
// back within the 30 s eventually waits: nothing but the resync brings these passes.)
func TestRepairsDrift(t *testing.T) {
	h := startCloud(t, nil, servertest.Options{}, func(c *lbcontroller.Config) { c.Resync = 2 * time.Second })
	t.Run("Service", func(t *testing.T) { testServiceRepairsDrift(t, h) })
	t.Run("Gateway", func(t *testing.T) { testGatewayRepairsDrift(t, h) })
}

func testServiceRepairsDrift(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "drift")); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "drift", readyEP("10.0.1.30"))); err != nil {
		t.Fatal(err)
	}
	serving := func() (bool, string) {
		c := condition(h.service(t, ns, "drift"))
		lbs, _ := h.owned(t, ns, "drift")
		got := h.targets(t, ns, "drift")
		live := len(got) == 1 && (got[0] == "10.0.1.30:8080 initial" || got[0] == "10.0.1.30:8080 healthy")
		ok := c != nil && c.Status == metav1.ConditionTrue && len(lbs) == 1 && len(lbs[0].Listeners) == 1 && live
		return ok, fmt.Sprintf("condition %+v, load balancers %+v, targets %v", c, lbs, got)
	}
	eventually(t, "the Service's load balancer serves", serving)

	lbs, tgs := h.owned(t, ns, "drift")
	if err := h.p.DeleteListener(ctx, lbs[0].Listeners[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := h.p.DeregisterTargets(ctx, tgs[0].ID, []providers.Target{{IP: netip.MustParseAddr("10.0.1.30"), Port: 8080}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener and the target are back", serving)
}

func testGatewayRepairsDrift(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	class := h.gatewayClass(t)
	h.webService(t, ns, "10.0.1.31")
	h.httpGateway(t, ns, class)
	if err := h.k8s.Create(ctx, benchRoute(ns, "r1", "/r1", 0)); err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"}
	state := func() (rules []providers.Rule, targets []string, groups []providers.TargetGroup) {
		for _, a := range h.gatewayALBs(t, ns, "gw") {
			for _, l := range a.Listeners {
				rs, err := h.p.ListRules(ctx, l.ID)
				if err != nil {
					t.Fatal(err)
				}
				rules = append(rules, rs...)
			}
		}
		groups, err := h.p.ListTargetGroups(ctx, tags)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			ths, err := h.p.DescribeTargets(ctx, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, th := range ths {
				targets = append(targets, fmt.Sprintf("%s %s", netip.AddrPortFrom(th.Target.IP, uint16(th.Target.Port)), th.State))
			}
		}
		slices.Sort(targets)
		return rules, targets, groups
	}
	serving := func() (bool, string) {
		rules, targets, _ := state()
		live := len(targets) == 1 && (targets[0] == "10.0.1.31:8080 initial" || targets[0] == "10.0.1.31:8080 healthy")
		return len(rules) == 1 && live, fmt.Sprintf("%d rules, targets %v", len(rules), targets)
	}
	eventually(t, "the route's rule and target in the cloud", serving)
	programmed := func() (bool, string) {
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "gw"}, &g); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(g.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("Programmed %+v", c)
	}
	eventually(t, "the Gateway is Programmed", programmed)

	rules, _, groups := state()
	if err := h.p.DeleteRule(ctx, rules[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := h.p.DeregisterTargets(ctx, groups[0].ID, []providers.Target{{IP: netip.MustParseAddr("10.0.1.31"), Port: 8080}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rule and the target are back", serving)

	// The listener deleted, and its rule with it.
	albs := h.gatewayALBs(t, ns, "gw")
	if len(albs) != 1 || len(albs[0].Listeners) != 1 {
		t.Fatalf("the Gateway's load balancers: %+v", albs)
	}
	if err := h.p.DeleteListener(ctx, albs[0].Listeners[0].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener and its rule are back", func() (bool, string) {
		albs := h.gatewayALBs(t, ns, "gw")
		ok, why := serving()
		return ok && len(albs) == 1 && len(albs[0].Listeners) == 1, fmt.Sprintf("%s; load balancers %+v", why, albs)
	})
}
