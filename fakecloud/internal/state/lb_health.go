package state

import (
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// maxReasonLen bounds the free text a health report carries.
const maxReasonLen = 256

// ReportTargetHealth records the data plane's health-check verdicts in one transaction. The
// fabric's health checker calls it in-process (the admin action ReportTargetHealth serves it
// over HTTP). Reports about targets that are gone (deregistered meanwhile) are ignored, and a
// verdict equal to the one stored writes nothing, so a checker may repeat itself freely; every
// real transition is one change in the stream. A draining target keeps showing draining, but
// its verdict is kept for when it is registered again.
func (s *Store) ReportTargetHealth(reports []api.TargetHealthReport) error {
	for i, r := range reports {
		if err := validateReport(i, r); err != nil {
			return err
		}
	}
	c := Call{Principal: Principal{Admin: true}, Now: time.Now()}
	_, err := write(s, c, api.ActionReportTargetHealth, "", nil, func(t *tx) (*api.ReportTargetHealthResponse, error) {
		keys := make([]string, len(reports))
		last := make(map[string]int, len(reports))
		for i, rep := range reports {
			keys[i] = api.TargetID(rep.TargetGroupID, rep.IP, rep.Port)
			last[keys[i]] = i
		}
		olds := lookupTargets(t, keys)
		for i, rep := range reports {
			key, old := keys[i], olds[i]
			if last[key] != i {
				continue // a later report on the same target wins
			}
			if old == nil || (old.State == rep.State && old.Reason == rep.Reason && old.Description == rep.Description) {
				continue
			}
			n := *old
			n.State, n.Reason, n.Description = rep.State, rep.Reason, rep.Description
			if err := t.put(tableTargets, api.KindTarget, key, &n); err != nil {
				return nil, err
			}
		}
		return &api.ReportTargetHealthResponse{}, nil
	})
	return err
}

// ReportTargetHealthCall serves the admin action.
func (s *Store) ReportTargetHealthCall(c Call, req *api.ReportTargetHealthRequest) (*api.ReportTargetHealthResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionReportTargetHealth); err != nil {
		return nil, err
	}
	if err := s.ReportTargetHealth(req.Reports); err != nil {
		return nil, err
	}
	return &api.ReportTargetHealthResponse{}, nil
}

func validateReport(i int, r api.TargetHealthReport) error {
	switch r.State {
	case api.TargetHealthHealthy, api.TargetHealthUnhealthy, api.TargetHealthInitial, api.TargetHealthUnavailable:
	default:
		return invalid("Reports[%d].State %.20q is not one a health check reports: healthy, unhealthy, initial or unavailable", i, r.State)
	}
	if r.TargetGroupID == "" {
		return invalid("Reports[%d].TargetGroupId is required", i)
	}
	if len(r.Reason) > maxReasonLen || len(r.Description) > maxReasonLen {
		return invalid("Reports[%d]: Reason and Description hold at most %d characters", i, maxReasonLen)
	}
	return nil
}

// initialLBState is the state a new load balancer starts in.
func (s *Store) initialLBState() string {
	if s.cfg.DataPlane {
		return api.LoadBalancerStateProvisioning
	}
	return api.LoadBalancerStateActive
}

// ReportLoadBalancerState records the data plane's verdicts on load balancers in one
// transaction, as ReportTargetHealth does for targets: reports about load balancers that are
// gone are ignored, an unchanged verdict writes nothing, and every real transition is one
// change in the stream (the load balancer's upsert, which carries its new state).
func (s *Store) ReportLoadBalancerState(reports []api.LoadBalancerStateReport) error {
	for i, r := range reports {
		if err := validateLBStateReport(i, r); err != nil {
			return err
		}
	}
	c := Call{Principal: Principal{Admin: true}, Now: time.Now()}
	_, err := write(s, c, api.ActionReportLoadBalancerState, "", nil, func(t *tx) (*api.ReportLoadBalancerStateResponse, error) {
		for _, rep := range reports {
			old := first[lbRec](t.Txn, tableLoadBalancers, indexID, rep.LoadBalancerID)
			if old == nil || (old.State == rep.State && old.StateReason == rep.Reason) {
				continue
			}
			n := *old
			n.State, n.StateReason = rep.State, rep.Reason
			if err := t.put(tableLoadBalancers, api.KindLoadBalancer, n.ID, &n); err != nil {
				return nil, err
			}
		}
		return &api.ReportLoadBalancerStateResponse{}, nil
	})
	return err
}

// ReportLoadBalancerStateCall serves the admin action.
func (s *Store) ReportLoadBalancerStateCall(c Call, req *api.ReportLoadBalancerStateRequest) (*api.ReportLoadBalancerStateResponse, error) {
	if err := requireAdmin(c.Principal, api.ActionReportLoadBalancerState); err != nil {
		return nil, err
	}
	if err := s.ReportLoadBalancerState(req.Reports); err != nil {
		return nil, err
	}
	return &api.ReportLoadBalancerStateResponse{}, nil
}

func validateLBStateReport(i int, r api.LoadBalancerStateReport) error {
	switch {
	case r.LoadBalancerID == "":
		return invalid("Reports[%d].LoadBalancerId is required", i)
	case r.State != api.LoadBalancerStateActive && r.State != api.LoadBalancerStateActiveImpaired && r.State != api.LoadBalancerStateFailed:
		return invalid("Reports[%d].State %.20q is not one a data plane reports: active, active_impaired or failed", i, r.State)
	case r.State != api.LoadBalancerStateActive && r.Reason == "":
		return invalid("Reports[%d]: a %s load balancer needs a Reason", i, r.State)
	case r.State == api.LoadBalancerStateActive && r.Reason != "":
		return invalid("Reports[%d]: an active load balancer has no Reason", i)
	case len(r.Reason) > maxStateReasonLen:
		return invalid("Reports[%d].Reason holds at most %d characters", i, maxStateReasonLen)
	}
	return nil
}

// maxStateReasonLen bounds a load balancer's failure reason (a kernel error can be long).
const maxStateReasonLen = 1024
