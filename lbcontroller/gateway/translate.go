package gateway

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Group is the Gateway API group; route kinds and parent references default to it.
const Group = gwv1.GroupName

// Kinds this package knows.
const (
	KindGateway   = "Gateway"
	KindHTTPRoute = "HTTPRoute"
	KindGRPCRoute = "GRPCRoute"
	KindTLSRoute  = "TLSRoute"
	KindTCPRoute  = "TCPRoute"
	KindUDPRoute  = "UDPRoute"
	KindService   = "Service"
	KindSecret    = "Secret"
)

// EventWarning is the type of every event Translate emits.
const EventWarning = corev1.EventTypeWarning

// ReasonLabelNotApplied is the reason of the Event about a Gateway's spec.infrastructure.labels
// entry the cloud cannot take as a tag (the Gateway API defines no condition for it).
const ReasonLabelNotApplied = "LabelNotApplied"

// translation is the state of one Translate call.
type translation struct {
	in         Input
	controller gwv1.GatewayController
	namespaces map[string]*corev1.Namespace
	services   map[string]*corev1.Service             // ns/name
	slices     map[string][]discoveryv1.EndpointSlice // ns/service
	secrets    map[string]*corev1.Secret              // ns/name
	configMaps map[string]*corev1.ConfigMap           // ns/name
	policies   map[policyTarget][]*tlsPolicy          // BackendTLSPolicies by target, the one taking precedence first
	grants     map[string][]*gwv1.ReferenceGrant      // by namespace
	lbs        map[string]*LoadBalancerState          // ns/name of the Gateway
	gateways   map[string]*gateway                    // ns/name, ours only
	// setsByParent are the ListenerSets by the Gateway they name (ns/name), in precedence
	// order; listenerSets those whose parent is ours, by their own ns/name.
	setsByParent map[string][]*gwv1.ListenerSet
	listenerSets map[string]*listenerSet
	events       []Event
	memo         *routeMemo // a Translator's memory of compiled routes; nil: none
}

// Translate computes the load balancers of every Gateway of ours, the status of every object of
// ours, and the events bad input deserves. It never fails: bad input becomes conditions and
// events, and everything valid beside it is still translated.
func Translate(in Input) Output { return translate(in, nil) }

func translate(in Input, memo *routeMemo) Output {
	t := &translation{
		memo:       memo,
		in:         in,
		controller: cmp.Or(in.ControllerName, ControllerName),
		namespaces: map[string]*corev1.Namespace{},
		services:   map[string]*corev1.Service{},
		slices:     map[string][]discoveryv1.EndpointSlice{},
		secrets:    map[string]*corev1.Secret{},
		configMaps: map[string]*corev1.ConfigMap{},
		grants:     map[string][]*gwv1.ReferenceGrant{},
		lbs:        map[string]*LoadBalancerState{},
		gateways:   map[string]*gateway{},

		setsByParent: map[string][]*gwv1.ListenerSet{},
		listenerSets: map[string]*listenerSet{},
	}
	t.index()
	var out Output
	classes := t.classes(&out)
	gws := t.buildGateways(classes)
	routes := t.attachRoutes()
	for _, gw := range gws {
		out.LoadBalancers = append(out.LoadBalancers, t.loadBalancers(gw))
		out.Gateways = append(out.Gateways, t.gatewayStatus(gw))
	}
	out.ListenerSets = t.listenerSetStatuses(gws)
	out.Routes = make([]RouteStatus, 0, len(routes))
	for _, r := range routes {
		if len(r.parents) > 0 {
			out.Routes = append(out.Routes, RouteStatus{Kind: r.kind, Namespace: r.ns, Name: r.name, Parents: r.parentStatuses()})
		}
	}
	used := t.usedPolicies()
	for _, p := range used {
		out.Policies = append(out.Policies, t.policyStatus(p))
	}
	t.policyEvents(used)
	out.Events = t.events
	return out
}

func key(ns, name string) string { return ns + "/" + name }

func (t *translation) index() {
	for i := range t.in.Namespaces {
		n := &t.in.Namespaces[i]
		t.namespaces[n.Name] = n
	}
	for i := range t.in.Services {
		s := &t.in.Services[i]
		t.services[key(s.Namespace, s.Name)] = s
	}
	for _, sl := range t.in.EndpointSlices {
		if svc := sl.Labels[discoveryv1.LabelServiceName]; svc != "" {
			k := key(sl.Namespace, svc)
			t.slices[k] = append(t.slices[k], sl)
		}
	}
	for i := range t.in.Secrets {
		s := &t.in.Secrets[i]
		t.secrets[key(s.Namespace, s.Name)] = s
	}
	for i := range t.in.ConfigMaps {
		c := &t.in.ConfigMaps[i]
		t.configMaps[key(c.Namespace, c.Name)] = c
	}
	t.indexPolicies()
	t.indexListenerSets()
	for i := range t.in.ReferenceGrants {
		g := &t.in.ReferenceGrants[i]
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
	for i := range t.in.LoadBalancers {
		s := &t.in.LoadBalancers[i]
		t.lbs[key(s.Namespace, s.Name)] = s
	}
}

func (t *translation) event(kind, ns, name, reason, format string, args ...any) {
	t.events = append(t.events, Event{Kind: kind, Namespace: ns, Name: name, Type: EventWarning, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// classes writes the status of our GatewayClasses and returns those accepted, by name.
func (t *translation) classes(out *Output) map[string]bool {
	accepted := map[string]bool{}
	cls := slices.Clone(t.in.GatewayClasses)
	slices.SortFunc(cls, func(a, b gwv1.GatewayClass) int { return strings.Compare(a.Name, b.Name) })
	for _, gc := range cls {
		if gc.Spec.ControllerName != t.controller {
			continue
		}
		acc := condition(string(gwv1.GatewayClassConditionStatusAccepted), true, string(gwv1.GatewayClassReasonAccepted),
			"flatnet programs the cloud's load balancers for Gateways of this class", gc.Generation)
		if p := gc.Spec.ParametersRef; p != nil {
			msg := fmt.Sprintf("parametersRef %s/%s %s: flatnet takes no parameters; remove parametersRef", p.Group, p.Kind, p.Name)
			acc = condition(string(gwv1.GatewayClassConditionStatusAccepted), false, string(gwv1.GatewayClassReasonInvalidParameters), msg, gc.Generation)
			t.event("GatewayClass", "", gc.Name, string(gwv1.GatewayClassReasonInvalidParameters), "%s", msg)
		} else {
			accepted[gc.Name] = true
		}
		ver := condition(string(gwv1.GatewayClassConditionStatusSupportedVersion), true, string(gwv1.GatewayClassReasonSupportedVersion),
			"Gateway API v1.6", gc.Generation)
		if v := t.in.BundleVersion; v != "" && !strings.HasPrefix(v, "v1.6.") {
			ver = condition(string(gwv1.GatewayClassConditionStatusSupportedVersion), false, string(gwv1.GatewayClassReasonUnsupportedVersion),
				fmt.Sprintf("the installed Gateway API CRDs are %s; flatnet supports v1.6.x", v), gc.Generation)
		}
		st := gwv1.GatewayClassStatus{Conditions: []metav1.Condition{acc, ver}}
		if ver.Status == metav1.ConditionTrue {
			// Older CRDs may not take the field in this form (v1.0's was a list of strings):
			// a status they refuse would lose the UnsupportedVersion condition with it.
			st.SupportedFeatures = SupportedFeatures()
		}
		out.GatewayClasses = append(out.GatewayClasses, GatewayClassStatus{Name: gc.Name, Status: st})
	}
	return accepted
}

// condition is a metav1.Condition without a transition time (see GatewayClassStatus).
func condition(typ string, status bool, reason, message string, generation int64) metav1.Condition {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: message, ObservedGeneration: generation}
}

// cloudName derives a cloud resource name (at most 32 letters, digits and hyphens) from parts,
// stable for the same parts as lbcontroller/model's names are.
func cloudName(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "k8s-" + hex.EncodeToString(sum[:])[:24]
}
