package lbcontroller

import (
	"net/netip"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flatnet/flatnet/providers"
)

// state is what the reconcilers share in memory. None of it is needed to be correct after a
// restart: the cloud is read again through tags, pending times restart empty (a change seen by
// no one is not measured), and health comes back with the watch's first full snapshot.
type state struct {
	mu sync.Mutex
	// pending is when the controller first saw an EndpointSlice change of a Service that is
	// not programmed yet (the start of flatnet_lb_endpoints_programmed_seconds).
	pending map[types.NamespacedName]time.Time
	// services are what each Service's last successful deploy left: its groups and which pod
	// stands behind each target, for the readiness gates.
	services map[types.NamespacedName]serviceRecord
	// health is every target's state, by group, from the cloud's change stream.
	health map[string]map[providers.Target]string
	// healthSynced turns true once the watch delivered its first full view.
	healthSynced bool
	// byTarget finds the pod behind a target (group ID, target) to wake its gate.
	byTarget map[string]map[providers.Target]types.NamespacedName
	// gateways are, per Gateway (namespace/name), the target groups its last deploy left for
	// each backend Service: the readiness gates of the pods those Services select wait for them.
	gateways map[string]map[types.NamespacedName][]string
	// wake receives pods whose gate may have to change.
	wake chan types.NamespacedName
	// svcWake receives Services whose load balancer changed state in the cloud.
	svcWake chan types.NamespacedName
	// lbStates, once the Gateway controller runs, is told every load balancer state the change
	// stream reports (full: the event lists every load balancer), so that a Gateway's
	// conditions follow its load balancers' states as a Service's do.
	lbStates func(full bool, lbs []providers.LoadBalancerState)
}

type serviceRecord struct {
	loadBalancer string
	targetGroups []string
}

func newState() *state {
	return &state{
		pending:  map[types.NamespacedName]time.Time{},
		services: map[types.NamespacedName]serviceRecord{},
		gateways: map[string]map[types.NamespacedName][]string{},
		health:   map[string]map[providers.Target]string{},
		byTarget: map[string]map[providers.Target]types.NamespacedName{},
		wake:     make(chan types.NamespacedName, 4096),
		svcWake:  make(chan types.NamespacedName, 1024),
	}
}

// sawSliceChange records a slice change of svc at now, keeping the oldest unprogrammed one.
func (s *state) sawSliceChange(svc types.NamespacedName, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[svc]; !ok {
		s.pending[svc] = now
	}
}

// takePending removes and returns svc's pending change time (zero if none). A reconcile that
// fails puts it back with restorePending, so the next success measures from the first change.
func (s *state) takePending(svc types.NamespacedName) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.pending[svc]
	delete(s.pending, svc)
	return t
}

func (s *state) restorePending(svc types.NamespacedName, t time.Time) {
	if t.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.pending[svc]; !ok || t.Before(cur) {
		s.pending[svc] = t
	}
}

// recordService stores what a deploy left and which pods stand behind the targets; it returns
// the pods whose gates may change (those of this deploy and of the one before).
func (s *state) recordService(svc types.NamespacedName, loadBalancer string, groups map[string][]podTarget) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wake []types.NamespacedName
	for _, g := range s.services[svc].targetGroups {
		for _, pod := range s.byTarget[g] {
			wake = append(wake, pod)
		}
		delete(s.byTarget, g)
	}
	rec := serviceRecord{loadBalancer: loadBalancer}
	for id, targets := range groups {
		rec.targetGroups = append(rec.targetGroups, id)
		m := make(map[providers.Target]types.NamespacedName, len(targets))
		for _, t := range targets {
			if t.pod.Name != "" {
				m[t.target] = t.pod
				wake = append(wake, t.pod)
			}
		}
		s.byTarget[id] = m
	}
	s.services[svc] = rec
	return wake
}

// recordGateway stores the target groups a Gateway's deploy left, by backend Service, and which
// pods stand behind their targets (groups: cloud group ID -> targets); it returns the pods whose
// gates may change. nil groups forget the Gateway.
func (s *state) recordGateway(gw string, backends map[types.NamespacedName][]string, groups map[string][]podTarget) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wake []types.NamespacedName
	for _, ids := range s.gateways[gw] {
		for _, g := range ids {
			for _, pod := range s.byTarget[g] {
				wake = append(wake, pod)
			}
			delete(s.byTarget, g)
		}
	}
	if backends == nil {
		delete(s.gateways, gw)
		return wake
	}
	for id, targets := range groups {
		m := make(map[providers.Target]types.NamespacedName, len(targets))
		for _, t := range targets {
			if t.pod.Name != "" {
				m[t.target] = t.pod
				wake = append(wake, t.pod)
			}
		}
		s.byTarget[id] = m
	}
	s.gateways[gw] = backends
	return wake
}

// gatewayGroups returns the target groups of every Gateway backend Service in namespace ns
// whose selector matches, by Service.
func (s *state) gatewayGroups(ns string, selects func(types.NamespacedName) bool) map[types.NamespacedName][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[types.NamespacedName][]string{}
	for _, backends := range s.gateways {
		for svc, ids := range backends {
			if svc.Namespace == ns && selects(svc) {
				out[svc] = append(out[svc], ids...)
			}
		}
	}
	return out
}

type podTarget struct {
	target providers.Target
	pod    types.NamespacedName
}

// forgetService drops a Service's record and returns the pods that stood behind it.
func (s *state) forgetService(svc types.NamespacedName) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wake []types.NamespacedName
	for _, g := range s.services[svc].targetGroups {
		for _, pod := range s.byTarget[g] {
			wake = append(wake, pod)
		}
		delete(s.byTarget, g)
	}
	delete(s.services, svc)
	delete(s.pending, svc)
	return wake
}

// applyHealth folds a watch event into the health view and returns the pods to wake.
func (s *state) applyHealth(ev providers.HealthEvent) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wake []types.NamespacedName
	if ev.Full {
		s.health = map[string]map[providers.Target]string{}
		s.healthSynced = true
		for _, m := range s.byTarget {
			for _, pod := range m {
				wake = append(wake, pod)
			}
		}
	}
	for _, th := range ev.Targets {
		g := s.health[th.TargetGroupID]
		if g == nil {
			g = map[providers.Target]string{}
			s.health[th.TargetGroupID] = g
		}
		if th.Gone {
			delete(g, th.Target)
		} else {
			g[th.Target] = th.State
		}
		if pod, ok := s.byTarget[th.TargetGroupID][th.Target]; ok && !ev.Full {
			wake = append(wake, pod)
		}
	}
	return wake
}

// gate is the verdict of a pod's readiness gate.
type gate struct {
	ready  bool
	reason string
	msg    string
}

// podHealth says whether ip is healthy in every group of the Services in svcs and of the
// Gateway backends in gatewayGroups (Service -> groups).
func (s *state) podHealth(ip netip.Addr, svcs []types.NamespacedName, gatewayGroups map[types.NamespacedName][]string) gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.healthSynced {
		return gate{reason: "WaitingForHealth", msg: "the controller has not read target health from the cloud yet"}
	}
	for _, svc := range svcs {
		rec, ok := s.services[svc]
		if !ok {
			return gate{reason: "WaitingForLoadBalancer", msg: "the load balancer of Service " + svc.String() + " is not programmed yet"}
		}
		if g, bad := groupsHealth(s.health, ip, rec.targetGroups, "Service "+svc.String()); bad {
			return g
		}
	}
	for svc, groups := range gatewayGroups {
		if g, bad := groupsHealth(s.health, ip, groups, "Gateway backend Service "+svc.String()); bad {
			return g
		}
	}
	return gate{ready: true, reason: "TargetsHealthy", msg: "healthy in every target group of the Services that select the pod"}
}

// groupsHealth says whether ip is healthy in every group; bad with the verdict when it is not.
func groupsHealth(health map[string]map[providers.Target]string, ip netip.Addr, groups []string, what string) (gate, bool) {
	for _, g := range groups {
		found := false
		for t, st := range health[g] {
			if t.IP != ip {
				continue
			}
			found = true
			if st != providers.HealthHealthy {
				return gate{reason: "Target" + titleState(st), msg: "target " + t.IP.String() + " is " + st + " in target group " + g + " of " + what}, true
			}
		}
		if !found {
			return gate{reason: "TargetNotRegistered", msg: "the pod is not registered in target group " + g + " of " + what}, true
		}
	}
	return gate{}, false
}

func titleState(s string) string {
	if s == "" {
		return "Unknown"
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// notify queues pods for the readiness-gate reconciler without ever blocking a caller: a full
// queue drops the wake-up, and the gate reconciler's periodic resync catches up.
func (s *state) notify(pods []types.NamespacedName) {
	for _, p := range pods {
		select {
		case s.wake <- p:
		default:
		}
	}
}

// servicesOfLBs returns the Services whose load balancer is among lbs.
func (s *state) servicesOfLBs(lbs []providers.LoadBalancerState) []types.NamespacedName {
	if len(lbs) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(lbs))
	for _, lb := range lbs {
		ids[lb.ID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []types.NamespacedName
	for svc, rec := range s.services {
		if ids[rec.loadBalancer] {
			out = append(out, svc)
		}
	}
	return out
}

// onLoadBalancerStates sets who is told the load balancer states of the change stream.
func (s *state) onLoadBalancerStates(fn func(full bool, lbs []providers.LoadBalancerState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lbStates = fn
}

// loadBalancerStates hands the states of a change stream event to the Gateway controller.
func (s *state) loadBalancerStates(full bool, lbs []providers.LoadBalancerState) {
	s.mu.Lock()
	fn := s.lbStates
	s.mu.Unlock()
	if fn != nil && (full || len(lbs) > 0) {
		fn(full, lbs)
	}
}

// notifyServices queues Services for the Service reconciler without blocking; a full queue
// drops the wake-up, and the reconciler's own requeue of a load balancer that is not active
// yet catches up.
func (s *state) notifyServices(svcs []types.NamespacedName) {
	for _, k := range svcs {
		select {
		case s.svcWake <- k:
		default:
		}
	}
}
