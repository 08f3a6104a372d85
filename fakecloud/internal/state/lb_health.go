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
		for _, rep := range reports {
			key := api.TargetID(rep.TargetGroupID, rep.IP, rep.Port)
			old := first[targetRec](t.Txn, tableTargets, indexID, key)
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
