package fakecloud

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

// WatchHealth implements providers.LoadBalancing over fakecloud's change stream: a snapshot gives
// every target's health and the sequence to follow from, then GetChanges long-polls for target
// changes. When the stream says the watcher fell behind (Resync), it starts over from a new
// snapshot. Transient errors are retried with a capped backoff; ctx ends it.
func (d *LoadBalancing) WatchHealth(ctx context.Context, fn func(providers.HealthEvent)) error {
	backoff := 100 * time.Millisecond
	for {
		err := d.watchOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !providers.Retryable(err) {
			return fmt.Errorf("watch target health: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// errResync ends one watch so that WatchHealth starts over from a snapshot.
var errResync = &providers.Error{Kind: providers.ErrTransient, Err: errors.New("the change stream asks for a resync")}

func (d *LoadBalancing) watchOnce(ctx context.Context, fn func(providers.HealthEvent)) error {
	snap, err := do(d, api.ActionGetSnapshot, func() (*api.GetSnapshotResponse, error) {
		return d.c.GetSnapshot(ctx, &api.GetSnapshotRequest{})
	})
	if err != nil {
		return err
	}
	full := providers.HealthEvent{Full: true}
	for _, lb := range snap.Snapshot.LoadBalancers {
		st, reason := fromLBState(lb)
		full.LoadBalancers = append(full.LoadBalancers, providers.LoadBalancerState{ID: lb.LoadBalancerID, State: st, Reason: reason})
	}
	for _, th := range snap.Snapshot.Targets {
		h, err := fromTargetHealth(th)
		if err != nil {
			return err
		}
		full.Targets = append(full.Targets, h)
	}
	fn(full)
	since := snap.Snapshot.Seq
	for {
		resp, err := d.c.WaitChanges(ctx, since, d.wait)
		if err != nil {
			return classify(err)
		}
		if resp.Resync {
			return errResync
		}
		var ev providers.HealthEvent
		for _, c := range resp.Changes {
			if c.Kind == api.KindLoadBalancer {
				ev.LoadBalancers = append(ev.LoadBalancers, lbChange(c))
				continue
			}
			if c.Kind != api.KindTarget {
				continue
			}
			h, ok := targetChange(c)
			if ok {
				ev.Targets = append(ev.Targets, h)
			}
		}
		if len(ev.Targets) > 0 || len(ev.LoadBalancers) > 0 {
			fn(ev)
		}
		since = resp.Seq
	}
}

// lbChange turns one load balancer change into its state; a deleted one is Gone.
func lbChange(c api.Change) providers.LoadBalancerState {
	if c.LoadBalancer == nil {
		return providers.LoadBalancerState{ID: c.ID, Gone: true}
	}
	st, reason := fromLBState(*c.LoadBalancer)
	return providers.LoadBalancerState{ID: c.ID, State: st, Reason: reason}
}

// targetChange turns one target change into health; a deleted target is Gone.
func targetChange(c api.Change) (providers.TargetHealth, bool) {
	if c.Target != nil {
		h, err := fromTargetHealth(*c.Target)
		return h, err == nil
	}
	// A delete carries only the ID, <tg-id>/<ip>:<port>.
	tg, hostPort, ok := strings.Cut(c.ID, "/")
	if !ok {
		return providers.TargetHealth{}, false
	}
	t, err := parseHostPort(hostPort)
	if err != nil {
		return providers.TargetHealth{}, false
	}
	return providers.TargetHealth{TargetGroupID: tg, Target: t, Gone: true}, true
}

func parseHostPort(s string) (providers.Target, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return providers.Target{}, err
	}
	return providers.Target{IP: ap.Addr(), Port: int(ap.Port())}, nil
}
