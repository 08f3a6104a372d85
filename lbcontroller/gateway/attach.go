package gateway

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// route is any route kind, with what translation found about it.
type route struct {
	kind       string
	ns, name   string
	generation int64
	created    metav1.Time
	parentRefs []gwv1.ParentReference
	hostnames  []gwv1.Hostname // HTTP, GRPC and TLS routes only

	rules []*compiledRule // valid rules, in spec order
	// dropped says which rules were left out and why (UnsupportedValue, IncompatibleFilters).
	droppedReason string
	dropped       []string
	ruleCount     int
	// refsReason is the first backend problem; refsMsgs all of them.
	refsReason string
	refsMsgs   []string

	parents []*parentResult
}

func (r *route) fullName() string { return key(r.ns, r.name) }

// usable: at least one rule survived validation (a route with none is not accepted).
func (r *route) usable() bool { return len(r.rules) > 0 }

// parentResult is one parentRef of a route naming one of our Gateways.
type parentResult struct {
	ref gwv1.ParentReference
	gw  *gateway
	// set is the ListenerSet the parentRef names (nil: it names the Gateway).
	set                     *listenerSet
	acceptReason, acceptMsg string // "" when accepted
	attachments             []*attachment
}

// attachment is a route attached to a listener, with the hostnames it serves there.
type attachment struct {
	route    *route
	listener *listener
	// hostnames: the intersection of the route's and the listener's; nil: any host.
	hostnames []string
}

// collectRoutes gathers every route of every kind, compiled, in a stable order. A route the
// translator's memory holds compiled from the same object, with the same Services and
// ReferenceGrants, takes that compilation instead (memo.go).
func (t *translation) collectRoutes() []*route {
	var rs []*route
	// add makes the route of object m and reports whether it still needs compiling.
	add := func(kind string, m metav1.ObjectMeta, refs []gwv1.ParentReference, hosts []gwv1.Hostname) (*route, bool) {
		r := &route{kind: kind, ns: m.Namespace, name: m.Name, generation: m.Generation, created: m.CreationTimestamp, parentRefs: refs, hostnames: hosts}
		rs = append(rs, r)
		return r, !t.memo.recall(r, m)
	}
	for i := range t.in.HTTPRoutes {
		o := &t.in.HTTPRoutes[i]
		if r, compile := add(KindHTTPRoute, o.ObjectMeta, o.Spec.ParentRefs, o.Spec.Hostnames); compile {
			t.compileHTTP(r, o)
			t.memo.keep(r, o.ObjectMeta)
		}
	}
	for i := range t.in.GRPCRoutes {
		o := &t.in.GRPCRoutes[i]
		if r, compile := add(KindGRPCRoute, o.ObjectMeta, o.Spec.ParentRefs, o.Spec.Hostnames); compile {
			t.compileGRPC(r, o)
			t.memo.keep(r, o.ObjectMeta)
		}
	}
	for i := range t.in.TLSRoutes {
		o := &t.in.TLSRoutes[i]
		if r, compile := add(KindTLSRoute, o.ObjectMeta, o.Spec.ParentRefs, o.Spec.Hostnames); compile {
			for j, rule := range o.Spec.Rules {
				t.compileL4(r, j, rule.Name, rule.BackendRefs)
			}
			t.memo.keep(r, o.ObjectMeta)
		}
	}
	for i := range t.in.TCPRoutes {
		o := &t.in.TCPRoutes[i]
		if r, compile := add(KindTCPRoute, o.ObjectMeta, o.Spec.ParentRefs, nil); compile {
			for j, rule := range o.Spec.Rules {
				t.compileL4(r, j, rule.Name, rule.BackendRefs)
			}
			t.memo.keep(r, o.ObjectMeta)
		}
	}
	for i := range t.in.UDPRoutes {
		o := &t.in.UDPRoutes[i]
		if r, compile := add(KindUDPRoute, o.ObjectMeta, o.Spec.ParentRefs, nil); compile {
			for j, rule := range o.Spec.Rules {
				t.compileL4(r, j, rule.Name, rule.BackendRefs)
			}
			t.memo.keep(r, o.ObjectMeta)
		}
	}
	slices.SortStableFunc(rs, func(a, b *route) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), strings.Compare(a.ns, b.ns), strings.Compare(a.name, b.name))
	})
	return rs
}

// parentKey tells one parentRef from another: the same Gateway, section and port twice are one.
type parentKey struct {
	gw      *gateway
	set     *listenerSet
	section gwv1.SectionName
	port    gwv1.PortNumber
}

// attachRoutes decides, for every parentRef naming one of our Gateways, which listeners take
// the route, and records the attachments on the listeners.
func (t *translation) attachRoutes() []*route {
	rs := t.collectRoutes()
	for _, r := range rs {
		var seen []parentKey // a route names few parents: a slice, not a map per route
		// The listeners r is attached to so far: a route counts once per listener. (Looking
		// for r among a listener's attachments instead made 1,000 routes a million compares.)
		var on []*listener
		for _, ref := range r.parentRefs {
			kind := string(ptrOr(ref.Kind, KindGateway))
			if ref.Group != nil && string(*ref.Group) != Group || kind != KindGateway && kind != KindListenerSet {
				continue // not a Gateway or a ListenerSet (a mesh Service, say): not ours to answer
			}
			ns := r.ns
			if ref.Namespace != nil {
				ns = string(*ref.Namespace)
			}
			var (
				gw  *gateway
				set *listenerSet
			)
			if kind == KindListenerSet {
				if set = t.listenerSets[key(ns, string(ref.Name))]; set != nil {
					gw = set.gw
				}
			} else {
				gw = t.gateways[key(ns, string(ref.Name))]
			}
			if gw == nil {
				continue // not one of our Gateways or theirs (or not yet known): another controller's to answer
			}
			id := parentKey{gw, set, ptrOr(ref.SectionName, ""), ptrOr(ref.Port, 0)}
			if slices.Contains(seen, id) {
				continue
			}
			seen = append(seen, id)
			p := &parentResult{ref: ref, gw: gw, set: set}
			r.parents = append(r.parents, p)
			t.attach(r, p)
			if p.acceptReason == "" && !r.usable() {
				p.acceptReason = cmp.Or(r.droppedReason, string(gwv1.RouteReasonUnsupportedValue))
				p.acceptMsg = "the route has no rules"
				if len(r.dropped) > 0 {
					p.acceptMsg = "no rule is valid: " + strings.Join(r.dropped, "; ")
				}
				p.attachments = nil
			}
			if p.acceptReason != "" {
				t.event(r.kind, r.ns, r.name, p.acceptReason, "parentRef %s: %s", p.String(), p.acceptMsg)
			}
			for _, a := range p.attachments {
				if !slices.Contains(on, a.listener) {
					on = append(on, a.listener)
					a.listener.attached = append(a.listener.attached, a)
				}
			}
		}
		for _, m := range r.refsMsgs {
			if len(r.parents) > 0 {
				t.event(r.kind, r.ns, r.name, r.refsReason, "%s", m)
			}
		}
		if len(r.dropped) > 0 && r.usable() && len(r.parents) > 0 {
			t.event(r.kind, r.ns, r.name, string(gwv1.RouteConditionPartiallyInvalid), "Dropped Rule(s): %s", strings.Join(r.dropped, "; "))
		}
	}
	return rs
}

// attach matches one parentRef against the Gateway's listeners.
func (t *translation) attach(r *route, p *parentResult) {
	of, listeners := "the Gateway", p.gw.listeners
	if p.set != nil {
		of, listeners = "the ListenerSet", p.set.listeners
		if p.set.notAllowed != "" {
			p.acceptReason = string(gwv1.RouteReasonNotAllowedByListeners)
			p.acceptMsg = "the ListenerSet is not attached to its Gateway: " + p.set.notAllowed
			return
		}
	}
	var candidates []*listener
	for _, l := range listeners {
		if p.ref.SectionName != nil && *p.ref.SectionName != l.spec.Name {
			continue
		}
		if p.ref.Port != nil && *p.ref.Port != l.spec.Port {
			continue
		}
		candidates = append(candidates, l)
	}
	if len(candidates) == 0 {
		p.acceptReason = string(gwv1.RouteReasonNoMatchingParent)
		p.acceptMsg = "no listener of " + of + " has the parentRef's sectionName and port"
		return
	}
	hostnameMiss := false
	for _, l := range candidates {
		if !l.accepted() || !l.allowsKind(r.kind) || !t.allowsNamespace(l, r.ns) {
			continue
		}
		hosts, ok := intersect(r.hostnames, l.hostname(), r.kind)
		if !ok {
			hostnameMiss = true
			continue
		}
		p.attachments = append(p.attachments, &attachment{route: r, listener: l, hostnames: hosts})
	}
	switch {
	case len(p.attachments) > 0:
	case hostnameMiss:
		p.acceptReason = string(gwv1.RouteReasonNoMatchingListenerHostname)
		p.acceptMsg = "none of the route's hostnames matches the hostname of a listener that allows it"
	default:
		p.acceptReason = string(gwv1.RouteReasonNotAllowedByListeners)
		p.acceptMsg = fmt.Sprintf("no valid listener of %s allows a %s from namespace %s", of, r.kind, r.ns)
	}
}

func (l *listener) allowsKind(kind string) bool {
	return slices.ContainsFunc(l.kinds, func(k gwv1.RouteGroupKind) bool { return string(k.Kind) == kind })
}

func (t *translation) allowsNamespace(l *listener, ns string) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		sel = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSame:
		return ns == l.ns()
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		var lbls labels.Set
		if n := t.namespaces[ns]; n != nil {
			lbls = n.Labels
		}
		return s.Matches(lbls)
	}
	return false
}

// intersect is the hostnames a route serves on a listener (nil: any) and whether it may attach.
// TCP and UDP routes have no hostnames and attach whatever the listener's.
func intersect(routeHosts []gwv1.Hostname, listenerHost, kind string) ([]string, bool) {
	if kind == KindTCPRoute || kind == KindUDPRoute {
		return nil, true
	}
	if len(routeHosts) == 0 {
		if listenerHost == "" {
			return nil, true
		}
		return []string{listenerHost}, true
	}
	var out []string
	for _, h := range routeHosts {
		rh := string(h)
		if listenerHost == "" {
			out = append(out, rh)
			continue
		}
		switch {
		case rh == listenerHost:
			out = append(out, rh)
		case strings.HasPrefix(listenerHost, "*.") && hostMatches(listenerHost, rh):
			out = append(out, rh) // the route's name is the narrower (exact, or a deeper wildcard)
		case strings.HasPrefix(rh, "*.") && hostMatches(rh, listenerHost):
			out = append(out, listenerHost)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out, len(out) > 0
}

// hostMatches: wildcard "*.suffix" covers name (exact, or a wildcard under the suffix).
func hostMatches(wildcard, name string) bool {
	suffix := strings.TrimPrefix(wildcard, "*")
	return strings.HasSuffix(strings.TrimPrefix(name, "*"), suffix) && len(strings.TrimPrefix(name, "*")) > len(suffix)
}

// String names the parentRef: Gateway (or ListenerSet) namespace/name, then /sectionName and
// :port if set.
func (p *parentResult) String() string {
	ref := p.ref
	s := "Gateway " + p.gw.key()
	if p.set != nil {
		s = "ListenerSet " + p.set.key()
	}
	if ref.SectionName != nil {
		s += "/" + string(*ref.SectionName)
	}
	if ref.Port != nil {
		s += fmt.Sprintf(":%d", *ref.Port)
	}
	return s
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// parentStatuses is the route's status for each of our parents.
func (r *route) parentStatuses() []gwv1.RouteParentStatus {
	out := make([]gwv1.RouteParentStatus, 0, len(r.parents))
	for _, p := range r.parents {
		conds := make([]metav1.Condition, 0, 3)
		if p.acceptReason == "" {
			conds = append(conds, condition(string(gwv1.RouteConditionAccepted), true, string(gwv1.RouteReasonAccepted), "accepted", r.generation))
		} else {
			conds = append(conds, condition(string(gwv1.RouteConditionAccepted), false, p.acceptReason, p.acceptMsg, r.generation))
		}
		if r.refsReason == "" {
			conds = append(conds, condition(string(gwv1.RouteConditionResolvedRefs), true, string(gwv1.RouteReasonResolvedRefs), "resolved", r.generation))
		} else {
			conds = append(conds, condition(string(gwv1.RouteConditionResolvedRefs), false, r.refsReason, strings.Join(r.refsMsgs, "; "), r.generation))
		}
		if p.acceptReason == "" && len(r.dropped) > 0 {
			conds = append(conds, condition(string(gwv1.RouteConditionPartiallyInvalid), true, string(gwv1.RouteReasonUnsupportedValue),
				"Dropped Rule(s): "+strings.Join(r.dropped, "; "), r.generation))
		}
		out = append(out, gwv1.RouteParentStatus{ParentRef: p.ref, ControllerName: p.gw.tr.controller, Conditions: conds})
	}
	return out
}
