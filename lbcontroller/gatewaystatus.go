package lbcontroller

// The Gateway controller's write-back: statuses and events of a pass.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/providers"
)

// writeStatuses writes every status the translation computed, keeping the lastTransitionTime
// of a condition that did not change and everything other controllers wrote on routes.
func (r *gatewayReconciler) writeStatuses(ctx context.Context, out gateway.Output, objs *gatewayObjects) error {
	var errs []error
	for _, cs := range out.GatewayClasses {
		gc := objs.classes[cs.Name]
		if gc == nil {
			continue
		}
		next := gc.DeepCopy()
		next.Status.Conditions = mergeConditions(gc.Status.Conditions, cs.Status.Conditions)
		next.Status.SupportedFeatures = gateway.WithoutKinds(cs.Status.SupportedFeatures, r.kinds.missing()...)
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).HostnameScopes {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.MisdirectedRequests)
		}
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).L4OnApplicationLB {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.TLSTerminate, gateway.TLSMixed)
		}
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).StaticAddresses {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.StaticAddresses)
		}
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).BackendTLSVerification {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.BackendTLSFeatures...)
		}
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).BackendClientCertificates {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.BackendClientCertificate)
		}
		if r.alb == nil || !providers.CapabilitiesOf(r.alb).FrontendClientValidation {
			next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, gateway.FrontendClientValidation...)
		}
		// Nor the extended features whose rules the cloud cannot express.
		next.Status.SupportedFeatures = gateway.Without(next.Status.SupportedFeatures, refusedFeatures(r.alb)...)
		if !equality.Semantic.DeepEqual(gc.Status, next.Status) {
			errs = append(errs, r.update(ctx, next))
		}
	}
	for _, gs := range out.Gateways {
		g := objs.gateways[gs.Namespace+"/"+gs.Name]
		if g == nil {
			continue
		}
		next := g.DeepCopy()
		next.Status.Addresses = gs.Status.Addresses
		next.Status.Conditions = mergeConditions(g.Status.Conditions, gs.Status.Conditions)
		old := map[gwv1.SectionName][]metav1.Condition{}
		for _, l := range g.Status.Listeners {
			old[l.Name] = l.Conditions
		}
		next.Status.Listeners = make([]gwv1.ListenerStatus, len(gs.Status.Listeners))
		for i, l := range gs.Status.Listeners {
			l.Conditions = mergeConditions(old[l.Name], l.Conditions)
			next.Status.Listeners[i] = l
		}
		next.Status.AttachedListenerSets = gs.Status.AttachedListenerSets
		if !equality.Semantic.DeepEqual(g.Status, next.Status) {
			errs = append(errs, r.update(ctx, next))
		}
	}
	written := map[string]bool{}
	for _, ss := range out.ListenerSets {
		written[ss.Namespace+"/"+ss.Name] = true
		s := objs.listenerSets[ss.Namespace+"/"+ss.Name]
		if s == nil {
			continue
		}
		next := s.DeepCopy()
		next.Status.Conditions = mergeConditions(s.Status.Conditions, ss.Status.Conditions)
		old := map[gwv1.SectionName][]metav1.Condition{}
		for _, l := range s.Status.Listeners {
			old[l.Name] = l.Conditions
		}
		next.Status.Listeners = nil
		for _, l := range ss.Status.Listeners {
			l.Conditions = mergeConditions(old[l.Name], l.Conditions)
			next.Status.Listeners = append(next.Status.Listeners, l)
		}
		if !equality.Semantic.DeepEqual(s.Status, next.Status) {
			errs = append(errs, r.update(ctx, next))
		}
	}
	// A ListenerSet whose status we wrote and whose parent is no longer one of our Gateways
	// (deleted, of another class, or the ListenerSet names another) loses what we said: its
	// conditions go back to the CRD's "waiting for a controller", its listeners' statuses go.
	// setsWritten is this process's memory; after a restart, a ListenerSet whose parent
	// Gateway does not exist at all (no controller will write it) and whose status still says
	// more than Pending is reset too.
	stale := maps.Clone(r.setsWritten)
	for k, s := range objs.listenerSets {
		if !written[k] && !stale[k] && r.orphanedListenerSet(ctx, s, objs) {
			stale[k] = true
		}
	}
	for k := range stale {
		s := objs.listenerSets[k]
		if written[k] || s == nil {
			continue
		}
		next := s.DeepCopy()
		msg := "no flatnet Gateway takes this ListenerSet any more: its parent is gone, not flatnet's, or not named"
		next.Status.Conditions = mergeConditions(s.Status.Conditions, []metav1.Condition{
			{Type: string(gwv1.ListenerSetConditionAccepted), Status: metav1.ConditionUnknown, Reason: string(gwv1.ListenerSetReasonPending), Message: msg, ObservedGeneration: s.Generation},
			{Type: string(gwv1.ListenerSetConditionProgrammed), Status: metav1.ConditionUnknown, Reason: string(gwv1.ListenerSetReasonPending), Message: msg, ObservedGeneration: s.Generation},
		})
		next.Status.Listeners = nil
		if err := r.update(ctx, next); err != nil {
			errs = append(errs, err)
			written[k] = true // tried again next time
		}
	}
	r.setsWritten = written
	ours := map[string]bool{}
	for _, rs := range out.Routes {
		k := rs.Kind + "/" + rs.Namespace + "/" + rs.Name
		ours[k] = true
		if o := objs.routes[k]; o != nil {
			errs = append(errs, r.writeRouteStatus(ctx, o, rs.Parents))
		}
	}
	// Routes that no longer have a parent of ours lose our entries.
	for k, o := range objs.routes {
		if !ours[k] {
			errs = append(errs, r.writeRouteStatus(ctx, o, nil))
		}
	}
	// Policies likewise: ours are the ancestors our Gateways are; a policy without one loses them.
	withAncestors := map[string]bool{}
	pending := pendingGateways(out.Gateways)
	for _, ps := range out.Policies {
		k := ps.Namespace + "/" + ps.Name
		withAncestors[k] = true
		if o := objs.policies[k]; o != nil {
			errs = append(errs, r.writePolicyStatus(ctx, o, heldAncestors(o, ps.Ancestors, pending)))
		}
	}
	for k, o := range objs.policies {
		if !withAncestors[k] {
			errs = append(errs, r.writePolicyStatus(ctx, o, nil))
		}
	}
	return errors.Join(errs...)
}

// pendingGateways are the Gateways (namespace/name) whose load balancer is still taking the
// pass's configuration: Programmed False, reason Pending.
func pendingGateways(gws []gateway.GatewayStatus) map[string]bool {
	out := map[string]bool{}
	for _, gs := range gws {
		c := meta.FindStatusCondition(gs.Status.Conditions, string(gwv1.GatewayConditionProgrammed))
		if c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(gwv1.GatewayReasonPending) {
			out[gs.Namespace+"/"+gs.Name] = true
		}
	}
	return out
}

// heldAncestors is what a policy's status says of its ancestors: an ancestor Gateway whose load
// balancer is still taking the configuration (pending) keeps the entry it had, or gets none
// yet, instead of a new Accepted True. A client that waits for Accepted then finds the policy
// in force (the group verifying its targets), not the group it replaces. Refusals are written
// at once: the translation already refuses the policy's traffic.
func heldAncestors(o *gwv1.BackendTLSPolicy, ancestors []gwv1.PolicyAncestorStatus, pending map[string]bool) []gwv1.PolicyAncestorStatus {
	out := make([]gwv1.PolicyAncestorStatus, 0, len(ancestors))
	for _, a := range ancestors {
		ref := a.AncestorRef
		ns := o.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		gw := ns + "/" + string(ref.Name)
		acc := meta.FindStatusCondition(a.Conditions, string(gwv1.PolicyConditionAccepted))
		if !pending[gw] || acc == nil || acc.Status != metav1.ConditionTrue || ref.Kind != nil && string(*ref.Kind) != gateway.KindGateway {
			out = append(out, a)
			continue
		}
		for _, old := range o.Status.Ancestors {
			if old.ControllerName == gateway.ControllerName && sameParentRef(old.AncestorRef, ref) {
				out = append(out, old)
			}
		}
	}
	return out
}

// writePolicyStatus replaces the policy's ancestor entries of our controller with ancestors,
// keeping other controllers' entries.
func (r *gatewayReconciler) writePolicyStatus(ctx context.Context, o *gwv1.BackendTLSPolicy, ancestors []gwv1.PolicyAncestorStatus) error {
	var next []gwv1.PolicyAncestorStatus
	for _, a := range o.Status.Ancestors {
		if a.ControllerName != gateway.ControllerName {
			next = append(next, a)
		}
	}
	// The CRD takes at most 16 in all: other controllers' entries stay, ours fill what is left.
	ancestors = ancestors[:min(len(ancestors), max(0, gateway.MaxPolicyAncestors-len(next)))]
	for _, a := range ancestors {
		var prev []metav1.Condition
		for _, old := range o.Status.Ancestors {
			if old.ControllerName == gateway.ControllerName && sameParentRef(old.AncestorRef, a.AncestorRef) {
				prev = old.Conditions
			}
		}
		a.Conditions = mergeConditions(prev, a.Conditions)
		next = append(next, a)
	}
	cur := o.Status.Ancestors
	if len(cur) == 0 {
		cur = nil
	}
	if slices.EqualFunc(cur, next, func(x, y gwv1.PolicyAncestorStatus) bool {
		return x.ControllerName == y.ControllerName && sameParentRef(x.AncestorRef, y.AncestorRef) && sameConditions(x.Conditions, y.Conditions)
	}) {
		return nil
	}
	c := o.DeepCopy()
	c.Status.Ancestors = next
	if next == nil {
		c.Status.Ancestors = []gwv1.PolicyAncestorStatus{} // the CRD requires the list
	}
	return r.update(ctx, c)
}

func (r *gatewayReconciler) update(ctx context.Context, o client.Object) error {
	err := r.client.Status().Update(ctx, o)
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return nil // gone since the cache saw it
	case apierrors.IsConflict(err):
		return fmt.Errorf("status of %T %s/%s changed meanwhile; retrying: %w", o, o.GetNamespace(), o.GetName(), err)
	default:
		return fmt.Errorf("write the status of %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
	}
}

// routeStatus returns the route's status, which every route kind embeds.
func routeStatus(o client.Object) *gwv1.RouteStatus {
	switch r := o.(type) {
	case *gwv1.HTTPRoute:
		return &r.Status.RouteStatus
	case *gwv1.GRPCRoute:
		return &r.Status.RouteStatus
	case *gwv1.TLSRoute:
		return &r.Status.RouteStatus
	case *gwv1.TCPRoute:
		return &r.Status.RouteStatus
	case *gwv1.UDPRoute:
		return &r.Status.RouteStatus
	}
	return nil
}

// writeRouteStatus replaces the route's parent entries of our controller with parents, keeping
// the order and entries of other controllers.
func (r *gatewayReconciler) writeRouteStatus(ctx context.Context, o client.Object, parents []gwv1.RouteParentStatus) error {
	cur := routeStatus(o)
	if cur == nil {
		return nil
	}
	var next []gwv1.RouteParentStatus
	for _, p := range cur.Parents {
		if p.ControllerName != gateway.ControllerName {
			next = append(next, p)
		}
	}
	for _, p := range parents {
		var prev []metav1.Condition
		for _, old := range cur.Parents {
			if old.ControllerName == gateway.ControllerName && sameParentRef(old.ParentRef, p.ParentRef) {
				prev = old.Conditions
			}
		}
		p.Conditions = mergeConditions(prev, p.Conditions)
		next = append(next, p)
	}
	if len(next) == 0 {
		next = nil
	}
	curParents := cur.Parents
	if len(curParents) == 0 {
		curParents = nil
	}
	if sameParents(curParents, next) {
		return nil
	}
	c := o.DeepCopyObject().(client.Object)
	routeStatus(c).Parents = next
	if next == nil {
		// The CRD requires the list; an empty one clears ours.
		routeStatus(c).Parents = []gwv1.RouteParentStatus{}
	}
	return r.update(ctx, c)
}

// sameParents is equality.Semantic.DeepEqual for route parent statuses, without reflection: a
// pass compares every route's (with 1,000 routes, the reflective comparison took longer than the
// translation). TestSameParentsIsSemanticEquality holds them to the same answers and to the
// types' fields.
func sameParents(a, b []gwv1.RouteParentStatus) bool {
	return slices.EqualFunc(a, b, func(x, y gwv1.RouteParentStatus) bool {
		return x.ControllerName == y.ControllerName && sameParentRef(x.ParentRef, y.ParentRef) && sameConditions(x.Conditions, y.Conditions)
	})
}

func sameParentRef(a, b gwv1.ParentReference) bool {
	return samePtr(a.Group, b.Group) && samePtr(a.Kind, b.Kind) && samePtr(a.Namespace, b.Namespace) &&
		a.Name == b.Name && samePtr(a.SectionName, b.SectionName) && samePtr(a.Port, b.Port)
}

func sameConditions(a, b []metav1.Condition) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.Condition) bool {
		return x.Type == y.Type && x.Status == y.Status && x.ObservedGeneration == y.ObservedGeneration &&
			x.LastTransitionTime.Equal(&y.LastTransitionTime) && x.Reason == y.Reason && x.Message == y.Message
	})
}

func samePtr[T comparable](a, b *T) bool { return a == b || a != nil && b != nil && *a == *b }

// mergeConditions gives want (conditions without times) the lastTransitionTime of the matching
// old condition when its status did not change, and now otherwise; conditions not in want go.
func mergeConditions(old, want []metav1.Condition) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(want))
	now := metav1.Now()
	for _, c := range want {
		if prev := meta.FindStatusCondition(old, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		} else if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
		}
		out = append(out, c)
	}
	return out
}

// recordEvents records each event of the translation once while the translation keeps giving
// it: a pass runs on every change, and the same bad input must not repeat its event each time.
func (r *gatewayReconciler) recordEvents(out gateway.Output, objs *gatewayObjects) {
	seen := map[string]bool{}
	for _, ev := range foldEvents(out.Events) {
		k := strings.Join([]string{ev.Kind, ev.Namespace, ev.Name, ev.Reason, ev.Message}, "\x00")
		seen[k] = true
		r.mu.Lock()
		done := r.emitted[k]
		r.mu.Unlock()
		if done {
			continue
		}
		var o client.Object
		switch ev.Kind {
		case "GatewayClass":
			if gc := objs.classes[ev.Name]; gc != nil {
				o = gc
			}
		case "Gateway":
			if g := objs.gateways[ev.Namespace+"/"+ev.Name]; g != nil {
				o = g
			}
		case gateway.KindBackendTLSPolicy:
			if p := objs.policies[ev.Namespace+"/"+ev.Name]; p != nil {
				o = p
			}
		case gateway.KindListenerSet:
			if s := objs.listenerSets[ev.Namespace+"/"+ev.Name]; s != nil {
				o = s
			}
		default:
			o = objs.routes[ev.Kind+"/"+ev.Namespace+"/"+ev.Name]
		}
		if o == nil {
			continue
		}
		r.events.Eventf(o, nil, cmpOr(ev.Type, corev1.EventTypeWarning), ev.Reason, "Translate", "%s", ev.Message)
		r.mu.Lock()
		r.emitted[k] = true
		r.mu.Unlock()
	}
	r.mu.Lock()
	for k := range r.emitted {
		if !seen[k] {
			delete(r.emitted, k)
		}
	}
	r.mu.Unlock()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// markUnserved writes, on each route's parent entry of a Gateway, what the Gateway's cloud
// cannot serve of the route (gatewayRecord.unserved), and adds a Warning event for it:
//   - a route not served at all (a TLSRoute on a passthrough listener whose backend is not the
//     oldest route's, which a network load balancer cannot route by SNI; a route every rule of
//     which the cloud cannot express) is not Accepted: reason UnsupportedValue, the message
//     saying why;
//   - a route served in part (a weighted forward, of which the network load balancer serves one
//     backend) stays Accepted, its message saying which backends get no connection;
//   - a route rule the application load balancer cannot express is left out: the route is
//     PartiallyInvalid (reason UnsupportedValue, "Dropped Rule(s): " and why, after the rules
//     the translation dropped), and stays Accepted.
//
// Other Gateways' entries are left alone.
func (r *gatewayReconciler) markUnserved(out *gateway.Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	type routeKey struct{ kind, ns, name string }
	// A route's parent that is a ListenerSet is served by the ListenerSet's Gateway.
	setGateway := map[string]string{}
	for _, s := range out.ListenerSets {
		setGateway[s.Namespace+"/"+s.Name] = s.Gateway
	}
	for key, rec := range r.records {
		gwNS, gwName, _ := strings.Cut(key, "/")
		var order []routeKey
		msgs := map[routeKey][]string{}
		dropped := map[routeKey][]string{}
		refused := map[routeKey]bool{}
		for _, u := range rec.unserved {
			f := strings.Fields(u.Source) // "TLSRoute ns/name rule 0"
			if len(f) < 2 {
				continue
			}
			ns, name, _ := strings.Cut(f[1], "/")
			k := routeKey{f[0], ns, name}
			if _, ok := msgs[k]; !ok {
				order = append(order, k)
				msgs[k] = nil
			}
			switch {
			case u.Dropped:
				dropped[k] = append(dropped[k], u.Message)
			case !slices.Contains(msgs[k], u.Message):
				msgs[k] = append(msgs[k], u.Message)
			}
			refused[k] = refused[k] || (!u.Partial && !u.Dropped)
		}
		for _, k := range order {
			for i := range out.Routes {
				rs := &out.Routes[i]
				if rs.Kind != k.kind || rs.Namespace != k.ns || rs.Name != k.name {
					continue
				}
				marked := false
				for j := range rs.Parents {
					ps := &rs.Parents[j]
					pns := rs.Namespace
					if ps.ParentRef.Namespace != nil {
						pns = string(*ps.ParentRef.Namespace)
					}
					parent := pns + "/" + string(ps.ParentRef.Name)
					if ps.ParentRef.Kind != nil && *ps.ParentRef.Kind == gateway.KindListenerSet {
						parent = setGateway[parent]
					}
					if parent != key {
						continue
					}
					c := meta.FindStatusCondition(ps.Conditions, string(gwv1.RouteConditionAccepted))
					if c == nil || c.Status != metav1.ConditionTrue {
						continue
					}
					marked = true
					if len(msgs[k]) > 0 {
						c.Message = strings.Join(msgs[k], "; ")
					}
					if refused[k] {
						c.Status, c.Reason = metav1.ConditionFalse, string(gwv1.RouteReasonUnsupportedValue)
						continue
					}
					if len(dropped[k]) == 0 {
						continue
					}
					why := strings.Join(dropped[k], "; ")
					if pi := meta.FindStatusCondition(ps.Conditions, string(gwv1.RouteConditionPartiallyInvalid)); pi != nil {
						pi.Message += "; " + why
					} else {
						ps.Conditions = append(ps.Conditions, metav1.Condition{Type: string(gwv1.RouteConditionPartiallyInvalid), Status: metav1.ConditionTrue,
							Reason: string(gwv1.RouteReasonUnsupportedValue), Message: "Dropped Rule(s): " + why, ObservedGeneration: c.ObservedGeneration})
					}
				}
				if !marked {
					continue
				}
				gwRef := fmt.Sprintf("Gateway %s/%s: ", gwNS, gwName)
				switch {
				case refused[k]:
					out.Events = append(out.Events, gateway.Event{Kind: k.kind, Namespace: k.ns, Name: k.name, Type: corev1.EventTypeWarning,
						Reason: string(gwv1.RouteReasonUnsupportedValue), Message: gwRef + strings.Join(msgs[k], "; ")})
				case len(dropped[k]) > 0:
					out.Events = append(out.Events, gateway.Event{Kind: k.kind, Namespace: k.ns, Name: k.name, Type: corev1.EventTypeWarning,
						Reason: string(gwv1.RouteConditionPartiallyInvalid), Message: gwRef + "Dropped Rule(s): " + strings.Join(dropped[k], "; ")})
				}
			}
		}
	}
}

// foldEvents joins the events one object gets for one reason (two conflicting listeners, say)
// into one, their messages sorted. The events API takes events of the same object, reason and
// action for one series and keeps the first one's note, so separate events would show only one
// of the messages, whichever came first.
func foldEvents(evs []gateway.Event) []gateway.Event {
	type key struct{ kind, ns, name, typ, reason string }
	var order []key
	msgs := map[key][]string{}
	for _, ev := range evs {
		k := key{ev.Kind, ev.Namespace, ev.Name, ev.Type, ev.Reason}
		if _, ok := msgs[k]; !ok {
			order = append(order, k)
		}
		if !slices.Contains(msgs[k], ev.Message) {
			msgs[k] = append(msgs[k], ev.Message)
		}
	}
	out := make([]gateway.Event, 0, len(order))
	for _, k := range order {
		m := msgs[k]
		slices.Sort(m)
		out = append(out, gateway.Event{Kind: k.kind, Namespace: k.ns, Name: k.name, Type: k.typ, Reason: k.reason,
			Message: strings.Join(m, "; ")})
	}
	return out
}

// orphanedListenerSet: s's parent is a Gateway that does not exist (the cache does not hold
// it, and the API server, asked only then since the cache may lag behind a Gateway just
// created, says NotFound), and s's status says more than the CRD's "waiting for a controller"
// (Accepted Unknown/Pending, or no Accepted at all). A parent of another kind is another
// implementation's: never ours to reset.
func (r *gatewayReconciler) orphanedListenerSet(ctx context.Context, s *gwv1.ListenerSet, objs *gatewayObjects) bool {
	parent, ok := gateway.ListenerSetParent(s)
	if !ok || objs.gateways[parent] != nil || r.reader == nil {
		return false
	}
	acc := meta.FindStatusCondition(s.Status.Conditions, string(gwv1.ListenerSetConditionAccepted))
	if (acc == nil || acc.Status == metav1.ConditionUnknown && acc.Reason == string(gwv1.ListenerSetReasonPending)) && len(s.Status.Listeners) == 0 {
		return false
	}
	ns, name, _ := strings.Cut(parent, "/")
	return apierrors.IsNotFound(r.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &gwv1.Gateway{}))
}
