package fabric

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// LBStateReporter receives the data plane's verdict on each load balancer: active once the
// kernel runs its current configuration, failed with the reason when a step failed.
// *state.Store satisfies it in-process.
type LBStateReporter interface {
	ReportLoadBalancerState(reports []api.LoadBalancerStateReport) error
}

// FaultInjector fails data-plane operations on purpose (api.DataPlane* names): it returns the
// error an operation on object (a load balancer, route or port's ID) is to fail with, or nil.
// The API server's fault injection satisfies it (its faults are per operation, whatever the
// object), so `fakecloud fault set --action DataPlane.ProgramLoadBalancer` reaches the fabric.
type FaultInjector interface {
	DataPlaneFault(op, object string) error
}

// The data-plane operations faults can target, as the fabric's steps name them.
const (
	opEnsureLB  = api.DataPlaneEnsureLoadBalancer
	opProgramLB = api.DataPlaneProgramLoadBalancer
	opSetRoute  = api.DataPlaneSetRoute
	opAddPort   = api.DataPlaneAddPort
)

// lbStep runs one data-plane step of a load balancer, unless a fault is injected for it, and
// records a failure against the load balancer, whose state then says failed with the reason.
func (f *Fabric) lbStep(id, op string, step func() error) error {
	err := f.injected(op, id)
	if err == nil {
		err = step()
	}
	if err != nil && f.lbErrs != nil {
		f.lbErrs[id] = err
	}
	return err
}

// lbStatus is a load balancer's data-plane verdict.
type lbStatus struct{ state, reason string }

// injected returns the fault injected for op, wrapped to name the operation's object.
func (f *Fabric) injected(op, object string) error {
	if f.cfg.Faults == nil {
		return nil
	}
	if err := f.cfg.Faults.DataPlaneFault(op, object); err != nil {
		return fmt.Errorf("%s %s: %w", op, object, err)
	}
	return nil
}

// lbStatuses decides each desired load balancer's verdict after a convergence: active when its
// base is ensured and the kernel runs its current program (and, for an application load
// balancer, its L7 engine its current configuration: apps), failed when a step for it failed in
// this pass (or it could not even be built from the snapshot). A load balancer with neither
// (its router not ready yet) keeps the verdict it had.
func lbStatuses(desired, actual *World, failed, impaired map[string]error, apps map[string]bool) map[string]lbStatus {
	out := map[string]lbStatus{}
	for id, d := range desired.LBs {
		a := actual.LBs[id]
		switch {
		case a != nil && a.Ready && a.Program.Hash == d.Program.Hash && (!d.App || apps[id]) && impaired[id] != nil:
			out[id] = lbStatus{state: api.LoadBalancerStateActiveImpaired, reason: impaired[id].Error()}
		case a != nil && a.Ready && a.Program.Hash == d.Program.Hash && (!d.App || apps[id]):
			out[id] = lbStatus{state: api.LoadBalancerStateActive}
		case failed[id] != nil:
			out[id] = lbStatus{state: api.LoadBalancerStateFailed, reason: failed[id].Error()}
		}
	}
	for id, reason := range desired.LBFailures {
		out[id] = lbStatus{state: api.LoadBalancerStateFailed, reason: reason}
	}
	return out
}

// programmed tells the health checks which load balancers run their current program: only
// those check their targets, so no target turns healthy behind a load balancer that does not
// forward to it.
func programmed(st map[string]lbStatus) func(string) bool {
	return func(id string) bool {
		s := st[id].state
		return s == api.LoadBalancerStateActive || s == api.LoadBalancerStateActiveImpaired
	}
}

// reportLBs hands the control plane the verdicts that changed since it last took them, and
// marks the targets of failed load balancers unavailable (their checks are stopped). A report
// that fails is sent again after the next convergence.
func (f *Fabric) reportLBs(st map[string]lbStatus, checks []Check) error {
	if f.cfg.LBStates == nil {
		return nil
	}
	var reps []api.LoadBalancerStateReport
	for _, id := range slices.Sorted(maps.Keys(st)) {
		s := st[id]
		if f.lbReported[id] == s {
			continue
		}
		reps = append(reps, api.LoadBalancerStateReport{LoadBalancerID: id, State: s.state, Reason: truncate(s.reason, maxStateReason)})
	}
	for id := range f.lbReported {
		if _, ok := st[id]; !ok {
			delete(f.lbReported, id) // gone, or undecided: a later verdict is reported afresh
		}
	}
	var errs []string
	if len(reps) > 0 {
		if err := f.cfg.LBStates.ReportLoadBalancerState(reps); err != nil {
			errs = append(errs, "report load balancer states: "+err.Error())
		} else {
			for _, r := range reps {
				f.lbReported[r.LoadBalancerID] = lbStatus{state: r.State, reason: r.Reason}
				f.logLBState(r)
			}
		}
	}
	if f.cfg.Health != nil {
		if reps := unavailableTargets(st, checks); len(reps) > 0 {
			if err := f.cfg.Health.ReportTargetHealth(reps); err != nil {
				errs = append(errs, "report targets of failed load balancers unavailable: "+err.Error())
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fabric: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (f *Fabric) logLBState(r api.LoadBalancerStateReport) {
	switch r.State {
	case api.LoadBalancerStateFailed:
		f.log.Warn("load balancer failed: the data plane could not program it; retrying with backoff", "lb", r.LoadBalancerID, "reason", r.Reason)
		return
	case api.LoadBalancerStateActiveImpaired:
		f.log.Warn("load balancer impaired: it routes traffic, but a part of its data plane failed; retrying", "lb", r.LoadBalancerID, "reason", r.Reason)
		return
	}
	f.log.Info("load balancer active", "lb", r.LoadBalancerID)
}

// unavailableTargets are the reports that mark the checked targets of failed load balancers
// unavailable, skipping those the control plane already shows so.
func unavailableTargets(st map[string]lbStatus, checks []Check) []api.TargetHealthReport {
	var out []api.TargetHealthReport
	for _, c := range checks {
		s := st[c.LB]
		if s.state != api.LoadBalancerStateFailed || (c.State == api.TargetHealthUnavailable && c.Reason == api.ReasonInternalError) {
			continue
		}
		out = append(out, api.TargetHealthReport{
			TargetGroupID: c.TargetGroupID, IP: c.Target.IP.String(), Port: c.Target.Port,
			State: api.TargetHealthUnavailable, Reason: api.ReasonInternalError,
			Description: truncate("the load balancer's data plane failed: "+s.reason, maxTargetDescription),
		})
	}
	return out
}

// Bounds of the free text the control plane takes (it refuses longer).
const (
	maxStateReason       = 1024
	maxTargetDescription = 256
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
