package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/flatnet/flatnet/internal/failpoint"
	"github.com/flatnet/flatnet/ipamd/nodenet"
	"github.com/flatnet/flatnet/ipamd/pool"
	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/providers"
)

// tick is how often the worker looks at the pool without being asked (idle release, cooldowns).
const tick = time.Second

// work is the pool worker: the only goroutine that changes the cloud, so plans never race.
func (d *Daemon) work(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	nextResync := time.Now().Add(d.cfg.ResyncInterval)
	for {
		kicked := false
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
			kicked = true
		case <-t.C:
		}
		d.mu.Lock()
		resync := d.resyncNow
		d.resyncNow = false
		d.mu.Unlock()
		if resync || time.Now().After(nextResync) {
			if err := d.reconcile(ctx, false); err != nil {
				d.log.Warn("resync with the cloud failed", "err", err)
			}
			d.replaySpool()
			nextResync = time.Now().Add(d.cfg.ResyncInterval)
		}
		d.judgePods(ctx, time.Now()) // start-up allocations that were too young to judge

		if kicked && !d.coalesce(ctx) {
			return
		}
		d.step(ctx)
	}
}

// coalesce lets concurrent misses gather for Coalesce so one cloud call serves them all; false
// when ctx ended meanwhile.
func (d *Daemon) coalesce(ctx context.Context) bool {
	if d.cfg.Coalesce <= 0 {
		return true
	}
	t := time.NewTimer(d.cfg.Coalesce)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// step plans and executes until the planner is satisfied, a call fails, or a few rounds ran.
// Nothing is asked of the cloud once the datastore cannot record the result.
func (d *Daemon) step(ctx context.Context) {
	if d.store.Err() != nil {
		return
	}
	for round := 0; round < 4; round++ {
		now := time.Now()
		d.mu.Lock()
		backoff := now.Before(d.retryAt)
		d.mu.Unlock()
		st := d.poolState(now)
		if !slices.ContainsFunc(st.Interfaces, func(in pool.Interface) bool { return in.DeviceIndex == 0 }) {
			d.requestResync() // the primary interface is not visible yet: nothing to plan on
			return
		}
		plan := pool.Decide(d.cfg.Pool, st)
		d.setFull(plan)
		d.updateGauges(now)
		if len(plan.Actions) == 0 || backoff {
			return
		}
		err := d.execute(ctx, plan)
		d.notify()
		d.recordOutcome(err)
		if err != nil {
			return
		}
	}
}

func (d *Daemon) setFull(plan pool.Plan) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if plan.Full && len(plan.Actions) == 0 {
		if d.full != plan.Reason {
			d.log.Warn("node is full", "reason", plan.Reason)
		}
		d.full = plan.Reason
		return
	}
	if !plan.Full {
		d.full = ""
	}
}

// recordOutcome keeps the worker from hammering a cloud that says no: after a failure it waits
// (1s doubling to 30s) before the next plan.
func (d *Daemon) recordOutcome(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.failures, d.lastErr, d.retryAt = 0, nil, time.Time{}
		return
	}
	d.failures++
	d.lastErr = err
	if errors.Is(err, providers.ErrSubnetFull) {
		d.full = "the subnet has no free addresses left: " + err.Error()
	}
	if errors.Is(err, providers.ErrInterfaceLimit) || errors.Is(err, providers.ErrAddressLimit) ||
		errors.Is(err, providers.ErrConflict) {
		// The record is behind the cloud (addresses or interfaces it has not adopted yet, e.g.
		// an unassign that failed after the record forgot them): resync before the next plan.
		// The first time that is not the cloud saying no, so it is not waited out (pods may
		// be waiting for an address meanwhile); a second failure in a row is.
		d.resyncNow = true
		if d.failures == 1 {
			d.retryAt = time.Time{}
			d.log.Warn("pool action failed: the record is behind the cloud; resyncing before the next plan", "err", err)
			d.poke()
			return
		}
	}
	wait := min(time.Second<<min(d.failures-1, 5), 30*time.Second)
	d.retryAt = time.Now().Add(wait)
	d.log.Warn("pool action failed", "err", err, "retry_in", wait)
}

// requestResync makes the worker compare with the cloud before its next plan.
func (d *Daemon) requestResync() {
	d.mu.Lock()
	d.resyncNow = true
	d.mu.Unlock()
	d.poke()
}

// poolState builds the planner's input from the datastore and the demand record.
func (d *Daemon) poolState(now time.Time) pool.State {
	v := d.store.Snapshot()
	d.mu.Lock()
	cut := now.Add(-d.cfg.DemandWindow)
	i := 0
	for i < len(d.recent) && d.recent[i].Before(cut) {
		i++
	}
	d.recent = d.recent[i:]
	st := pool.State{Now: now, Limits: d.limits, Waiting: d.waiting, RecentDemand: len(d.recent), LastDemand: d.lastDemand}
	d.mu.Unlock()
	ifaces := v.Interfaces()
	byIface := make(map[string]*pool.Interface, len(ifaces))
	for _, in := range ifaces {
		byIface[in.ID] = &pool.Interface{ID: in.ID, DeviceIndex: in.DeviceIndex, Managed: in.Managed, Slots: 1}
	}
	prefixes := map[netip.Prefix][]*store.Address{}
	var free []*store.Address
	for a := range v.Addresses() {
		pi := byIface[a.Interface]
		if pi == nil {
			continue
		}
		switch a.State(now, d.cfg.Cooldown) {
		case store.StateAssigned:
			pi.Assigned++
		case store.StateCooling:
			pi.Cooling++
		default:
			pi.Available++
			free = append(free, a)
		}
		if a.Prefix.IsValid() {
			prefixes[a.Prefix] = append(prefixes[a.Prefix], a)
		} else {
			pi.Slots++
		}
	}
	// Give back the most recently added free addresses first: the oldest stay warm.
	slices.SortFunc(free, func(a, b *store.Address) int { return b.AddedAt.Compare(a.AddedAt) })
	for _, a := range free {
		if !a.Prefix.IsValid() {
			byIface[a.Interface].FreeIPs = append(byIface[a.Interface].FreeIPs, a.IP)
		}
	}
	for p, as := range prefixes {
		pi := byIface[as[0].Interface]
		pi.Slots++
		if len(as) == pool.PrefixSize && !slices.ContainsFunc(as, func(a *store.Address) bool { return a.State(now, d.cfg.Cooldown) != store.StateFree }) {
			pi.FreePrefixes = append(pi.FreePrefixes, p)
		}
	}
	for _, pi := range byIface {
		slices.SortFunc(pi.FreePrefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		st.Interfaces = append(st.Interfaces, *pi)
	}
	slices.SortFunc(st.Interfaces, func(a, b pool.Interface) int { return a.DeviceIndex - b.DeviceIndex })
	return st
}

// execute runs a plan's actions concurrently (the policy caps the calls in flight).
func (d *Daemon) execute(ctx context.Context, plan pool.Plan) error {
	var wg sync.WaitGroup
	errs := make([]error, len(plan.Actions))
	for i, a := range plan.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.act(ctx, a)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (d *Daemon) act(ctx context.Context, a pool.Action) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	switch a.Kind {
	case pool.Assign:
		return d.assign(ctx, a)
	case pool.Attach:
		return d.attach(ctx, a)
	case pool.Unassign:
		return d.unassign(ctx, a)
	case pool.Detach:
		return d.detach(ctx, a)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

func (d *Daemon) counted(count int) (ips, prefixes int) {
	if d.cfg.Pool.Mode == pool.ModePrefix {
		return 0, count
	}
	return count, 0
}

func (d *Daemon) assign(ctx context.Context, a pool.Action) error {
	ips, pfx := d.counted(a.Count)
	got, err := d.cloud.Assign(ctx, providers.AssignRequest{InterfaceID: a.Interface, IPCount: ips, PrefixCount: pfx})
	if err != nil {
		return fmt.Errorf("assign %d to %s: %w", a.Count, a.Interface, err)
	}
	failpoint.Hit("ipamd-assign-cloud") // the cloud assigned, the store does not know yet
	return d.record(a.Interface, got.IPs, got.Prefixes)
}

// record adds addresses the cloud assigned to the datastore as free.
func (d *Daemon) record(iface string, ips []netip.Addr, prefixes []netip.Prefix) error {
	now := time.Now()
	if len(ips) > 0 {
		if _, err := d.store.AddAddresses(iface, netip.Prefix{}, ips, now); err != nil {
			return err
		}
	}
	for _, p := range prefixes {
		if _, err := d.store.AddAddresses(iface, p, expand(p), now); err != nil {
			return err
		}
	}
	return nil
}

// expand lists a prefix's addresses.
func expand(p netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for a := p.Masked().Addr(); p.Contains(a); a = a.Next() {
		out = append(out, a)
	}
	return out
}

func (d *Daemon) attach(ctx context.Context, a pool.Action) error {
	ips, pfx := d.counted(a.Count)
	ni, err := d.cloud.CreateInterface(ctx, providers.CreateInterfaceRequest{
		InstanceID: d.cfg.InstanceID, SubnetID: d.cfg.SubnetID, SecurityGroups: d.cfg.SecurityGroups,
		DeviceIndex: a.DeviceIndex, IPCount: ips, PrefixCount: pfx,
	})
	if err != nil {
		return fmt.Errorf("attach an interface at device index %d: %w", a.DeviceIndex, err)
	}
	// Record the interface as soon as the cloud has attached it, so that no plan attaches
	// another at the same device index while its link is still on its way to the node. Its
	// addresses are recorded (and handed out) only once the link is up; if it never comes up,
	// the next resync adopts them when the datapath works.
	in := storeInterface(ni, time.Now())
	if err := d.store.PutInterface(in); err != nil {
		return err
	}
	if err := d.ensureLink(ctx, in); err != nil {
		return err
	}
	d.log.Info("interface attached", "interface", ni.ID, "device_index", ni.DeviceIndex, "addresses", len(ni.IPs), "prefixes", len(ni.Prefixes))
	return d.record(ni.ID, ni.IPs, ni.Prefixes)
}

func storeInterface(ni *providers.Interface, now time.Time) store.Interface {
	return store.Interface{ID: ni.ID, MAC: ni.MAC, DeviceIndex: ni.DeviceIndex, SubnetID: ni.SubnetID,
		SubnetCIDR: ni.SubnetCIDR, PrimaryIP: ni.PrimaryIP, Managed: ni.Managed, AddedAt: now}
}

// linkWait bounds how long ensureLink waits for a just-attached interface to show up on the
// node: a real cloud hot-plugs it within seconds, the lab's fabric within milliseconds.
const linkWait = 30 * time.Second

// ensureLink brings up the node's side of a cloud interface, waiting for its link to appear.
func (d *Daemon) ensureLink(ctx context.Context, in store.Interface) error {
	link, err := linkOf(in)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(linkWait)
	for {
		err := d.dp.EnsureInterface(ctx, link)
		if err == nil {
			return nil
		}
		if !errors.Is(err, nodenet.ErrLinkNotFound) || time.Now().After(deadline) {
			return fmt.Errorf("bring up interface %s (device %d): %w", in.ID, in.DeviceIndex, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unassign forgets the addresses first (durably), then gives them back: a crash in between
// leaves addresses the cloud still assigns, which the next reconcile adopts. The other order
// could hand out an address the cloud no longer assigns.
func (d *Daemon) unassign(ctx context.Context, a pool.Action) error {
	now := time.Now()
	ips, err := d.store.RemoveFree(a.IPs, now, d.cfg.Cooldown)
	if err != nil {
		return err
	}
	var prefixes []netip.Prefix
	for _, p := range a.Prefixes {
		ok, err := d.store.RemovePrefix(p, now, d.cfg.Cooldown)
		if err != nil {
			return err
		}
		if ok {
			prefixes = append(prefixes, p)
		}
	}
	if len(ips)+len(prefixes) == 0 {
		return nil // all taken meanwhile
	}
	failpoint.Hit("ipamd-unassign-stored") // forgotten, not yet given back to the cloud
	if err := d.cloud.Unassign(ctx, providers.UnassignRequest{InterfaceID: a.Interface, IPs: ips, Prefixes: prefixes}); err != nil {
		d.requestResync() // the cloud may still assign what the record forgot: adopt it back
		return fmt.Errorf("unassign from %s: %w", a.Interface, err)
	}
	failpoint.Hit("ipamd-unassign-cloud") // given back, not yet logged
	d.log.Info("addresses given back", "interface", a.Interface, "addresses", len(ips), "prefixes", len(prefixes))
	return nil
}

func (d *Daemon) detach(ctx context.Context, a pool.Action) error {
	if err := d.store.RemoveInterface(a.Interface, false); err != nil {
		if errors.Is(err, store.ErrAssigned) {
			return nil // an allocation took one of its addresses meanwhile
		}
		return err
	}
	// From here the record has forgotten the interface: on any failure the cloud still has
	// it (and its addresses), and the resync adopts it back rather than wait for the next one.
	if err := d.dp.RemoveInterface(ctx, a.DeviceIndex); err != nil {
		d.requestResync()
		return fmt.Errorf("remove datapath of device %d: %w", a.DeviceIndex, err)
	}
	if err := d.cloud.DeleteInterface(ctx, a.Interface); err != nil {
		d.requestResync()
		return fmt.Errorf("detach %s: %w", a.Interface, err)
	}
	d.log.Info("interface detached", "interface", a.Interface, "device_index", a.DeviceIndex)
	return nil
}

func (d *Daemon) updateGauges(now time.Time) {
	c := d.counts(now)
	d.m.pool.WithLabelValues(store.StateFree).Set(float64(c.free))
	d.m.pool.WithLabelValues(store.StateCooling).Set(float64(c.cooling))
	d.m.pool.WithLabelValues(store.StateAssigned).Set(float64(c.assigned))
	if d.ready.Load() {
		d.mu.Lock()
		full := d.full
		d.mu.Unlock()
		d.obs.PoolChanged(PoolReport{Free: c.free, Cooling: c.cooling, Assigned: c.assigned,
			Capacity: d.cfg.Pool.Capacity(d.limits), Full: full})
	}
}
