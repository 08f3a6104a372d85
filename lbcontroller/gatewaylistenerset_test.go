package lbcontroller_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// TestGatewayListenerSets runs ListenerSets through the controller against a real API server
// and fakecloud: a ListenerSet the Gateway allows adds its listener to the Gateway's load
// balancer (a rule for its hostname, forwarding to the route that names the ListenerSet), with
// the ListenerSet's status and the Gateway's attachedListenerSets; a listener that takes the
// Gateway's hostname is refused and the Gateway's own keeps serving; a Gateway that stops
// allowing ListenerSets takes the listener out of the cloud (NotAllowed).
func TestGatewayListenerSets(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	class := h.gatewayClass(t)
	ns := h.namespace(t)
	h.webService(t, ns, "10.0.1.20")

	gw := &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gw"},
		Spec: gwv1.GatewaySpec{
			GatewayClassName: gwv1.ObjectName(class),
			AllowedListeners: &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr(gwv1.NamespacesFromSame)}},
			Listeners:        []gwv1.Listener{{Name: "www", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr(gwv1.Hostname("www.example.com"))}},
		},
	}
	if err := h.k8s.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	ls := &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: "gw"},
			Listeners: []gwv1.ListenerEntry{
				{Name: "shop", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr(gwv1.Hostname("shop.example.com"))},
				{Name: "taken", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: ptr(gwv1.Hostname("www.example.com"))},
			},
		},
	}
	if err := h.k8s.Create(ctx, ls); err != nil {
		t.Fatal(err)
	}
	if err := h.k8s.Create(ctx, &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{
				Group: ptr(gwv1.Group(gwv1.GroupName)), Kind: ptr(gwv1.Kind("ListenerSet")), Name: "shop"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
				Name: "web", Port: ptr(gwv1.PortNumber(80)),
			}}}}}},
		},
	}); err != nil {
		t.Fatal(err)
	}

	lsStatus := func() (gwv1.ListenerSet, error) {
		var got gwv1.ListenerSet
		err := h.k8s.Get(ctx, client.ObjectKeyFromObject(ls), &got)
		return got, err
	}
	listenerCond := func(s gwv1.ListenerSet, name gwv1.SectionName, typ gwv1.ListenerConditionType) *metav1.Condition {
		for _, l := range s.Status.Listeners {
			if l.Name == name {
				return meta.FindStatusCondition(l.Conditions, string(typ))
			}
		}
		return nil
	}
	eventually(t, "the ListenerSet is Accepted and Programmed, its conflicting listener refused, and the Gateway counts it", func() (bool, string) {
		s, err := lsStatus()
		if err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
		prog := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionProgrammed))
		shop := listenerCond(s, "shop", gwv1.ListenerConditionProgrammed)
		taken := listenerCond(s, "taken", gwv1.ListenerConditionConflicted)
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			return false, err.Error()
		}
		ok := acc != nil && acc.Status == metav1.ConditionTrue && acc.ObservedGeneration == s.Generation &&
			prog != nil && prog.Status == metav1.ConditionTrue &&
			shop != nil && shop.Status == metav1.ConditionTrue &&
			taken != nil && taken.Status == metav1.ConditionTrue && taken.Reason == string(gwv1.ListenerReasonHostnameConflict) &&
			g.Status.AttachedListenerSets != nil && *g.Status.AttachedListenerSets == 1
		return ok, fmt.Sprintf("ListenerSet %+v; Gateway attachedListenerSets %v", s.Status, g.Status.AttachedListenerSets)
	})
	if evs := h.warnings(t, ns, "shop", string(gwv1.ListenerReasonHostnameConflict)); !contains(evs, "listener taken") {
		t.Errorf("no HostnameConflict event on the ListenerSet naming its listener: %q", evs)
	}
	eventually(t, "the route is Accepted on the ListenerSet and counted on its listener", func() (bool, string) {
		var r gwv1.HTTPRoute
		if err := h.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &r); err != nil {
			return false, err.Error()
		}
		s, _ := lsStatus()
		attached := int32(-1)
		for _, l := range s.Status.Listeners {
			if l.Name == "shop" {
				attached = l.AttachedRoutes
			}
		}
		for _, p := range r.Status.Parents {
			if p.ControllerName == gateway.ControllerName && p.ParentRef.Kind != nil && *p.ParentRef.Kind == "ListenerSet" {
				c := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
				return c != nil && c.Status == metav1.ConditionTrue && attached == 1, fmt.Sprintf("%+v; attachedRoutes %d", p, attached)
			}
		}
		return false, fmt.Sprintf("parents %+v", r.Status.Parents)
	})

	// The cloud: the Gateway's one load balancer has a rule for the ListenerSet's hostname.
	hosts := func() ([]string, bool, string) {
		lbs := h.gatewayALBs(t, ns, "gw")
		if len(lbs) != 1 || len(lbs[0].Listeners) != 1 {
			return nil, false, fmt.Sprintf("load balancers %+v", lbs)
		}
		rules, err := h.p.ListRules(ctx, lbs[0].Listeners[0].ID)
		if err != nil {
			return nil, false, err.Error()
		}
		var hs []string
		for _, r := range rules {
			if len(r.Action.Forward) > 0 {
				hs = append(hs, r.Conditions.Hosts...)
			}
		}
		slices.Sort(hs)
		return hs, true, fmt.Sprintf("forwarding rules for %v", hs)
	}
	eventually(t, "the Gateway's load balancer forwards shop.example.com to the route's group", func() (bool, string) {
		hs, ok, msg := hosts()
		return ok && slices.Contains(hs, "shop.example.com"), msg
	})

	// The Gateway stops allowing ListenerSets: the ListenerSet is NotAllowed, its listener
	// leaves the cloud, and the Gateway counts none.
	update(t, h, client.ObjectKeyFromObject(gw), func(g *gwv1.Gateway) {
		g.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr(gwv1.NamespacesFromNone)}}
	})
	eventually(t, "the ListenerSet is NotAllowed and the Gateway attaches none", func() (bool, string) {
		s, err := lsStatus()
		if err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
		var g gwv1.Gateway
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(gw), &g); err != nil {
			return false, err.Error()
		}
		return acc != nil && acc.Status == metav1.ConditionFalse && acc.Reason == string(gwv1.ListenerSetReasonNotAllowed) &&
			g.Status.AttachedListenerSets != nil && *g.Status.AttachedListenerSets == 0, fmt.Sprintf("%+v; %v", s.Status.Conditions, g.Status.AttachedListenerSets)
	})
	eventually(t, "the load balancer no longer forwards shop.example.com", func() (bool, string) {
		hs, ok, msg := hosts()
		return ok && !slices.Contains(hs, "shop.example.com"), msg
	})

	// Allowed again, then the Gateway goes: what the ListenerSet's status said no longer holds,
	// and goes back to waiting for a controller.
	update(t, h, client.ObjectKeyFromObject(gw), func(g *gwv1.Gateway) {
		g.Spec.AllowedListeners = &gwv1.AllowedListeners{Namespaces: &gwv1.ListenerNamespaces{From: ptr(gwv1.NamespacesFromAll)}}
	})
	eventually(t, "the ListenerSet is Accepted again", func() (bool, string) {
		s, err := lsStatus()
		acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
		return err == nil && acc != nil && acc.Status == metav1.ConditionTrue, fmt.Sprintf("%+v %v", s.Status.Conditions, err)
	})
	if err := h.k8s.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	eventually(t, "with its Gateway gone, the ListenerSet's status is Unknown and lists no listener", func() (bool, string) {
		s, err := lsStatus()
		if err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
		prog := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionProgrammed))
		return acc != nil && acc.Status == metav1.ConditionUnknown && prog != nil && prog.Status == metav1.ConditionUnknown &&
			len(s.Status.Listeners) == 0, fmt.Sprintf("%+v", s.Status)
	})

	// As a controller that wrote a status and restarted while the Gateway went would leave it:
	// a ListenerSet whose parent does not exist, its status still Accepted. The controller has
	// no memory of writing it, and resets it all the same.
	orphan := &gwv1.ListenerSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan"},
		Spec: gwv1.ListenerSetSpec{
			ParentRef: gwv1.ParentGatewayReference{Name: "gone"},
			Listeners: []gwv1.ListenerEntry{{Name: "x", Port: 80, Protocol: gwv1.HTTPProtocolType}},
		},
	}
	if err := h.k8s.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	orphan.Status.Conditions = []metav1.Condition{
		{Type: string(gwv1.ListenerSetConditionAccepted), Status: metav1.ConditionTrue, Reason: string(gwv1.ListenerSetReasonAccepted), Message: "left over", LastTransitionTime: metav1.Now()},
		{Type: string(gwv1.ListenerSetConditionProgrammed), Status: metav1.ConditionTrue, Reason: string(gwv1.ListenerSetReasonProgrammed), Message: "left over", LastTransitionTime: metav1.Now()},
	}
	if err := h.k8s.Status().Update(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	// A pass, as a restarted controller's first is (a status write alone wakes none).
	update(t, h, client.ObjectKeyFromObject(orphan), func(s *gwv1.ListenerSet) { s.Labels = map[string]string{"touched": "yes"} })
	eventually(t, "a ListenerSet left Accepted with no parent goes back to Unknown", func() (bool, string) {
		var s gwv1.ListenerSet
		if err := h.k8s.Get(ctx, client.ObjectKeyFromObject(orphan), &s); err != nil {
			return false, err.Error()
		}
		acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
		return acc != nil && acc.Status == metav1.ConditionUnknown && acc.Reason == string(gwv1.ListenerSetReasonPending), fmt.Sprintf("%+v", s.Status)
	})
}
