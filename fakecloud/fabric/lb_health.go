package fabric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// HealthReporter receives the target health transitions the load balancers' checks observe.
// *state.Store satisfies it in-process.
type HealthReporter interface {
	ReportTargetHealth(reports []api.TargetHealthReport) error
}

// healthChecks runs one checker goroutine per (load balancer, target group, target, check
// configuration); sync starts and stops them to match the desired World.
type healthChecks struct {
	prefix string
	report HealthReporter
	log    *slog.Logger

	mu      sync.Mutex
	running map[string]*checker // by Check.key()
}

func newHealthChecks(prefix string, r HealthReporter, log *slog.Logger) *healthChecks {
	return &healthChecks{prefix: prefix, report: r, log: log, running: map[string]*checker{}}
}

// sync makes the running checkers those of checks whose load balancer is ready, and tells each
// what the control plane currently says about its target.
func (h *healthChecks) sync(checks []Check, ready func(lb string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[string]Check{}
	for _, c := range checks {
		if ready(c.LB) && !c.App { // application targets are the L7 checker's (alb.go)
			want[c.key()] = c
		}
	}
	for key, c := range h.running {
		if _, ok := want[key]; !ok {
			c.stop()
			delete(h.running, key)
		}
	}
	for key, c := range want {
		if r := h.running[key]; r != nil {
			r.setKnown(c.State, c.Reason)
			continue
		}
		r := newChecker(c, LBNetns(h.prefix, c.LB), h.report, h.log)
		h.running[key] = r
		go r.run()
	}
}

func (h *healthChecks) stopAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, c := range h.running {
		c.stop()
		delete(h.running, key)
	}
}

// verdict is one probe's outcome: ok, or why not.
type verdict struct {
	ok          bool
	reason      string
	description string
}

// checker probes one target at the group's interval and reports when the target's state, as
// the thresholds decide it, differs from what the control plane knows.
type checker struct {
	c      Check
	ns     string
	report HealthReporter
	log    *slog.Logger
	probe  func(ctx context.Context) verdict
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu            sync.Mutex
	known         TargetState // what the control plane says
	okRun, nokRun int         // consecutive successes and failures
}

// TargetState is a target's health state and reason.
type TargetState struct{ State, Reason string }

func newChecker(c Check, ns string, r HealthReporter, log *slog.Logger) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	k := &checker{c: c, ns: ns, report: r, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		known: TargetState{State: c.State, Reason: c.Reason},
		log:   log.With("lb", c.LB, "targetGroup", c.TargetGroupID, "target", c.Target.String())}
	k.probe = k.probeTCP
	if c.HealthCheck.Protocol == api.ProtocolHTTP {
		k.probe = k.probeHTTP(c.HealthCheck)
	}
	return k
}

func (k *checker) setKnown(state, reason string) {
	k.mu.Lock()
	k.known = TargetState{State: state, Reason: reason}
	k.mu.Unlock()
}

func (k *checker) stop() {
	k.cancel()
	<-k.done
}

func (k *checker) run() {
	defer close(k.done)
	interval := seconds(k.c.HealthCheck.IntervalSeconds)
	t := time.NewTimer(0) // the first probe goes out at once
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		v := k.probe(k.ctx)
		if k.ctx.Err() != nil {
			return
		}
		k.observe(v)
		t.Reset(max(interval-time.Since(start), 0))
	}
}

// observe counts a verdict and reports a transition. A report that fails leaves the known
// state as it was, so the next probe reports again.
func (k *checker) observe(v verdict) {
	k.mu.Lock()
	if v.ok {
		k.okRun, k.nokRun = k.okRun+1, 0
	} else {
		k.okRun, k.nokRun = 0, k.nokRun+1
	}
	hc := k.c.HealthCheck
	prev := k.known
	next, changed := nextState(prev, v, k.okRun, k.nokRun, hc.HealthyThresholdCount, hc.UnhealthyThresholdCount)
	k.mu.Unlock()
	if !changed {
		return
	}
	rep := api.TargetHealthReport{TargetGroupID: k.c.TargetGroupID, IP: k.c.Target.IP.String(), Port: k.c.Target.Port,
		State: next.State, Reason: next.Reason}
	if !v.ok {
		rep.Description = v.description
	}
	if err := k.report.ReportTargetHealth([]api.TargetHealthReport{rep}); err != nil {
		k.log.Warn("reporting target health failed, will retry", "state", next.State, "err", err)
		return
	}
	k.log.Info("target health changed", "from", prev.State, "to", next.State, "reason", next.Reason)
	k.setKnown(next.State, next.Reason)
}

// nextState decides a target's state from the known one and the runs of consecutive results:
// healthy after `healthy` successes in a row, unhealthy (with the last failure's reason) after
// `unhealthy` failures in a row, otherwise unchanged. It is pure.
func nextState(known TargetState, v verdict, okRun, nokRun, healthy, unhealthy int) (TargetState, bool) {
	next := known
	switch {
	case okRun >= healthy:
		next = TargetState{State: api.TargetHealthHealthy}
	case nokRun >= unhealthy:
		next = TargetState{State: api.TargetHealthUnhealthy, Reason: v.reason}
	}
	return next, next != known
}

// dial opens a connection from the load balancer's namespace and private address.
func (k *checker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetns(k.ns, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: k.c.Source.AsSlice()}}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (k *checker) target() string {
	return net.JoinHostPort(k.c.Target.IP.String(), strconv.Itoa(checkPort(k.c.HealthCheck, k.c.Target)))
}

func (k *checker) probeTCP(ctx context.Context) verdict {
	ctx, cancel := context.WithTimeout(ctx, seconds(k.c.HealthCheck.TimeoutSeconds))
	defer cancel()
	c, err := k.dial(ctx, "tcp4", k.target())
	if err != nil {
		return failure(ctx, err)
	}
	_ = c.Close()
	return verdict{ok: true}
}

func failure(ctx context.Context, err error) verdict {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return verdict{reason: api.ReasonTimeout, description: "Request timed out"}
	}
	return verdict{reason: api.ReasonFailedHealthChecks, description: "Health checks failed: " + err.Error()}
}

func (k *checker) probeHTTP(hc api.HealthCheck) func(ctx context.Context) verdict {
	codes, err := parseMatcher(hc.Matcher)
	if err != nil {
		k.log.Warn("health check matcher unusable, using 200-399", "matcher", hc.Matcher, "err", err)
		codes = []codeRange{{200, 399}}
	}
	client := &http.Client{
		Transport: &http.Transport{DialContext: k.dial, DisableKeepAlives: true},
		// A redirect is an answer like any other: its code is what the matcher judges.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := "http://" + k.target() + hc.Path
	return func(ctx context.Context) verdict {
		ctx, cancel := context.WithTimeout(ctx, seconds(hc.TimeoutSeconds))
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return verdict{reason: api.ReasonFailedHealthChecks, description: err.Error()}
		}
		req.Header.Set("User-Agent", "fakecloud-HealthChecker/1.0")
		resp, err := client.Do(req)
		if err != nil {
			return failure(ctx, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if !matches(codes, resp.StatusCode) {
			return verdict{reason: api.ReasonResponseCodeMismatch,
				description: fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)}
		}
		return verdict{ok: true}
	}
}

type codeRange struct{ lo, hi int }

// parseMatcher reads an HTTP matcher: "200", "200,202" or "200-299" (and lists of ranges),
// codes 100..599.
func parseMatcher(m string) ([]codeRange, error) {
	if strings.TrimSpace(m) == "" {
		return nil, errors.New("empty matcher: give codes like 200, 200,202 or 200-299")
	}
	var out []codeRange
	for part := range strings.SplitSeq(m, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("matcher %q: %q is not an HTTP code (100-599) or a range of them like 200-299", m, part)
		}
		out = append(out, codeRange{a, b})
	}
	return out, nil
}

func matches(codes []codeRange, code int) bool {
	for _, r := range codes {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}
