package lbcontroller

import (
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// TestSameParentsIsSemanticEquality: sameParents answers as equality.Semantic.DeepEqual did for
// every single-field change of a route's parent statuses, and the compared types have the
// fields it compares (a new field in an upgrade of gateway-api or apimachinery fails here).
func TestSameParentsIsSemanticEquality(t *testing.T) {
	for typ, want := range map[reflect.Type]int{
		reflect.TypeFor[gwv1.RouteParentStatus](): 3,
		reflect.TypeFor[gwv1.ParentReference]():   6,
		reflect.TypeFor[metav1.Condition]():       6,
	} {
		if typ.NumField() != want {
			t.Errorf("%s has %d fields, sameParents compares %d: compare the new ones", typ, typ.NumField(), want)
		}
	}
	at := metav1.NewTime(time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC))
	base := func() []gwv1.RouteParentStatus {
		ns, sec, port := gwv1.Namespace("default"), gwv1.SectionName("http"), gwv1.PortNumber(80)
		g, k := gwv1.Group(gwv1.GroupName), gwv1.Kind("Gateway")
		return []gwv1.RouteParentStatus{{
			ParentRef:      gwv1.ParentReference{Group: &g, Kind: &k, Namespace: &ns, Name: "gw", SectionName: &sec, Port: &port},
			ControllerName: "flatnet.io/gateway-controller",
			Conditions: []metav1.Condition{
				{Type: "Accepted", Status: metav1.ConditionTrue, ObservedGeneration: 2, LastTransitionTime: at, Reason: "Accepted", Message: "ok"},
				{Type: "ResolvedRefs", Status: metav1.ConditionTrue, ObservedGeneration: 2, LastTransitionTime: at, Reason: "ResolvedRefs"},
			},
		}}
	}
	changes := map[string]func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus{
		"none":            func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { return p },
		"nil list":        func([]gwv1.RouteParentStatus) []gwv1.RouteParentStatus { return nil },
		"empty list":      func([]gwv1.RouteParentStatus) []gwv1.RouteParentStatus { return []gwv1.RouteParentStatus{} },
		"one more parent": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { return append(p, p[0]) },
		"controller":      func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].ControllerName = "x/y"; return p },
		"group nil":       func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].ParentRef.Group = nil; return p },
		"group other": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			g := gwv1.Group("x")
			p[0].ParentRef.Group = &g
			return p
		},
		"kind": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			k := gwv1.Kind("Service")
			p[0].ParentRef.Kind = &k
			return p
		},
		"namespace nil": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].ParentRef.Namespace = nil; return p },
		"name":          func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].ParentRef.Name = "other"; return p },
		"section name": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			s := gwv1.SectionName("https")
			p[0].ParentRef.SectionName = &s
			return p
		},
		"port nil": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].ParentRef.Port = nil; return p },
		"port equal, new ptr": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			n := gwv1.PortNumber(80)
			p[0].ParentRef.Port = &n
			return p
		},
		"conditions nil": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].Conditions = nil; return p },
		"conditions reordered": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			c := p[0].Conditions
			c[0], c[1] = c[1], c[0]
			return p
		},
		"condition type": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].Conditions[0].Type = "X"; return p },
		"condition status": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			p[0].Conditions[0].Status = metav1.ConditionFalse
			return p
		},
		"observed generation": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			p[0].Conditions[1].ObservedGeneration = 3
			return p
		},
		"reason": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			p[0].Conditions[0].Reason = "NotAllowedByListeners"
			return p
		},
		"message": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus { p[0].Conditions[1].Message = "x"; return p },
		"transition time": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			p[0].Conditions[0].LastTransitionTime = metav1.NewTime(at.Add(time.Second))
			return p
		},
		"same time, other zone": func(p []gwv1.RouteParentStatus) []gwv1.RouteParentStatus {
			p[0].Conditions[0].LastTransitionTime = metav1.NewTime(at.In(time.FixedZone("x", 3600)))
			return p
		},
	}
	for name, change := range changes {
		a, b := base(), change(base())
		if got, want := sameParents(a, b), equality.Semantic.DeepEqual(a, b); got != want {
			t.Errorf("%s: sameParents %v, equality.Semantic.DeepEqual %v", name, got, want)
		}
		if got, want := sameParents(b, a), equality.Semantic.DeepEqual(b, a); got != want {
			t.Errorf("%s, reversed: sameParents %v, equality.Semantic.DeepEqual %v", name, got, want)
		}
	}
	if !sameParents(nil, []gwv1.RouteParentStatus{}) {
		t.Error("nil and empty parent lists differ; the semantic equality has them equal")
	}
}

// TestHeldAncestors: a policy's Accepted True for a Gateway whose load balancer is still taking
// the configuration (Programmed False Pending) waits: the entry it had stays, a new one is not
// written; refusals, other Gateways' entries and entries once the Gateway is programmed go out
// as the translation says.
func TestHeldAncestors(t *testing.T) {
	entry := func(gw string, accepted bool, reason string) gwv1.PolicyAncestorStatus {
		st := metav1.ConditionTrue
		if !accepted {
			st = metav1.ConditionFalse
		}
		return gwv1.PolicyAncestorStatus{
			AncestorRef:    gwv1.ParentReference{Kind: ptrTo(gwv1.Kind("Gateway")), Name: gwv1.ObjectName(gw)},
			ControllerName: "flatnet.io/gateway-controller",
			Conditions:     []metav1.Condition{{Type: string(gwv1.PolicyConditionAccepted), Status: st, Reason: reason}},
		}
	}
	policy := &gwv1.BackendTLSPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	policy.Status.Ancestors = []gwv1.PolicyAncestorStatus{entry("old", true, "Accepted")}
	pending := pendingGateways([]gateway.GatewayStatus{
		{Namespace: "ns", Name: "new", Status: gwv1.GatewayStatus{Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "Pending"}}}},
		{Namespace: "ns", Name: "old", Status: gwv1.GatewayStatus{Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "Pending"}}}},
		{Namespace: "ns", Name: "done", Status: gwv1.GatewayStatus{Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed"}}}},
		{Namespace: "ns", Name: "refused", Status: gwv1.GatewayStatus{Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionFalse, Reason: "Pending"}}}},
	})
	oldNow := entry("old", true, "Accepted")
	oldNow.Conditions[0].Message = "new message"
	got := heldAncestors(policy, []gwv1.PolicyAncestorStatus{
		entry("new", true, "Accepted"), oldNow, entry("done", true, "Accepted"), entry("refused", false, "NoValidCACertificate"),
	}, pending)
	want := []gwv1.PolicyAncestorStatus{entry("old", true, "Accepted"), entry("done", true, "Accepted"), entry("refused", false, "NoValidCACertificate")}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("heldAncestors:\n got %+v\nwant %+v", got, want)
	}
}

func ptrTo[T any](v T) *T { return &v }
