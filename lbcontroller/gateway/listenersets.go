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

// ListenerSets: listeners declared beside a Gateway, in objects of their own (often in the
// application teams' namespaces), that the Gateway takes when its spec.allowedListeners lets
// it. The Gateway's load balancer serves them as its own listeners: one address, one cloud
// load balancer. What differs is whose they are:
//   - precedence: the Gateway's own listeners first, then the ListenerSets oldest first, then
//     by namespace/name; a listener that conflicts with an accepted one of higher precedence is
//     refused (Conflicted, with the conflict as the reason of Accepted and Programmed) and the
//     other keeps serving. Among the rest of one ListenerSet, conflicting listeners are all
//     refused, as a Gateway's own are.
//   - namespace: allowedRoutes' Same is the ListenerSet's namespace, and so is a certificate
//     reference's default; a reference to another namespace needs a ReferenceGrant from
//     ListenerSets of that namespace (the Gateway's grants are not inherited).
//   - attachment: a route attaches to a ListenerSet's listeners by naming the ListenerSet as
//     its parent; a parentRef to the Gateway (with or without a sectionName) means the
//     Gateway's own listeners only.
//   - status: the ListenerSet's own (Accepted, Programmed, and its listeners'), and the
//     Gateway's attachedListenerSets.

// KindListenerSet is the kind of ListenerSets.
const KindListenerSet = "ListenerSet"

// reasonParentNotProgrammed is the reason of a ListenerSet's Programmed False while its Gateway
// is not programmed (the spec lists it; v1.6.3 has no constant for it).
const reasonParentNotProgrammed gwv1.ListenerSetConditionReason = "ParentNotProgrammed"

// listenerSet is a ListenerSet whose parent is one of our Gateways.
type listenerSet struct {
	obj *gwv1.ListenerSet
	gw  *gateway
	// notAllowed says why the Gateway does not take it ("": it does).
	notAllowed string
	listeners  []*listener
	// accepted and programmed are its status, once gatewayStatus has decided the Gateway's.
	accepted, programmed bool
}

func (s *listenerSet) key() string { return key(s.obj.Namespace, s.obj.Name) }

// ListenerSetStatus is the status of one ListenerSet whose parent is one of our Gateways.
type ListenerSetStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Gateway is the parent's namespace/name.
	Gateway string                 `json:"gateway"`
	Status  gwv1.ListenerSetStatus `json:"status"`
}

// indexListenerSets files every ListenerSet under the Gateway its parentRef names, in
// precedence order (oldest first, then namespace/name).
func (t *translation) indexListenerSets() {
	for i := range t.in.ListenerSets {
		ls := &t.in.ListenerSets[i]
		if k, ok := ListenerSetParent(ls); ok {
			t.setsByParent[k] = append(t.setsByParent[k], ls)
		}
	}
	for _, sets := range t.setsByParent {
		slices.SortFunc(sets, func(a, b *gwv1.ListenerSet) int {
			if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
				return c
			}
			return strings.Compare(key(a.Namespace, a.Name), key(b.Namespace, b.Name))
		})
	}
}

// ListenerSetParent is the namespace/name of the Gateway ls names as its parent; false when its
// parent is of another kind (not ours to answer).
func ListenerSetParent(ls *gwv1.ListenerSet) (string, bool) {
	ref := ls.Spec.ParentRef
	if ref.Group != nil && string(*ref.Group) != Group || ref.Kind != nil && string(*ref.Kind) != KindGateway {
		return "", false
	}
	return key(string(ptrOr(ref.Namespace, gwv1.Namespace(ls.Namespace))), string(ref.Name)), true
}

// buildListenerSets takes the ListenerSets of Gateway g that its allowedListeners lets attach,
// validates their listeners in precedence order, and refuses those that conflict with a
// listener of higher precedence.
func (t *translation) buildListenerSets(g *gateway) {
	taken := slices.Clone(g.listeners)
	for _, obj := range t.setsByParent[g.key()] {
		s := &listenerSet{obj: obj, gw: g}
		t.listenerSets[s.key()] = s
		g.sets = append(g.sets, s)
		if why := t.listenersAllowed(g, obj.Namespace); why != "" {
			s.notAllowed = why
			t.event(KindListenerSet, obj.Namespace, obj.Name, string(gwv1.ListenerSetReasonNotAllowed), "%s", why)
			continue
		}
		names := map[gwv1.SectionName]bool{}
		for _, e := range obj.Spec.Listeners {
			if names[e.Name] {
				continue // the API server refuses duplicate names; a snapshot may not have
			}
			names[e.Name] = true
			s.listeners = append(s.listeners, t.listener(g, s, gwv1.Listener(e)))
		}
		// First what listeners of higher precedence hold, then conflicts among the rest.
		mixed := !t.in.NoTLSRouteTermination
		markTaken(taken, s.listeners, mixed)
		markConflicts(slices.DeleteFunc(slices.Clone(s.listeners), func(l *listener) bool { return l.conflictReason != "" }), mixed)
		for _, l := range s.listeners {
			t.finishListener(l)
		}
		taken = append(taken, s.listeners...)
	}
}

// listenersAllowed says why Gateway g does not take ListenerSets of namespace ns ("": it does).
func (t *translation) listenersAllowed(g *gateway, ns string) string {
	al := g.obj.Spec.AllowedListeners
	if al == nil || al.Namespaces == nil || al.Namespaces.From == nil || *al.Namespaces.From == gwv1.NamespacesFromNone {
		return fmt.Sprintf("Gateway %s does not allow ListenerSets (spec.allowedListeners.namespaces.from is None, the default)", g.key())
	}
	switch from := *al.Namespaces.From; from {
	case gwv1.NamespacesFromAll:
		return ""
	case gwv1.NamespacesFromSame:
		if ns == g.obj.Namespace {
			return ""
		}
		return fmt.Sprintf("Gateway %s allows ListenerSets of its own namespace only (spec.allowedListeners.namespaces.from: Same)", g.key())
	case gwv1.NamespacesFromSelector:
		sel := al.Namespaces.Selector
		if sel == nil {
			return fmt.Sprintf("Gateway %s allows ListenerSets by a namespace selector but gives none", g.key())
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return fmt.Sprintf("Gateway %s: spec.allowedListeners.namespaces.selector is not valid: %v", g.key(), err)
		}
		var lbls labels.Set
		if n := t.namespaces[ns]; n != nil {
			lbls = n.Labels
		}
		if s.Matches(lbls) {
			return ""
		}
		return fmt.Sprintf("namespace %s does not match the namespace selector of Gateway %s (spec.allowedListeners.namespaces.selector)", ns, g.key())
	default:
		return fmt.Sprintf("Gateway %s: spec.allowedListeners.namespaces.from %q is not known", g.key(), from)
	}
}

// markTaken refuses each listener of later that a listener of higher precedence (taken: the
// Gateway's own, and older ListenerSets') that is accepted conflicts with: on its port and
// transport, another protocol or TLS mode, or a TCP or UDP listener (ProtocolConflict), or the
// same hostname (HostnameConflict). The listener taken first keeps its port and name.
func markTaken(taken, later []*listener, mixedTLS bool) {
	for _, l := range later {
		if l.class == "" || l.conflictReason != "" {
			continue
		}
		for _, e := range taken {
			if !e.accepted() || e.class == "" || e.spec.Port != l.spec.Port || transport(e.class) != transport(l.class) {
				continue
			}
			switch {
			case portClass(e.class, mixedTLS) != portClass(l.class, mixedTLS) || l.class == ProtocolTCP || l.class == ProtocolUDP:
				l.conflictReason = string(gwv1.ListenerReasonProtocolConflict)
				l.conflictMsg = fmt.Sprintf("%s port %d is taken by %s (%s), which has precedence: give this listener another port",
					transport(l.class), l.spec.Port, e.qualified(), e.spec.Protocol)
			case e.hostname() == l.hostname():
				l.conflictReason = string(gwv1.ListenerReasonHostnameConflict)
				what := fmt.Sprintf("hostname %q", l.hostname())
				if l.hostname() == "" {
					what = "no hostname"
				}
				l.conflictMsg = fmt.Sprintf("%s on port %d is taken by %s, which has precedence: give this listener another hostname or port",
					what, l.spec.Port, e.qualified())
			}
			if l.conflictReason != "" {
				break
			}
		}
	}
}

// allListeners are the listeners the Gateway's load balancer serves from: its own, then those
// of the ListenerSets it takes.
func (g *gateway) allListeners() []*listener {
	ls := g.listeners
	for _, s := range g.sets {
		if s.notAllowed == "" {
			ls = append(slices.Clip(ls), s.listeners...)
		}
	}
	return ls
}

// decideListenerSets settles each of g's ListenerSets' Accepted and Programmed, once the
// Gateway's are known, and returns how many are accepted (attachedListenerSets).
func (g *gateway) decideListenerSets(gwAccepted, programmed bool) int32 {
	var n int32
	for _, s := range g.sets {
		s.accepted = gwAccepted && s.notAllowed == "" && slices.ContainsFunc(s.listeners, (*listener).serving)
		s.programmed = s.accepted && programmed
		if s.accepted {
			n++
		}
	}
	return n
}

// listenerSetStatus is the status of ListenerSet s (after decideListenerSets).
func (t *translation) listenerSetStatus(s *listenerSet) ListenerSetStatus {
	gen := s.obj.Generation
	cond := func(typ gwv1.ListenerSetConditionType, ok bool, reason gwv1.ListenerSetConditionReason, msg string) metav1.Condition {
		return condition(string(typ), ok, string(reason), msg, gen)
	}
	var st gwv1.ListenerSetStatus
	both := func(reason gwv1.ListenerSetConditionReason, msg string) {
		st.Conditions = []metav1.Condition{cond(gwv1.ListenerSetConditionAccepted, false, reason, msg),
			cond(gwv1.ListenerSetConditionProgrammed, false, reason, msg)}
	}
	var bad []string
	for _, l := range s.listeners {
		if !l.serving() {
			bad = append(bad, string(l.spec.Name))
		}
	}
	switch {
	case s.notAllowed != "":
		both(gwv1.ListenerSetReasonNotAllowed, s.notAllowed)
	case !s.gw.accepted:
		msg := fmt.Sprintf("the parent Gateway %s is not accepted: see its Accepted condition", s.gw.key())
		st.Conditions = []metav1.Condition{cond(gwv1.ListenerSetConditionAccepted, false, gwv1.ListenerSetReasonParentNotAccepted, msg),
			cond(gwv1.ListenerSetConditionProgrammed, false, reasonParentNotProgrammed, msg)}
	case !s.accepted:
		both(gwv1.ListenerSetReasonListenersNotValid, "no listener is valid: see the listeners' conditions")
	default:
		acc := cond(gwv1.ListenerSetConditionAccepted, true, gwv1.ListenerSetReasonAccepted, "attached to Gateway "+s.gw.key())
		if len(bad) > 0 {
			acc = cond(gwv1.ListenerSetConditionAccepted, true, gwv1.ListenerSetReasonListenersNotValid,
				fmt.Sprintf("listeners %s are not valid and are left out (see their conditions); the others are served", strings.Join(bad, ", ")))
		}
		prog := cond(gwv1.ListenerSetConditionProgrammed, true, gwv1.ListenerSetReasonProgrammed, "the Gateway's load balancers serve its listeners")
		if !s.programmed {
			prog = cond(gwv1.ListenerSetConditionProgrammed, false, reasonParentNotProgrammed,
				"waiting for the cloud to program the Gateway's load balancers (see the Gateway's Programmed condition)")
		}
		st.Conditions = []metav1.Condition{acc, prog}
	}
	if s.notAllowed == "" {
		st.Listeners = make([]gwv1.ListenerEntryStatus, 0, len(s.listeners))
		for _, l := range s.listeners {
			ls := l.status(gen, s.gw.accepted, s.programmed, "waiting for the cloud to program the Gateway's load balancers")
			if l.conflictReason != "" {
				// A listener refused for a conflict says so in Programmed too.
				for i := range ls.Conditions {
					if ls.Conditions[i].Type == string(gwv1.ListenerConditionProgrammed) {
						ls.Conditions[i].Reason = l.conflictReason
					}
				}
			}
			st.Listeners = append(st.Listeners, gwv1.ListenerEntryStatus(ls))
		}
	}
	return ListenerSetStatus{Namespace: s.obj.Namespace, Name: s.obj.Name, Gateway: s.gw.key(), Status: st}
}

// listenerSetStatuses are the statuses of every ListenerSet of our Gateways, by namespace/name.
func (t *translation) listenerSetStatuses(gws []*gateway) []ListenerSetStatus {
	var out []ListenerSetStatus
	for _, g := range gws {
		for _, s := range g.sets {
			out = append(out, t.listenerSetStatus(s))
		}
	}
	slices.SortFunc(out, func(a, b ListenerSetStatus) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}
