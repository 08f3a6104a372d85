package lbcontroller

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/event"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/providers"
)

// cloudStates is told the load balancer states of the cloud's change stream (full: the event
// lists every load balancer, so one not listed is gone). A Gateway whose load balancer's state
// is not the one its last pass saw (it failed, recovered, or went away) is deployed again by
// a pass started here: a Gateway that was Programmed says so no longer once its load balancer
// fails, and says so again once it recovers, without waiting for a change in the cluster.
// The rule cache's remembered passes are told as well, so that the pass reads the load
// balancer afresh rather than answering from before the change.
func (r *gatewayReconciler) cloudStates(full bool, lbs []providers.LoadBalancerState) {
	changed := r.stateChanges(full, lbs)
	if len(changed) == 0 {
		return // a load balancer's tags or attributes, say: not its state
	}
	if r.rules != nil {
		r.rules.LoadBalancerStates(changed)
	}
	seen := make(map[string]providers.LoadBalancerState, len(changed))
	for _, lb := range changed {
		seen[lb.ID] = lb
	}
	r.mu.Lock()
	r.reports.Record(changed, func() map[string]bool {
		inUse := map[string]bool{}
		for _, rec := range r.records {
			for id := range rec.cloud {
				inUse[id] = true
			}
		}
		return inUse
	})
	var moved []string
	for key, rec := range r.records {
		for id, was := range rec.cloud {
			if now, ok := seen[id]; ok && (now.Gone || now.State != was.State || now.Reason != was.Reason) {
				// Deployed again at the next pass, which then records what it sees.
				rec.deployed, rec.cloud = 0, nil
				moved = append(moved, key)
				break
			}
		}
	}
	r.mu.Unlock()
	if len(moved) == 0 {
		return
	}
	r.log.V(1).Info("a Gateway's load balancer changed state in the cloud; deploying it again", "gateways", moved)
	if r.wake != nil {
		select {
		case r.wake <- event.GenericEvent{Object: &gwv1.Gateway{}}:
		default: // a pass is queued already
		}
	}
}

// stateChanges keeps the states the change stream reported and returns those that changed
// (a load balancer new to it, gone, or in another state); with full, every load balancer not
// listed is gone.
func (r *gatewayReconciler) stateChanges(full bool, lbs []providers.LoadBalancerState) []providers.LoadBalancerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known == nil {
		r.known = map[string]providers.LoadBalancerState{}
	}
	var changed []providers.LoadBalancerState
	listed := make(map[string]bool, len(lbs))
	for _, lb := range lbs {
		listed[lb.ID] = true
		was, ok := r.known[lb.ID]
		switch {
		case lb.Gone:
			if ok {
				delete(r.known, lb.ID)
				changed = append(changed, lb)
			}
		case !ok || was.State != lb.State || was.Reason != lb.Reason:
			r.known[lb.ID] = lb
			changed = append(changed, lb)
		}
	}
	if full {
		for id := range r.known {
			if !listed[id] {
				delete(r.known, id)
				changed = append(changed, providers.LoadBalancerState{ID: id, Gone: true})
			}
		}
	}
	return changed
}

// recheckLocked says how soon a Gateway whose pass saw its load balancers in states cloud is
// to be deployed again (0: not before its next change). A pass during which the change stream
// reported one of them (after report count since) may have read it from before the report:
// raceRecheck. One whose state the stream shows otherwise than the pass read (a poll-driven
// stream behind the pass's own read, or a state it never saw because it came and went
// between two polls) is looked at again every disagreeRecheck until the two agree: the
// stream reports no change of a state it never saw, so a recovery would otherwise wait for
// the failed load balancer's 30 s safety net. r.mu is held.
func (r *gatewayReconciler) recheckLocked(cloud map[string]providers.LoadBalancerState, since uint64) time.Duration {
	var d time.Duration
	for id, saw := range cloud {
		if r.reports.Since(id, since) {
			return raceRecheck
		}
		if k, ok := r.known[id]; ok && (k.State != saw.State || k.Reason != saw.Reason) {
			d = disagreeRecheck
		}
	}
	return d
}

// raceRecheck is how soon a Gateway is deployed again when the change stream reported one of
// its load balancers during its pass; disagreeRecheck, while the stream shows one of them in
// another state than its pass read.
const (
	raceRecheck     = 100 * time.Millisecond
	disagreeRecheck = time.Second
)
