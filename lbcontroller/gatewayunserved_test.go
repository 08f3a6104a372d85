package lbcontroller

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers/aws"
	fakecloudlb "github.com/flatnet/flatnet/providers/fakecloud"
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

// TestMarkUnservedDroppedRules: a route rule the cloud cannot express makes the route
// PartiallyInvalid on that Gateway (after the rules the translation dropped, when there are
// any), still Accepted; a route none of whose rules it can express is not Accepted; each gets a
// Warning event; the other Gateway's entry is left alone.
func TestMarkUnservedDroppedRules(t *testing.T) {
	accepted := func(gw string, extra ...metav1.Condition) gwv1.RouteParentStatus {
		return gwv1.RouteParentStatus{ParentRef: gwv1.ParentReference{Name: gwv1.ObjectName(gw)}, Conditions: append([]metav1.Condition{
			{Type: string(gwv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: string(gwv1.RouteReasonAccepted), Message: "accepted", ObservedGeneration: 3},
		}, extra...)}
	}
	translated := metav1.Condition{Type: string(gwv1.RouteConditionPartiallyInvalid), Status: metav1.ConditionTrue,
		Reason: string(gwv1.RouteReasonUnsupportedValue), Message: "Dropped Rule(s): rule 2: bad regex", ObservedGeneration: 3}
	r := &gatewayReconciler{records: map[string]*gatewayRecord{
		"infra/web": {unserved: []deploy.Unserved{
			{Source: "HTTPRoute infra/a rule 0", Dropped: true, Message: "rule 0: no timeouts"},
			{Source: "HTTPRoute infra/a rule 1 (x)", Dropped: true, Message: "rule 1 (x): no mirrors"},
			{Source: "HTTPRoute infra/b rule 0", Dropped: true, Message: "rule 0: no retries"},
			{Source: "HTTPRoute infra/c", Message: "the cloud's load balancer cannot express any rule of the route: rule 0: no rewrites"},
		}},
	}}
	out := gateway.Output{Routes: []gateway.RouteStatus{
		{Kind: "HTTPRoute", Namespace: "infra", Name: "a", Parents: []gwv1.RouteParentStatus{accepted("web"), accepted("other")}},
		{Kind: "HTTPRoute", Namespace: "infra", Name: "b", Parents: []gwv1.RouteParentStatus{accepted("web", translated)}},
		{Kind: "HTTPRoute", Namespace: "infra", Name: "c", Parents: []gwv1.RouteParentStatus{accepted("web")}},
	}}
	r.markUnserved(&out)
	cond := func(route, parent int, typ gwv1.RouteConditionType) *metav1.Condition {
		return meta.FindStatusCondition(out.Routes[route].Parents[parent].Conditions, string(typ))
	}
	if c := cond(0, 0, gwv1.RouteConditionAccepted); c.Status != metav1.ConditionTrue || c.Message != "accepted" {
		t.Errorf("route a on web: Accepted %+v; want True, untouched", c)
	}
	if c := cond(0, 0, gwv1.RouteConditionPartiallyInvalid); c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(gwv1.RouteReasonUnsupportedValue) ||
		c.Message != "Dropped Rule(s): rule 0: no timeouts; rule 1 (x): no mirrors" || c.ObservedGeneration != 3 {
		t.Errorf("route a on web: PartiallyInvalid %+v", c)
	}
	if c := cond(0, 1, gwv1.RouteConditionPartiallyInvalid); c != nil {
		t.Errorf("route a on the other Gateway: PartiallyInvalid %+v; want none", c)
	}
	if c := cond(1, 0, gwv1.RouteConditionPartiallyInvalid); c.Message != "Dropped Rule(s): rule 2: bad regex; rule 0: no retries" {
		t.Errorf("route b: PartiallyInvalid %+v; want the translation's dropped rule, then the cloud's", c)
	}
	if c := cond(2, 0, gwv1.RouteConditionAccepted); c.Status != metav1.ConditionFalse || c.Reason != string(gwv1.RouteReasonUnsupportedValue) ||
		c.Message != "the cloud's load balancer cannot express any rule of the route: rule 0: no rewrites" {
		t.Errorf("route c: Accepted %+v; want False, UnsupportedValue", c)
	}
	want := []gateway.Event{
		{Kind: "HTTPRoute", Namespace: "infra", Name: "a", Type: "Warning", Reason: "PartiallyInvalid", Message: "Gateway infra/web: Dropped Rule(s): rule 0: no timeouts; rule 1 (x): no mirrors"},
		{Kind: "HTTPRoute", Namespace: "infra", Name: "b", Type: "Warning", Reason: "PartiallyInvalid", Message: "Gateway infra/web: Dropped Rule(s): rule 0: no retries"},
		{Kind: "HTTPRoute", Namespace: "infra", Name: "c", Type: "Warning", Reason: "UnsupportedValue", Message: "Gateway infra/web: the cloud's load balancer cannot express any rule of the route: rule 0: no rewrites"},
	}
	if diff := cmp.Diff(want, out.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestRefusedFeatures: the GatewayClass lists every extended feature with the fakecloud
// driver; with the AWS driver, not those whose rules ELBv2 cannot express (redirect codes
// other than 301/302, prefix path redirects, header changes, mirrors, timeouts, retries),
// while the ones it can (query and method matching, scheme and port redirects, host and path
// rewrites as ELBv2's rule transforms) stay.
func TestRefusedFeatures(t *testing.T) {
	if got := refusedFeatures(&fakecloudlb.LoadBalancing{}); len(got) != 0 {
		t.Errorf("fakecloud driver refuses %v; want none", got)
	}
	if got := refusedFeatures(nil); len(got) != 0 {
		t.Errorf("no driver: %v; want none", got)
	}
	got := refusedFeatures(&aws.LoadBalancing{})
	slices.Sort(got)
	var want []gwv1.FeatureName
	rewrites := []gwv1.FeatureName{"HTTPRouteHostRewrite", "HTTPRoutePathRewrite"}
	for f := range featureProbes {
		if !slices.Contains(rewrites, f) {
			want = append(want, f)
		}
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AWS driver (-want +got):\n%s", diff)
	}
	for _, f := range append([]gwv1.FeatureName{"HTTPRouteQueryParamMatching", "HTTPRouteMethodMatching", "HTTPRouteSchemeRedirect", "HTTPRoutePortRedirect"}, rewrites...) {
		if slices.Contains(got, f) {
			t.Errorf("AWS driver refuses %s, which ELBv2 has", f)
		}
	}
}
