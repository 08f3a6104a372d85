package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flatnet/flatnet/ipamd/pool"
	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/providers"
)

// Deps are the parts a caller may replace (tests); nil fields are built from Config.
type Deps struct {
	// Clouds maps --cloud names to drivers (required): the caller chooses which it carries
	// (cmd/flatnet-ipamd: providers/all).
	Clouds *providers.Registry
	// Datapath programs the node; nil: nodenet when Config.Datapath, else nothing.
	Datapath Datapath
	// Pods judges whether an allocation's pod still exists; nil: per Config.PodCheck.
	Pods PodChecker
	// Observer hears capacity, pool changes and failed allocations (ipamd/kube); nil: nobody.
	Observer Observer
}

// Daemon is one node's ipamd.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	cloud  providers.IPAM // the driver under policy
	policy *providers.Policy
	store  *store.Store
	dp     Datapath
	pods   PodChecker
	obs    Observer
	inst   *providers.Instance // facts of the first describe: type, limits, subnet, VPC
	limits pool.Limits

	kick  chan struct{}
	ready atomic.Bool

	mu         sync.Mutex
	changed    chan struct{} // closed when the pool changed; replaced
	waiting    int
	recent     []time.Time
	lastDemand time.Time
	full       string // why the last growth could not be placed; "" when it could
	lastErr    error  // the last cloud failure of the worker
	retryAt    time.Time
	failures   int
	resyncNow  bool
	// unjudged are the allocations found at start that the pod check has not judged yet,
	// because they were younger than PodCheckGrace (see podcheck.go).
	unjudged map[wire.Owner]*unjudged
}

// New discovers the instance, checks the configuration against its limits, opens the datastore
// and builds the datapath. Nothing is served until Run.
func New(ctx context.Context, cfg Config, deps Deps) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Daemon{cfg: cfg, log: log, m: newMetrics(), kick: make(chan struct{}, 1), changed: make(chan struct{})}
	if err := d.discover(ctx); err != nil {
		return nil, err
	}
	log = log.With("instance", d.cfg.InstanceID)
	d.log = log
	drv, err := deps.Clouds.IPAM(ctx, cfg.Cloud, providers.Settings{
		Endpoint: d.cfg.CloudEndpoint, Region: d.cfg.CloudRegion, Credentials: providers.Credentials{Token: d.cfg.CloudToken}, Observe: d.m.observeCloud,
	})
	if err != nil {
		return nil, err
	}
	d.policy = providers.NewPolicy(cfg.Policy)
	d.cloud = d.policy.IPAM(drv)
	if err := d.describeStatic(ctx); err != nil {
		return nil, err
	}
	if d.store, err = store.Open(cfg.StateDir, store.Options{Log: log, SyncInterval: cfg.StateSync}); err != nil {
		return nil, err
	}
	if d.dp, err = d.datapath(deps.Datapath); err != nil {
		d.store.Close()
		return nil, err
	}
	d.pods = deps.Pods
	d.obs = deps.Observer
	if d.obs == nil {
		d.obs = noObserver{}
	}
	if d.pods == nil {
		d.pods = podChecker(cfg.PodCheck)
	}
	d.m.capacity.Set(float64(d.cfg.Pool.Capacity(d.limits)))
	return d, nil
}

// describeStatic reads the instance once for the facts that never change and validates the
// pool settings against its type.
func (d *Daemon) describeStatic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	inst, err := d.cloud.DescribeInstance(ctx, d.cfg.InstanceID)
	if err != nil {
		return fmt.Errorf("describe instance %s: %w", d.cfg.InstanceID, err)
	}
	d.inst = inst
	d.limits = pool.Limits{MaxInterfaces: inst.MaxInterfaces, IPv4PerInterface: inst.IPv4PerInterface}
	if err := d.cfg.Pool.Validate(d.limits); err != nil {
		return fmt.Errorf("configuration does not fit instance %s (%s: %d interfaces x %d addresses): %w",
			inst.ID, inst.Type, inst.MaxInterfaces, inst.IPv4PerInterface, err)
	}
	if d.cfg.SubnetID == "" {
		d.cfg.SubnetID = inst.SubnetID
	}
	if d.cfg.SecurityGroups == nil {
		d.cfg.SecurityGroups = inst.SecurityGroups
	}
	return nil
}

func (d *Daemon) primaryIP() netip.Addr {
	for _, in := range d.inst.Interfaces {
		if in.DeviceIndex == 0 {
			return in.PrimaryIP
		}
	}
	return netip.Addr{}
}

// Run reconciles, replays the spool, serves the plugin, introspection and metrics, and runs the
// pool worker until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	defer func() {
		if err := d.store.Close(); err != nil {
			d.log.Error("closing the datastore failed: its last records may not be on disk", "err", err)
		}
	}()
	if err := d.dp.EnsureBase(ctx); err != nil {
		return fmt.Errorf("node datapath: %w", err)
	}
	if err := d.reconcileUntilDone(ctx); err != nil {
		return err
	}
	d.replaySpool()
	// Start-up leaves garbage that steady state never needs again (the fast path's loader parses
	// the kernel's BTF, 1-2 MiB here): collect it and hand the pages back now, before the first
	// request, rather than when the scavenger gets to them.
	debug.FreeOSMemory()
	ln, err := listenSocket(d.cfg.SocketPath)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	stop := d.serveHTTP(ctx, &wg)
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.serveSocket(ctx, ln)
	}()
	if err := d.writeConflist(); err != nil {
		// Without a conflist the runtime never sends an ADD: stop loudly rather than serve no one.
		ln.Close()
		stop()
		wg.Wait()
		return err
	}
	d.ready.Store(true)
	d.log.Info("ipamd ready", "socket", d.cfg.SocketPath, "type", d.inst.Type, "mode", d.cfg.Pool.Mode,
		"capacity", d.cfg.Pool.Capacity(d.limits))
	d.obs.Serving(d.cfg.Pool.Capacity(d.limits))
	d.updateGauges(time.Now())
	d.work(ctx)
	d.ready.Store(false)
	ln.Close()
	stop()
	wg.Wait()
	return nil
}

// reconcileUntilDone retries the start-up reconcile with backoff: without the cloud's truth
// ipamd must not hand out addresses.
func (d *Daemon) reconcileUntilDone(ctx context.Context) error {
	wait := 200 * time.Millisecond
	for {
		err := d.reconcile(ctx, true)
		if err == nil {
			return nil
		}
		d.log.Warn("start-up reconcile failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// notify wakes allocations waiting for the pool.
func (d *Daemon) notify() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// poke asks the worker to look at the pool.
func (d *Daemon) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}
