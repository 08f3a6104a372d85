package lbcontroller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
)

// TestMarkUnserved: a TLSRoute the Gateway's network load balancer cannot serve is not
// Accepted by that Gateway (UnsupportedValue, with the reason); its other parent and the
// served route keep theirs.
func TestMarkUnserved(t *testing.T) {
	accepted := func(gw string) gwv1.RouteParentStatus {
		return gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: gwv1.ObjectName(gw)}, Conditions: []metav1.Condition{
			{Type: string(gwv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted), ObservedGeneration: 2},
		}}
	}
	r := &gatewayReconciler{records: map[string]*gatewayRecord{
		"infra/mixed": {unserved: []deploy.Unserved{{Source: "TLSRoute infra/b rule 0", Message: "no SNI routing"}}},
	}}
	out := gateway.Output{Routes: []gateway.RouteStatus{
		{Kind: "TLSRoute", Namespace: "infra", Name: "a", Parents: []gwv1.RouteParentStatus{accepted("mixed")}},
		{Kind: "TLSRoute", Namespace: "infra", Name: "b", Parents: []gwv1.RouteParentStatus{accepted("mixed"), accepted("other")}},
	}}
	r.markUnserved(&out)
	get := func(route, parent int) *metav1.Condition {
		return meta.FindStatusCondition(out.Routes[route].Parents[parent].Conditions, string(gwv1.RouteConditionAccepted))
	}
	if c := get(1, 0); c.Status != metav1.ConditionFalse || c.Reason != string(gwv1.RouteReasonUnsupportedValue) || c.Message != "no SNI routing" || c.ObservedGeneration != 2 {
		t.Errorf("unserved route on mixed: %+v", c)
	}
	if c := get(1, 1); c.Status != metav1.ConditionTrue {
		t.Errorf("unserved route on another Gateway: %+v; want Accepted", c)
	}
	if c := get(0, 0); c.Status != metav1.ConditionTrue {
		t.Errorf("served route: %+v; want Accepted", c)
	}
}
