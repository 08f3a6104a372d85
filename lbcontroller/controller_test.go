package lbcontroller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// TestController runs every scenario against one API server, one fakecloud and one controller,
// each in a namespace of its own.
func TestController(t *testing.T) {
	h := start(t)
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, h) })
	t.Run("OtherClassIgnored", func(t *testing.T) { testOtherClassIgnored(t, h) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, h) })
	t.Run("Throttled", func(t *testing.T) { testThrottled(t, h) })
	t.Run("ReadinessGate", func(t *testing.T) { testReadinessGate(t, h) })
	t.Run("GarbageCollection", func(t *testing.T) { testGarbageCollection(t, h) })
	t.Run("LoadBalancerFailed", func(t *testing.T) { testLoadBalancerFailed(t, h) })
	t.Run("StaticAddress", func(t *testing.T) { testStaticAddress(t, h) })
	t.Run("Tags", func(t *testing.T) { testTags(t, h) })
}

// testTags: lb.flatnet.io/tags tags the Service's load balancer and target group; a change
// retags them (the load balancer kept), a tag someone else added stays, and dropping the
// annotation removes only the tags it gave.
func testTags(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "tagged", func(s *corev1.Service) {
		s.Annotations = map[string]string{model.AnnotationTags: "team=a, env=prod"}
	})); err != nil {
		t.Fatal(err)
	}
	tagged := func(what string, want map[string]string, gone ...string) string {
		t.Helper()
		var lbID string
		eventually(t, what, func() (bool, string) {
			lbs, tgs := h.owned(t, ns, "tagged")
			if len(lbs) != 1 || len(tgs) != 1 {
				return false, fmt.Sprintf("%d load balancers, %d target groups", len(lbs), len(tgs))
			}
			lbID = lbs[0].ID
			for _, tags := range []map[string]string{lbs[0].Tags, tgs[0].Tags} {
				for k, v := range want {
					if tags[k] != v {
						return false, fmt.Sprintf("tag %s=%q, want %q (tags %v)", k, tags[k], v, tags)
					}
				}
				for _, k := range gone {
					if _, ok := tags[k]; ok {
						return false, fmt.Sprintf("tag %s still there (tags %v)", k, tags)
					}
				}
				if tags[model.TagService] != ns+"/tagged" {
					return false, fmt.Sprintf("ownership tag %s=%q", model.TagService, tags[model.TagService])
				}
			}
			return true, ""
		})
		return lbID
	}
	lbID := tagged("the annotation's tags are on the load balancer and its group", map[string]string{"team": "a", "env": "prod"})
	if err := h.p.TagResources(ctx, []string{lbID}, map[string]string{"cost-center": "42"}); err != nil {
		t.Fatal(err)
	}
	update(t, h, client.ObjectKey{Namespace: ns, Name: "tagged"}, func(s *corev1.Service) {
		s.Annotations[model.AnnotationTags] = "team=b"
	})
	if id := tagged("a changed tag changes, a dropped one goes", map[string]string{"team": "b"}, "env"); id != lbID {
		t.Errorf("the load balancer was replaced (%s, was %s): a tag change must only retag", id, lbID)
	}
	update(t, h, client.ObjectKey{Namespace: ns, Name: "tagged"}, func(s *corev1.Service) {
		delete(s.Annotations, model.AnnotationTags)
	})
	tagged("without the annotation its tags are gone", nil, "team", model.TagManaged)
	if lbs, _ := h.owned(t, ns, "tagged"); len(lbs) != 1 || lbs[0].Tags["cost-center"] != "42" {
		t.Errorf("load balancers %+v: want one, still with the tag someone else put there (cost-center=42)", lbs)
	}
}

// testStaticAddress: a Service pinning its address (lb.flatnet.io/address or
// spec.loadBalancerIP) gets its load balancer there; an address the cloud refuses, or an
// invalid one, leaves the load balancer serving where it is with the condition False and a
// Warning saying why; a new address moves the Service to a new load balancer, the old one
// deleted once the new one exists; dropping the address keeps the load balancer.
func testStaticAddress(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "pinned", func(s *corev1.Service) {
		s.Annotations = map[string]string{model.AnnotationAddress: "198.51.100.240"}
	})); err != nil {
		t.Fatal(err)
	}
	serving := func(name, addr string) providers.LoadBalancer {
		t.Helper()
		eventually(t, name+" serves at "+addr, func() (bool, string) {
			svc := h.service(t, ns, name)
			c, ing := condition(svc), svc.Status.LoadBalancer.Ingress
			lbs, _ := h.owned(t, ns, name)
			ok := c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == svc.Generation &&
				len(ing) == 1 && ing[0].IP == addr && len(lbs) == 1 && lbs[0].VIP.String() == addr
			return ok, fmt.Sprintf("condition %+v, ingress %+v, cloud %+v", c, ing, lbs)
		})
		lbs, _ := h.owned(t, ns, name)
		return lbs[0]
	}
	refused := func(name, reason, msg string, still providers.LoadBalancer) {
		t.Helper()
		eventually(t, name+" says "+reason, func() (bool, string) {
			svc := h.service(t, ns, name)
			c, ing := condition(svc), svc.Status.LoadBalancer.Ingress
			evs := h.warnings(t, ns, name, reason)
			ok := c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason && c.ObservedGeneration == svc.Generation &&
				strings.Contains(c.Message, msg) && contains(evs, msg) && len(ing) == 1 && ing[0].IP == still.VIP.String()
			return ok, fmt.Sprintf("condition %+v, ingress %+v, events %q", c, ing, evs)
		})
		if lbs, _ := h.owned(t, ns, name); len(lbs) != 1 || lbs[0].ID != still.ID {
			t.Errorf("%s's load balancers %+v; want %s serving on", name, lbs, still.ID)
		}
	}
	sl := endpointSlice(ns, "pinned", readyEP("10.0.1.10"))
	setAddress := func(name, ann, field string) {
		t.Helper()
		update(t, h, client.ObjectKey{Namespace: ns, Name: name}, func(svc *corev1.Service) {
			delete(svc.Annotations, model.AnnotationAddress)
			if ann != "" {
				if svc.Annotations == nil {
					svc.Annotations = map[string]string{}
				}
				svc.Annotations[model.AnnotationAddress] = ann
			}
			svc.Spec.LoadBalancerIP = field
		})
	}
	if err := h.k8s.Create(ctx, sl); err != nil {
		t.Fatal(err)
	}
	first := serving("pinned", "198.51.100.240")

	// Outside the cloud's public pool: refused by the cloud, the old one serves on.
	setAddress("pinned", "203.0.113.250", "")
	refused("pinned", lbcontroller.ReasonAddressNotUsable, "not an address of the public pool", first)
	// A rollout meanwhile: the load balancer serving on follows it.
	setEndpoints(sl, readyEP("10.0.1.11"))
	if err := h.k8s.Update(ctx, sl); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refused Service's load balancer follows the rollout", func() (bool, string) {
		got := h.targets(t, ns, "pinned")
		want := []string{"10.0.1.10:8080 draining", "10.0.1.11:8080 initial"}
		return slices.Equal(got, want), fmt.Sprintf("targets %v, want %v", got, want)
	})
	if lbs, _ := h.owned(t, ns, "pinned"); len(lbs) != 1 || lbs[0].ID != first.ID {
		t.Errorf("after the rollout: %+v; want %s serving on", lbs, first.ID)
	}
	// IPv6: refused before the cloud is asked.
	setAddress("pinned", "", "2001:db8::7")
	refused("pinned", lbcontroller.ReasonInvalid, "IPv4 addresses only", first)

	// A new address through the deprecated field: a new load balancer, the old one gone, the
	// target groups taken over.
	setAddress("pinned", "", "198.51.100.241")
	moved := serving("pinned", "198.51.100.241")
	if moved.ID == first.ID {
		t.Fatalf("the load balancer %s kept its address %s", first.ID, first.VIP)
	}
	eventually(t, "the target is registered behind the new address", func() (bool, string) {
		got := h.targets(t, ns, "pinned")
		return slices.Contains(got, "10.0.1.11:8080 initial") || slices.Contains(got, "10.0.1.11:8080 healthy"), fmt.Sprint(got)
	})

	// Another Service asking for the same address: the cloud names the holder.
	if err := h.k8s.Create(ctx, lbService(ns, "squatter", func(s *corev1.Service) {
		s.Annotations = map[string]string{model.AnnotationAddress: "198.51.100.241"}
	})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second Service is refused the address", func() (bool, string) {
		c := condition(h.service(t, ns, "squatter"))
		evs := h.warnings(t, ns, "squatter", lbcontroller.ReasonAddressNotUsable)
		lbs, _ := h.owned(t, ns, "squatter")
		ok := c != nil && c.Status == metav1.ConditionFalse && c.Reason == lbcontroller.ReasonAddressNotUsable &&
			strings.Contains(c.Message, moved.ID) && len(evs) > 0 && len(lbs) == 0
		return ok, fmt.Sprintf("condition %+v, events %q, cloud %+v", c, evs, lbs)
	})

	// Dropping the address keeps the load balancer where it is.
	setAddress("pinned", "", "")
	if got := serving("pinned", "198.51.100.241"); got.ID != moved.ID {
		t.Errorf("dropping the address replaced load balancer %s with %s", moved.ID, got.ID)
	}
}

// testLifecycle: a VIP in status, targets = ready endpoints, scaling up and down, terminating
// endpoints draining, and deletion removing everything before the finalizer goes.
func testLifecycle(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "web")); err != nil {
		t.Fatal(err)
	}
	sl := endpointSlice(ns, "web", readyEP("10.0.1.10"), readyEP("10.0.1.11"), readyEP("10.0.1.12"),
		endpoint{ip: "10.0.1.13"}) // not ready: not a target
	if err := h.k8s.Create(ctx, sl); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Service gets a VIP and a True condition", func() (bool, string) {
		svc := h.service(t, ns, "web")
		c := condition(svc)
		ing := svc.Status.LoadBalancer.Ingress
		ok := c != nil && c.Status == metav1.ConditionTrue && len(ing) == 1 && ing[0].IP != "" &&
			ing[0].IPMode != nil && *ing[0].IPMode == corev1.LoadBalancerIPModeVIP
		return ok, fmt.Sprintf("condition %+v, ingress %+v", c, ing)
	})
	svc := h.service(t, ns, "web")
	lbs, tgs := h.owned(t, ns, "web")
	if len(lbs) != 1 || len(tgs) != 1 || lbs[0].VIP.String() != svc.Status.LoadBalancer.Ingress[0].IP || !strings.HasPrefix(lbs[0].VIP.String(), "198.51.100.") {
		t.Fatalf("cloud: %+v %+v, status %+v", lbs, tgs, svc.Status.LoadBalancer)
	}
	if !slices.Contains(svc.Finalizers, lbcontroller.Finalizer) {
		t.Errorf("finalizers %v", svc.Finalizers)
	}
	wantTargets := func(what string, want ...string) {
		t.Helper()
		eventually(t, what, func() (bool, string) {
			got := h.targets(t, ns, "web")
			return cmp.Equal(want, got), cmp.Diff(want, got)
		})
	}
	wantTargets("the ready endpoints are the targets", "10.0.1.10:8080 initial", "10.0.1.11:8080 initial", "10.0.1.12:8080 initial")

	setEndpoints(sl, readyEP("10.0.1.10"), readyEP("10.0.1.11"), readyEP("10.0.1.12"), readyEP("10.0.1.13"), readyEP("10.0.1.14"))
	if err := h.k8s.Update(ctx, sl); err != nil {
		t.Fatal(err)
	}
	wantTargets("scaled up", "10.0.1.10:8080 initial", "10.0.1.11:8080 initial", "10.0.1.12:8080 initial", "10.0.1.13:8080 initial", "10.0.1.14:8080 initial")

	// 10.0.1.11 terminates while still serving; 10.0.1.13 and .14 go away: all three drain.
	setEndpoints(sl, readyEP("10.0.1.10"), endpoint{ip: "10.0.1.11", serving: true, term: true}, readyEP("10.0.1.12"))
	if err := h.k8s.Update(ctx, sl); err != nil {
		t.Fatal(err)
	}
	wantTargets("scaled down with one terminating", "10.0.1.10:8080 initial", "10.0.1.11:8080 draining", "10.0.1.12:8080 initial",
		"10.0.1.13:8080 draining", "10.0.1.14:8080 draining")

	// The slice changes were measured, and the cloud calls counted.
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetHistogram().GetSampleCount() > 0 || m.GetCounter().GetValue() > 0 {
				seen[mf.GetName()] = true
			}
		}
	}
	for _, name := range []string{"flatnet_lb_endpoints_programmed_seconds", "flatnet_lb_cloud_calls_total", "flatnet_lb_reconciles_total"} {
		if !seen[name] {
			t.Errorf("metric %s has no observation", name)
		}
	}

	if err := h.k8s.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Service is gone with its cloud resources", func() (bool, string) {
		err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.Service{})
		lbs, tgs := h.owned(t, ns, "web")
		return apierrors.IsNotFound(err) && len(lbs)+len(tgs) == 0, fmt.Sprintf("get: %v, cloud %v %v", err, lbs, tgs)
	})
}

// testOtherClassIgnored: a Service of another class gets no finalizer, status, event or cloud
// resource. A Service of ours created after it is the sync point.
func testOtherClassIgnored(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	other := lbService(ns, "other", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("example.com/other") })
	plain := lbService(ns, "plain", func(s *corev1.Service) { s.Spec.LoadBalancerClass = nil }) // no --default-class
	for _, s := range []*corev1.Service{other, plain, lbService(ns, "ours")} {
		if err := h.k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "our Service is provisioned", func() (bool, string) {
		c := condition(h.service(t, ns, "ours"))
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", c)
	})
	for _, name := range []string{"other", "plain"} {
		svc := h.service(t, ns, name)
		lbs, tgs := h.owned(t, ns, name)
		var evs corev1.EventList
		if err := h.k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == name && fromUs(e) {
				t.Errorf("%s: event %s %s", name, e.Reason, e.Message)
			}
		}
		if len(svc.Finalizers) > 0 || len(svc.Status.Conditions) > 0 || len(svc.Status.LoadBalancer.Ingress) > 0 || len(lbs)+len(tgs) > 0 {
			t.Errorf("%s was touched: finalizers %v, status %+v, cloud %v %v", name, svc.Finalizers, svc.Status, lbs, tgs)
		}
	}
}

// testBadInput: each bad Service gets a Warning event and a False condition that say what is
// wrong, and nothing in the cloud.
func testBadInput(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   string
	}{
		{"bad-annotation", func(s *corev1.Service) { s.Annotations = map[string]string{model.AnnotationScheme: "public"} },
			`annotation lb.flatnet.io/scheme is "public": use internal or internet-facing`},
		{"sctp", func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "sig", Protocol: corev1.ProtocolSCTP, Port: 9, TargetPort: intstr.FromInt32(9)})
		}, "uses protocol SCTP: only TCP and UDP are supported"},
		{"port-out-of-range", func(s *corev1.Service) { s.Annotations = map[string]string{model.AnnotationHCPort: "70000"} },
			`annotation lb.flatnet.io/healthcheck-port is "70000": use traffic-port or a port from 1 to 65535`},
		{"source-range", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8", "2001:db8::/32"} },
			`"2001:db8::/32" is not an IPv4 CIDR`},
		{"too-many-ports", func(s *corev1.Service) {
			s.Spec.Ports = nil
			for i := range model.MaxListeners + 1 {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Protocol: corev1.ProtocolTCP, Port: int32(1000 + i), TargetPort: intstr.FromInt32(8080)})
			}
		}, "the Service has 51 ports, a load balancer serves at most 50"},
		{"target-type", func(s *corev1.Service) { s.Annotations = map[string]string{model.AnnotationTargetType: "instance"} },
			`annotation lb.flatnet.io/target-type is "instance": only ip is supported`},
	}
	for _, tc := range cases {
		if err := h.k8s.Create(ctx, lbService(ns, tc.name, tc.mutate)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := h.k8s.Create(ctx, endpointSlice(ns, tc.name, readyEP("10.0.2.10"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eventually(t, "a False condition and a Warning event", func() (bool, string) {
				c := condition(h.service(t, ns, tc.name))
				evs := h.warnings(t, ns, tc.name, lbcontroller.ReasonInvalid)
				ok := c != nil && c.Status == metav1.ConditionFalse && c.Reason == lbcontroller.ReasonInvalid &&
					strings.Contains(c.Message, tc.want) && strings.Contains(c.Message, "nothing was created") && contains(evs, tc.want)
				return ok, fmt.Sprintf("condition %+v, events %q", c, evs)
			})
			svc := h.service(t, ns, tc.name)
			lbs, tgs := h.owned(t, ns, tc.name)
			if len(lbs)+len(tgs) > 0 || len(svc.Finalizers) > 0 || len(svc.Status.LoadBalancer.Ingress) > 0 {
				t.Errorf("bad input left something: cloud %v %v, finalizers %v, ingress %v", lbs, tgs, svc.Finalizers, svc.Status.LoadBalancer.Ingress)
			}
		})
	}
}

// testThrottled: the cloud throttling every call shows as a condition and an event; once it
// stops, the controller recovers by itself.
func testThrottled(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if _, err := h.cloud.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: "*", ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = h.cloud.Admin.ClearFaults(context.Background(), &api.ClearFaultsRequest{}) })
	if err := h.k8s.Create(ctx, lbService(ns, "busy")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a CloudThrottled condition and event", func() (bool, string) {
		c := condition(h.service(t, ns, "busy"))
		evs := h.warnings(t, ns, "busy", lbcontroller.ReasonThrottled)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == lbcontroller.ReasonThrottled && len(evs) > 0,
			fmt.Sprintf("condition %+v, events %q", c, evs)
	})
	if _, err := h.cloud.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery once throttling stops", func() (bool, string) {
		svc := h.service(t, ns, "busy")
		c := condition(svc)
		return c != nil && c.Status == metav1.ConditionTrue && len(svc.Status.LoadBalancer.Ingress) == 1, fmt.Sprintf("%+v", c)
	})
}

// testReadinessGate: a gated pod stays not-ready-for-the-LB until the cloud reports it healthy;
// a gated pod no load balancer of ours targets gets the condition True at once.
func testReadinessGate(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	newPod := func(name, app, ip string) *corev1.Pod { return h.gatedPod(t, ns, name, app, ip) }
	gateOf := func(name string) *corev1.PodCondition { return h.gate(t, ns, name) }

	newPod("lonely", "nobody-selects-me", "10.0.3.9")
	eventually(t, "an untargeted gated pod gets True", func() (bool, string) {
		c := gateOf("lonely")
		return c != nil && c.Status == corev1.ConditionTrue, fmt.Sprintf("%+v", c)
	})

	newPod("gated", "gated", "10.0.3.10")
	if err := h.k8s.Create(ctx, lbService(ns, "gated")); err != nil {
		t.Fatal(err)
	}
	// The endpoint is not ready (the pod waits for its gate), yet it is registered.
	if err := h.k8s.Create(ctx, endpointSlice(ns, "gated", endpoint{ip: "10.0.3.10", pod: "gated"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gated pod is registered while its gate is False", func() (bool, string) {
		got := h.targets(t, ns, "gated")
		c := gateOf("gated")
		return slices.Equal(got, []string{"10.0.3.10:8080 initial"}) && c != nil && c.Status == corev1.ConditionFalse,
			fmt.Sprintf("targets %v, gate %+v", got, c)
	})
	// Still False after the controller has certainly seen the registration (the condition's
	// reason says the target is initial, not that it is unknown).
	eventually(t, "the gate says the target is initial", func() (bool, string) {
		c := gateOf("gated")
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == "TargetInitial", fmt.Sprintf("%+v", c)
	})

	_, tgs := h.owned(t, ns, "gated")
	if _, err := h.cloud.Admin.ReportTargetHealth(ctx, &api.ReportTargetHealthRequest{Reports: []api.TargetHealthReport{
		{TargetGroupID: tgs[0].ID, IP: "10.0.3.10", Port: 8080, State: api.TargetHealthHealthy},
	}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the gate flips True once the cloud reports the target healthy", func() (bool, string) {
		c := gateOf("gated")
		return c != nil && c.Status == corev1.ConditionTrue, fmt.Sprintf("%+v", c)
	})
}

// testGarbageCollection: load balancers left by a controller killed between creating them and
// writing the status (and without a finalizer to wait for it), whose Service is then deleted,
// are removed by garbage collection; so are those of an earlier incarnation of a Service.
func testGarbageCollection(t *testing.T, h *harness) {
	// orphanDeploy makes lb's resources as the controller would have. They are orphans from
	// the start: the collector (every second) may delete some while they are being made, and
	// the rest fails as not found, which is what the test waits for anyway.
	orphanDeploy := func(lb *model.LoadBalancer, token string) {
		t.Helper()
		if _, err := deploy.Deploy(context.Background(), h.p, lb, token); err != nil && !errors.Is(err, providers.ErrNotFound) {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	ns := h.namespace(t)
	// Another class, so the running controller leaves it alone; the cloud resources are made
	// as the controller would have made them before it died.
	svc := lbService(ns, "crashed", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("example.com/other") })
	if err := h.k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	lb, err := model.Build(model.Input{Cluster: h.cluster, Service: svc})
	if err != nil {
		t.Fatal(err)
	}
	orphanDeploy(lb, "crash")
	if err := h.k8s.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	// An earlier incarnation: resources tagged with a UID no live Service has.
	ghost := lbService(ns, "reborn")
	ghost.UID = "00000000-0000-4000-8000-00000000dead"
	lb, err = model.Build(model.Input{Cluster: h.cluster, Service: ghost})
	if err != nil {
		t.Fatal(err)
	}
	orphanDeploy(lb, "ghost")
	// A Gateway's application load balancer carries the cluster tag but no Service's: not the
	// Service collector's to take. (A live Gateway's: the Gateway collector deletes those of
	// Gateways that do not exist.)
	if err := h.k8s.Create(ctx, &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(h.gatewayClass(t)),
			Listeners:        []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	h.webService(t, ns, "10.0.1.30")
	if err := h.k8s.Create(ctx, benchRoute(ns, "web", "/", 0)); err != nil {
		t.Fatal(err)
	}
	gwTags := map[string]string{model.TagCluster: h.cluster, lbcontroller.TagGateway: ns + "/gw"}
	gwGroups := func() []providers.TargetGroup {
		tgs, err := h.p.ListTargetGroups(ctx, gwTags)
		if err != nil {
			t.Fatal(err)
		}
		return tgs
	}
	eventually(t, "the Gateway's load balancer and target group exist", func() (bool, string) {
		albs, tgs := h.gatewayALBs(t, ns, "gw"), gwGroups()
		return len(albs) == 1 && len(tgs) == 1, fmt.Sprint(albs, tgs)
	})
	gw, gwGroup := h.gatewayALBs(t, ns, "gw")[0], gwGroups()[0]
	eventually(t, "garbage collection removes both", func() (bool, string) {
		l1, t1 := h.owned(t, ns, "crashed")
		l2, t2 := h.owned(t, ns, "reborn")
		return len(l1)+len(t1)+len(l2)+len(t2) == 0, fmt.Sprintf("%v %v %v %v", l1, t1, l2, t2)
	})
	time.Sleep(1500 * time.Millisecond) // another collection (every second)
	if albs := h.gatewayALBs(t, ns, "gw"); len(albs) != 1 || albs[0].ID != gw.ID {
		t.Errorf("the Gateway's load balancer after garbage collection: %+v; want %s", albs, gw.ID)
	}
	if tgs := gwGroups(); len(tgs) != 1 || tgs[0].ID != gwGroup.ID {
		t.Errorf("the Gateway's target group after garbage collection: %+v; want %s", tgs, gwGroup.ID)
	}
}

// testLoadBalancerFailed: when the cloud reports a Service's load balancer failed (its data
// plane could not program it), the Service's condition turns False with the reason and a
// Warning event says why; when the cloud reports it active again the condition turns True and a
// Normal event says it recovered. The change stream brings the Service back both times.
func testLoadBalancerFailed(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	if err := h.k8s.Create(ctx, lbService(ns, "frail")); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, endpointSlice(ns, "frail", readyEP("10.0.4.10"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Service is provisioned", func() (bool, string) {
		c := condition(h.service(t, ns, "frail"))
		return c != nil && c.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", c)
	})
	lbs, _ := h.owned(t, ns, "frail")
	if len(lbs) != 1 {
		t.Fatalf("load balancers %+v", lbs)
	}
	id := lbs[0].ID
	const why = "DataPlane.ProgramLoadBalancer " + "lb-x: netlink receive: operation not permitted"
	report := func(state, reason string) {
		t.Helper()
		if _, err := h.cloud.Admin.ReportLoadBalancerState(ctx, &api.ReportLoadBalancerStateRequest{Reports: []api.LoadBalancerStateReport{
			{LoadBalancerID: id, State: state, Reason: reason}}}); err != nil {
			t.Fatal(err)
		}
	}
	report(api.LoadBalancerStateFailed, why)
	eventually(t, "the condition says the load balancer failed, with the cloud's reason", func() (bool, string) {
		c := condition(h.service(t, ns, "frail"))
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == lbcontroller.ReasonLBFailed && strings.Contains(c.Message, why),
			fmt.Sprintf("%+v", c)
	})
	eventually(t, "a Warning event says why", func() (bool, string) {
		w := h.warnings(t, ns, "frail", lbcontroller.ReasonLBFailed)
		return contains(w, why), fmt.Sprint(w)
	})
	report(api.LoadBalancerStateActive, "")
	eventually(t, "the condition turns True again", func() (bool, string) {
		c := condition(h.service(t, ns, "frail"))
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == lbcontroller.ReasonProvisioned, fmt.Sprintf("%+v", c)
	})
	eventually(t, "a Normal event says it recovered", func() (bool, string) {
		var evs corev1.EventList
		if err := h.k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "frail" && fromUs(e) && e.Type == corev1.EventTypeNormal && e.Reason == lbcontroller.ReasonLBRecovered {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs.Items))
	})
}
