package lbcontroller_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// BenchmarkGatewayRouteChange measures, through the real API server and fakecloud's API (no
// data plane), one HTTPRoute's change among n routes on one Gateway: from the Update's return
// until the route's status shows the new generation accepted, which the controller writes after
// the cloud has the change. It is the controller's and the cloud API's part of the lab's
// BenchmarkHTTPRouteChange, small enough to profile (-cpuprofile). It reports p50 and p99 in ms.
func BenchmarkGatewayRouteChange(b *testing.B) {
	// 1,000 routes are 1,000 rules on one load balancer: over ELB's default quota of 100.
	h := startCloud(b, nil, servertest.Options{RulesPerLoadBalancer: 2000})
	for _, n := range []int{1, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchRouteChange(b, h, n) })
	}
}

func benchRouteChange(b *testing.B, h *harness, n int) {
	ctx := context.Background()
	ns := h.namespace(b)
	class := h.gatewayClass(b)
	h.webService(b, ns, "10.0.1.20", "10.0.1.21")
	h.httpGateway(b, ns, class)
	for i := range n {
		if err := h.k8s.Create(ctx, benchRoute(ns, fmt.Sprintf("r%04d", i), fmt.Sprintf("/r%04d", i), 0)); err != nil {
			b.Fatal(err)
		}
	}
	// accepted waits until the route's status has its current generation accepted.
	accepted := func(name string, gen int64, poll time.Duration) {
		for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(poll) {
			var r gwv1.HTTPRoute
			if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
				b.Fatal(err)
			}
			if gen == 0 {
				gen = r.Generation
			}
			for _, p := range r.Status.Parents {
				if c := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted)); c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= gen {
					return
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("route %s generation %d not accepted: %+v", name, gen, r.Status)
			}
		}
	}
	accepted(fmt.Sprintf("r%04d", n-1), 0, 100*time.Millisecond)
	// and the cloud holds the n rules.
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		albs, err := h.p.ListApplicationLoadBalancers(ctx, map[string]string{"flatnet.io/gateway": ns + "/gw"})
		if err != nil {
			b.Fatal(err)
		}
		rules := 0
		for _, a := range albs {
			for _, l := range a.Listeners {
				rs, err := h.p.ListRules(ctx, l.ID)
				if err != nil {
					b.Fatal(err)
				}
				rules += len(rs)
			}
		}
		if rules >= n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the cloud has %d rules of %d", rules, n)
		}
	}
	name := "r0000"
	version := 0
	var took []time.Duration
	for b.Loop() {
		for range 20 {
			version++
			var gen int64
			if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				var r gwv1.HTTPRoute
				if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
					return err
				}
				r.Spec.Rules[0].Filters[0].ResponseHeaderModifier.Set[0].Value = strconv.Itoa(version)
				if err := h.k8s.Update(ctx, &r); err != nil {
					return err
				}
				gen = r.Generation
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			accepted(name, gen, 2*time.Millisecond)
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99-1)/100].Microseconds())/1000, "p99-ms")
}

func benchRoute(ns, name, prefix string, version int) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Rules: []gwv1.HTTPRouteRule{{
				Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr(gwv1.PathMatchPathPrefix), Value: ptr(prefix)}}},
				Filters: []gwv1.HTTPRouteFilter{{
					Type:                   gwv1.HTTPRouteFilterResponseHeaderModifier,
					ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Route-Version", Value: strconv.Itoa(version)}}},
				}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "web", Port: ptr(gwv1.PortNumber(80))}}}},
			}},
		},
	}
}
