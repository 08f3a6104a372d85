package ipamd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flatnet/flatnet/internal/failpoint"
	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/ipamd/wire"
)

func wireErr(code, format string, args ...any) *wire.Error {
	return &wire.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// allocation turns a stored address into the plugin's answer.
func (d *Daemon) allocation(a store.Address) *wire.Allocation {
	in, _ := d.store.Interface(a.Interface)
	return &wire.Allocation{
		Owner: a.Owner, Pod: a.Pod, IP: a.IP, DeviceIndex: in.DeviceIndex,
		RouteTable: d.routeTable(in.DeviceIndex), MTU: d.cfg.MTU, VPCCIDRs: d.inst.VPCCIDRs,
	}
}

// Allocate gives req's owner an address, waiting (at most AllocWait) for the pool to grow when
// it is empty. Repeating it returns the same allocation.
func (d *Daemon) Allocate(ctx context.Context, req *wire.AllocateRequest) (*wire.Allocation, error) {
	a, _, err := d.allocate(ctx, req)
	return a, err
}

// allocateObserved is allocate that tells the Observer about a failure.
func (d *Daemon) allocateObserved(ctx context.Context, req *wire.AllocateRequest) (*wire.Allocation, bool, error) {
	a, fresh, err := d.allocate(ctx, req)
	if err != nil && ctx.Err() == nil {
		// A request its plugin abandoned (it hung up) failed nobody's pod: no event.
		d.obs.AllocationFailed(req.Pod, err)
	}
	return a, fresh, err
}

// allocate is Allocate that also says whether the allocation is new (not a repeat).
func (d *Daemon) allocate(ctx context.Context, req *wire.AllocateRequest) (*wire.Allocation, bool, error) {
	start := time.Now()
	deadline := start.Add(d.cfg.AllocWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	result := "hit"
	defer func() { d.m.allocLat.WithLabelValues(result).Observe(time.Since(start).Seconds()) }()
	registered := false
	defer func() {
		if registered {
			d.mu.Lock()
			d.waiting--
			d.m.waiting.Set(float64(d.waiting))
			d.mu.Unlock()
		}
	}()
	d.askedAgain(req.Owner, start)
	for {
		now := time.Now()
		d.mu.Lock()
		changed := d.changed
		d.mu.Unlock()
		a, fresh, err := d.store.Assign(req.Owner, req.Pod, now, d.cfg.Cooldown)
		if err == nil {
			failpoint.Hit("ipamd-add-stored") // ADD: allocation recorded, plugin not answered
			if fresh {
				d.demand(now, false)
				d.poke() // the worker decides whether the pool needs to grow back
			}
			return d.allocation(a), fresh, nil
		}
		if !errors.Is(err, store.ErrNoneAvailable) {
			return nil, false, wireErr(wire.CodeInternal, "record the allocation: %v", err)
		}
		result = "miss"
		if !registered {
			registered = true
			d.demand(now, true)
			d.poke()
		}
		if werr := d.fullOrLate(now, deadline); werr != nil {
			return nil, false, werr
		}
		wait := time.NewTimer(min(time.Until(deadline), 250*time.Millisecond))
		select {
		case <-changed:
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return nil, false, wireErr(wire.CodeTryAgain, "allocation abandoned: %v", context.Cause(ctx))
		}
		wait.Stop()
	}
}

// demand records an allocation asked for; waiting counts it as waiting for the pool.
func (d *Daemon) demand(now time.Time, waiting bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastDemand = now
	d.recent = append(d.recent, now)
	if waiting {
		d.waiting++
		d.m.waiting.Set(float64(d.waiting))
	}
}

// fullOrLate says whether a waiting allocation must give up: the node is at its limit with
// nothing cooling that frees before the deadline (full), or the deadline passed (try again).
func (d *Daemon) fullOrLate(now, deadline time.Time) error {
	d.mu.Lock()
	full, lastErr := d.full, d.lastErr
	d.mu.Unlock()
	if full != "" {
		next, ok := d.store.NextFree()
		if !ok || next.ReleasedAt.Add(d.cfg.Cooldown).After(deadline) {
			return wireErr(wire.CodeFull, "%s", full)
		}
	}
	if now.Before(deadline) {
		return nil
	}
	why := "the cloud has not delivered addresses yet"
	if lastErr != nil {
		why = "the last cloud call failed: " + lastErr.Error()
	}
	if full != "" {
		why = full + "; released addresses are still cooling down"
	}
	return wireErr(wire.CodeTryAgain, "no free address within %v: %s", d.cfg.AllocWait, why)
}

// Release frees owner's address. An unknown owner is not an error (DEL is idempotent).
func (d *Daemon) Release(owner wire.Owner) (*wire.ReleaseResponse, error) {
	a, ok, err := d.store.Release(owner, time.Now())
	if err != nil {
		return nil, wireErr(wire.CodeInternal, "record the release: %v", err)
	}
	failpoint.Hit("ipamd-del-stored") // DEL: release recorded, plugin not answered
	if !ok {
		return &wire.ReleaseResponse{}, nil
	}
	d.poke()
	return &wire.ReleaseResponse{Released: true, IP: a.IP, Owner: a.Owner}, nil
}

// Check returns what owner holds.
func (d *Daemon) Check(owner wire.Owner) (*wire.Allocation, error) {
	a, ok := d.store.ByOwner(owner)
	if !ok {
		return nil, wireErr(wire.CodeNotFound, "ipamd holds no address for %s", owner.Key())
	}
	return d.allocation(a), nil
}

// GC releases every allocation of req.Network whose owner is not in req.Valid.
func (d *Daemon) GC(req *wire.GCRequest) (*wire.GCResponse, error) {
	valid := map[wire.Owner]bool{}
	for _, o := range req.Valid {
		valid[o] = true
	}
	out := &wire.GCResponse{Released: []wire.Allocation{}}
	for _, a := range d.store.Addresses() {
		if a.Free() || a.Owner.Network != req.Network || valid[a.Owner] {
			continue
		}
		alloc := d.allocation(a)
		if _, ok, err := d.store.Release(a.Owner, time.Now()); err != nil {
			return nil, wireErr(wire.CodeInternal, "release %s: %v", a.Owner.Key(), err)
		} else if ok {
			out.Released = append(out.Released, *alloc)
		}
	}
	if len(out.Released) > 0 {
		d.poke()
	}
	return out, nil
}

// Status says whether an ADD can be served now.
func (d *Daemon) Status() *wire.StatusResponse {
	now := time.Now()
	c := d.counts(now)
	st := &wire.StatusResponse{Free: c.free, Assigned: c.assigned, Capacity: d.cfg.Pool.Capacity(d.limits)}
	open, until := d.policy.CircuitOpen(now)
	switch {
	case d.store.Err() != nil:
		st.Code, st.Reason = 50, fmt.Sprintf("ipamd cannot record allocations: %v", d.store.Err())
	case !d.ready.Load():
		st.Code, st.Reason = 50, "ipamd is starting: reconciling with the cloud"
	case c.free > 0:
		st.Ready = true
	case c.assigned+c.cooling >= st.Capacity && c.cooling == 0:
		// Full is a matter of capacity, not availability: STATUS stays ready (an ADD gets a
		// clear "node full" error). A runtime that failed STATUS would mark the whole node
		// NotReady, and Kubernetes would taint it and, after the default 300 s toleration, evict
		// its running pods. The orchestrator keeps new pods away through the published capacity.
		st.Ready = true
		st.Reason = fmt.Sprintf("node is full: %d of %d addresses assigned; ADDs fail until pods leave", c.assigned, st.Capacity)
	case open:
		st.Code, st.Reason = 51, fmt.Sprintf("pool is empty and the cloud refuses calls (circuit open until %s)", until.Format(time.RFC3339))
	default:
		st.Ready = true // empty, but an ADD waits while the pool grows
	}
	return st
}

type counts struct{ free, cooling, assigned int }

func (d *Daemon) counts(now time.Time) counts {
	var c counts
	for a := range d.store.Snapshot().Addresses() {
		switch a.State(now, d.cfg.Cooldown) {
		case store.StateAssigned:
			c.assigned++
		case store.StateCooling:
			c.cooling++
		default:
			c.free++
		}
	}
	return c
}
