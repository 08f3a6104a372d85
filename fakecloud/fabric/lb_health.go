package fabric

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/l7"
)

// HealthReporter receives the target health transitions the load balancers' checks observe.
// *state.Store satisfies it in-process.
type HealthReporter interface {
	ReportTargetHealth(reports []api.TargetHealthReport) error
}

// healthChecks runs the network load balancers' target checks: one l7.Checker (the checker the
// application load balancers use too) per load balancer, probing from its namespace and
// private address; sync starts and stops them to match the desired World.
type healthChecks struct {
	prefix string
	report HealthReporter
	log    *slog.Logger

	mu      sync.Mutex
	running map[checkSource]*l7.Checker
}

// checkSource is where a load balancer's checks come from: a new private address needs a new
// checker (its dialer binds the address).
type checkSource struct {
	lb  string
	src netip.Addr
}

func newHealthChecks(prefix string, r HealthReporter, log *slog.Logger) *healthChecks {
	return &healthChecks{prefix: prefix, report: r, log: log, running: map[checkSource]*l7.Checker{}}
}

// sync makes the running checks those of checks whose load balancer is ready, and tells each
// what the control plane currently says about its target.
func (h *healthChecks) sync(checks []Check, ready func(lb string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[checkSource][]l7.CheckTarget{}
	for _, c := range checks {
		if ready(c.LB) && !c.App { // application targets are their engine's checker's (alb.go)
			k := checkSource{c.LB, c.Source}
			want[k] = append(want[k], checkTarget(c))
		}
	}
	for k, chk := range h.running {
		if _, ok := want[k]; !ok {
			chk.Close()
			delete(h.running, k)
		}
	}
	for k, targets := range want {
		chk := h.running[k]
		if chk == nil {
			var err error
			chk, err = l7.NewChecker(l7.CheckerOptions{Report: checkReports{h.report},
				Dial: dialFrom(LBNetns(h.prefix, k.lb), k.src), Log: h.log.With("lb", k.lb)})
			if err != nil { // only without a reporter, which newHealthChecks never lacks
				h.log.Error("starting target checks failed", "lb", k.lb, "err", err)
				continue
			}
			h.running[k] = chk
		}
		if err := chk.Sync(targets); err != nil {
			h.log.Warn("some target checks of the load balancer cannot run", "lb", k.lb, "err", err)
		}
	}
}

func (h *healthChecks) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, chk := range h.running {
		chk.Close()
		delete(h.running, k)
	}
}

// checkTarget is a target's check as l7.Checker runs it, starting from the control plane's
// view of the target as the data plane should take it (dataPlaneState).
func checkTarget(c Check) l7.CheckTarget {
	return l7.CheckTarget{TargetGroup: c.TargetGroupID, Addr: c.Target.AddrPort(), Check: l7Check(c),
		Known: l7.TargetState(dataPlaneState(api.TargetHealth{State: c.State, Reason: c.Reason})), KnownReason: c.Reason}
}

// checkReports hands a checker's transitions to the control plane.
type checkReports struct{ r HealthReporter }

func (h checkReports) ReportHealth(_ context.Context, reps []l7.HealthReport) error {
	out := make([]api.TargetHealthReport, 0, len(reps))
	for _, r := range reps {
		out = append(out, api.TargetHealthReport{TargetGroupID: r.TargetGroup, IP: r.Addr.Addr().String(),
			Port: int(r.Addr.Port()), State: string(r.State), Reason: r.Reason,
			Description: truncate(r.Description, maxTargetDescription)})
	}
	return h.r.ReportTargetHealth(out)
}
