package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric/metadata"
	"github.com/flatnet/flatnet/internal/netns"
)

// Source is the control plane as the fabric needs it. *state.Store satisfies it in-process.
type Source interface {
	// Snapshot returns a consistent view of everything at one change sequence. A snapshot
	// is never changed once returned, not even the slices it shares with an earlier one (the
	// fabric takes a rule whose conditions and actions are the very slices it compiled before
	// as unchanged).
	Snapshot() *api.Snapshot
	// WaitChanges returns the changes after since, waiting until there is one or ctx ends.
	WaitChanges(ctx context.Context, since uint64) (*api.GetChangesResponse, error)
}

// Config configures a Fabric. Source is required; everything else has a default.
type Config struct {
	Source Source
	// APIHandler, when set, is served inside every VPC at APIEndpoint() (169.254.169.254:7474).
	APIHandler http.Handler
	// Registerer receives the fabric's collectors; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Prefix starts every namespace name; default DefaultPrefix ("fc-").
	Prefix string
	// MTU of every veth; default 9001, as inside a cloud VPC.
	MTU int
	// ResyncInterval re-reads the kernel and repairs drift this often; default 5m, <0 never.
	ResyncInterval time.Duration
	// RetryInterval is how soon a failed convergence is first retried; default 500ms. Each
	// further failure in a row doubles the wait, up to MaxRetryInterval (default 8s); a change
	// from the control plane is applied at once whatever the wait.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// TeardownOnExit makes Run remove every namespace it made when it returns.
	TeardownOnExit bool
	// Health receives the load balancers' target health transitions; nil runs no health checks
	// (targets then keep whatever state the control plane gives them).
	Health HealthReporter
	// LBStates receives each load balancer's data-plane verdict (active, or failed with the
	// reason); nil reports none.
	LBStates LBStateReporter
	// Faults, when set, may fail data-plane operations on purpose (see api.DataPlane*).
	Faults FaultInjector
	// Certificates reads the certificates (with keys) of application load balancers' HTTPS
	// listeners; nil fails those listeners' load balancers.
	Certificates CertificateSource
	// Attach lists instances whose node is an existing namespace someone else owns, such as a
	// kind node's container (attach.go); the others get namespaces the fabric makes.
	Attach []Attachment
	// LBBusyPoll is how long the process polls the links of application load balancers for
	// packets before it sleeps (busypoll.go); 0 means DefaultLBBusyPoll, <0 never. Without
	// kernel support (Linux 6.9) the fabric logs so and does not poll.
	LBBusyPoll time.Duration
	// AttachCheckInterval is how often, with attachments, the fabric checks that each attached
	// namespace is still there (a container stopped, a bind mount went); default 1s.
	AttachCheckInterval time.Duration
	// AccessLogDir is where application load balancers whose access_logs.enabled attribute is
	// true write their access logs, one file of JSON lines each (<load balancer ID>.log);
	// empty: to Logger, with the attribute log=access.
	AccessLogDir string
	// AccessLogMaxBytes is the size past which an access-log file is rotated (accesslog.go);
	// 0 means DefaultAccessLogMaxBytes, <0 never. AccessLogKeep is how many rotated files are
	// kept (<id>.log.1 the newest); 0 means DefaultAccessLogKeep, <0 none (the file is
	// truncated instead).
	AccessLogMaxBytes int64
	AccessLogKeep     int

	// albUDPIdleTimeout and albUDPMaxFlows override the application load balancers' UDP flow
	// idle timeout and flow limit (zero: the engine's 60 s and 4,096); tests shorten them.
	albUDPIdleTimeout time.Duration
	albUDPMaxFlows    int
}

// Fabric converges the kernel from the control plane. Create it with New, drive it with Run.
type Fabric struct {
	cfg     Config
	log     *slog.Logger
	k       *kernel
	md      *metadata.Server
	metrics *metrics
	health  *healthChecks // nil without Config.Health

	mu        sync.Mutex // serialises convergence
	actual    *World     // what is programmed; nil until read from the kernel
	dirty     bool       // an operation failed: re-read the kernel before the next diff
	listeners map[string]*vpcListeners
	// albs are the application load balancers' L7 engines, by load balancer ID.
	albs map[string]*albRuntime
	// ruleRevs are the engines' rules built from the snapshot's rules, kept while those stay.
	ruleRevs *ruleRevisions
	// busyPoll is the busy-poll time the process's network poller gets once an engine serves
	// (0: none); busyPollSet records that it was tried (guarded by mu).
	busyPoll    time.Duration
	busyPollSet bool
	applied     atomic.Uint64 // sequence of the last snapshot applied without error
	// failures counts convergences in a row that failed: the retry wait grows with it.
	failures int
	// lbErrs are the load balancers a step failed for in the current convergence.
	lbErrs map[string]error
	// lbImpaired are the load balancers that route traffic while a part of their data plane
	// beside it failed in the current convergence (an access log): active_impaired.
	lbImpaired map[string]error
	// wake ends Run's current wait (kick); kicked: a kick came while Run was not waiting, and
	// the next wait ends at once.
	wake   context.CancelFunc
	kicked bool
	// lbReported is the verdict the control plane last took for each load balancer.
	lbReported map[string]lbStatus
	// nodeErrs are the nodes (instances) a step failed for in the current convergence.
	nodeErrs map[string]error
	// bound keeps each attachment on the instance it was bound to (attachment name -> ID); nil
	// until seeded from the kernel.
	bound map[string]string
	// attachments is each attachment's state after the last convergence, by name.
	attachments map[string]AttachmentStatus
}

// New checks the configuration and registers the collectors. It touches no namespace yet.
func New(cfg Config) (*Fabric, error) {
	if cfg.Source == nil {
		return nil, errors.New("fabric: config needs a Source (the control plane)")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MTU == 0 {
		cfg.MTU = 9001
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 500 * time.Millisecond
	}
	if cfg.MaxRetryInterval < cfg.RetryInterval {
		cfg.MaxRetryInterval = max(8*time.Second, cfg.RetryInterval)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.AccessLogMaxBytes == 0:
		cfg.AccessLogMaxBytes = DefaultAccessLogMaxBytes
	case cfg.AccessLogMaxBytes < 0:
		cfg.AccessLogMaxBytes = 0
	}
	switch {
	case cfg.AccessLogKeep == 0:
		cfg.AccessLogKeep = DefaultAccessLogKeep
	case cfg.AccessLogKeep < 0:
		cfg.AccessLogKeep = 0
	}
	if cfg.AttachCheckInterval <= 0 {
		cfg.AttachCheckInterval = time.Second
	}
	if err := validateAttachments(cfg.Prefix, cfg.Attach); err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	cfg.Attach = slices.Clone(cfg.Attach)
	if os.Geteuid() != 0 {
		return nil, errors.New("fabric: network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); run as root")
	}
	if cfg.LBBusyPoll == 0 {
		cfg.LBBusyPoll = DefaultLBBusyPoll
	}
	if cfg.LBBusyPoll > 0 {
		if err := CheckLBBusyPoll(cfg.LBBusyPoll); err != nil {
			return nil, fmt.Errorf("fabric: LBBusyPoll: %w", err)
		}
	}
	f := &Fabric{
		cfg: cfg, log: cfg.Logger.With("component", "fabric", "prefix", cfg.Prefix),
		k: newKernel(cfg.Prefix, cfg.MTU), md: metadata.NewServer(APIEndpoint()),
		listeners: map[string]*vpcListeners{}, albs: map[string]*albRuntime{}, ruleRevs: newRuleRevisions(), lbReported: map[string]lbStatus{},
		attachments: map[string]AttachmentStatus{},
	}
	if cfg.LBBusyPoll > 0 {
		if err := busyPollSupported(); err != nil {
			f.log.Warn("application load balancers will not busy-poll their links", "err", err)
		} else {
			f.busyPoll = cfg.LBBusyPoll
			f.k.lbPoll = true
		}
	}
	f.k.pollFailed = func(lb string, err error) {
		f.metrics.linkErrors.Inc()
		f.log.Warn("link of application load balancer not set for busy polling; it forwards without", "lb", lb, "err", err)
	}
	if cfg.Health != nil {
		f.health = newHealthChecks(cfg.Prefix, cfg.Health, f.log)
	}
	f.metrics = newMetrics()
	if cfg.Registerer != nil {
		if err := f.metrics.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("fabric: register metrics: %w", err)
		}
	}
	return f, nil
}

// Run converges until ctx ends: adopt what the kernel holds, then for every advance of the change
// sequence take a snapshot, diff it against what is programmed and apply the difference. It
// returns nil when ctx ends (after Down, with TeardownOnExit).
func (f *Fabric) Run(ctx context.Context) error {
	if err := netns.EnsureDir(); err != nil {
		return fmt.Errorf("fabric: %w", err)
	}
	defer f.stop()
	lastResync := time.Now()
	var woke time.Time
	var last uint64
	for ctx.Err() == nil {
		snap := f.cfg.Source.Snapshot()
		if f.cfg.ResyncInterval > 0 && time.Since(lastResync) > f.cfg.ResyncInterval {
			f.markDirty()
			lastResync = time.Now()
		}
		if err := f.Apply(snap); err != nil {
			f.log.Warn("convergence incomplete, will retry", "seq", snap.Seq, "err", err)
		} else if !woke.IsZero() && snap.Seq != last {
			// Only a change counts: checks of attached namespaces wake the loop without one.
			f.metrics.lag.Observe(time.Since(woke).Seconds())
		}
		last = snap.Seq
		f.wait(ctx, snap.Seq)
		woke = time.Now()
	}
	return nil
}

// wait blocks until the sequence moves past seq, a retry is due, or ctx ends.
func (f *Fabric) wait(ctx context.Context, seq uint64) {
	timeout := f.cfg.ResyncInterval
	switch {
	case f.isDirty() || timeout <= 0:
		timeout = f.retryWait() // the retry reads the kernel back, which notices vanished namespaces too
	case len(f.cfg.Attach) > 0:
		timeout = min(timeout, f.cfg.AttachCheckInterval) // notice a namespace that vanished
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f.mu.Lock()
	if f.kicked {
		f.kicked = false
		cancel()
	}
	f.wake = cancel
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.wake = nil
		f.mu.Unlock()
	}()
	_, err := f.cfg.Source.WaitChanges(wctx, seq)
	if err == nil || ctx.Err() != nil || wctx.Err() != nil {
		return
	}
	// The source failed: do not spin on it.
	f.log.Warn("waiting for changes failed", "since", seq, "err", err)
	select {
	case <-ctx.Done():
	case <-time.After(f.cfg.RetryInterval):
	}
}

func (f *Fabric) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for vpc, l := range f.listeners {
		l.close()
		delete(f.listeners, vpc)
	}
	if f.health != nil {
		f.health.stopAll()
	}
	f.closeAllALBs()
	if f.metrics.busyPoll.Load() > 0 {
		// The setting is the process's: another fabric in it may have it off.
		if _, err := enableBusyPoll(0); err != nil {
			f.log.Warn("could not stop busy polling", "err", err)
		}
		f.metrics.busyPoll.Store(0)
	}
	f.busyPollSet = false
	f.k.close()
	if f.cfg.TeardownOnExit {
		if err := Down(f.cfg.Prefix); err != nil {
			f.log.Error("teardown failed", "err", err)
		}
	}
}

// retryWait is how long to wait before retrying a failed convergence: RetryInterval, doubled
// for each further failure in a row, up to MaxRetryInterval.
func (f *Fabric) retryWait() time.Duration {
	f.mu.Lock()
	n := f.failures
	f.mu.Unlock()
	return backoff(f.cfg.RetryInterval, f.cfg.MaxRetryInterval, n)
}

// backoff is base doubled n-1 times (n failures in a row), capped at limit.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// kick makes Run converge again now, not at its next change or resync: a part of a load
// balancer's data plane failed or recovered on its own (an access log), and its state should
// say so. It may be called with or without f.mu held by another goroutine, never by Run's.
func (f *Fabric) kick() {
	go func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.wake != nil {
			f.wake()
			f.wake = nil
			return
		}
		f.kicked = true
	}()
}

func (f *Fabric) markDirty() {
	f.mu.Lock()
	f.dirty = true
	f.mu.Unlock()
}

func (f *Fabric) isDirty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirty
}

// Apply converges the kernel to one snapshot, once. Run calls it; tests and benchmarks may too.
func (f *Fabric) Apply(snap *api.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.actual == nil || f.dirty {
		actual, err := f.k.observe()
		if err != nil {
			f.log.Warn("reading the kernel back was incomplete", "err", err)
		}
		f.actual, f.dirty = actual, false
		f.seedBindings()
	}
	f.checkAttached()
	att := resolveAttachments(snap, f.cfg.Attach, f.bound)
	f.bound = att.bound
	desired, err := desiredWorld(snap, att)
	if err != nil {
		f.log.Warn("snapshot has entries the fabric skips", "seq", snap.Seq, "err", err)
	}
	plan := Diff(desired, f.actual)
	if !plan.Empty() && f.log.Enabled(context.Background(), slog.LevelDebug) {
		f.log.Debug("converging", "seq", snap.Seq, "plan", fmt.Sprintf("%+v", *plan))
	}
	start := time.Now()
	f.lbErrs, f.lbImpaired, f.nodeErrs = map[string]error{}, map[string]error{}, map[string]error{}
	f.closeALBs(desired)
	err = f.execute(plan)
	apps, aerr := f.syncALBs(snap, desired)
	err = errors.Join(err, aerr)
	if !plan.Empty() {
		f.log.Debug("converged", "seq", snap.Seq, "took", time.Since(start), "err", err)
	}
	f.md.Update(snap)
	st := lbStatuses(desired, f.actual, f.lbErrs, f.lbImpaired, apps)
	if f.health != nil {
		f.health.sync(desired.Checks, programmed(st))
	}
	f.syncALBChecks(desired.Checks, programmed(st))
	if rerr := f.reportLBs(st, desired.Checks); rerr != nil {
		err = errors.Join(err, rerr)
	}
	f.metrics.setCounts(f.actual)
	f.metrics.setLBStates(desired, st)
	f.updateAttachments(att, desired)
	if err != nil {
		f.dirty = true
		f.failures++
		f.metrics.errors.Inc()
		return err
	}
	f.failures = 0
	f.applied.Store(snap.Seq)
	return nil
}

// AppliedSeq is the change sequence of the last snapshot the kernel fully converged to.
func (f *Fabric) AppliedSeq() uint64 { return f.applied.Load() }

// Prefix is the namespace name prefix this fabric uses.
func (f *Fabric) Prefix() string { return f.cfg.Prefix }
