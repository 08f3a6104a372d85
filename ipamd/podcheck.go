package ipamd

import (
	"context"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// PodChecker judges, at start-up (and for allocations then too young, later), whether the pod behind an allocation still exists. An error
// means "cannot tell": the allocation is kept.
type PodChecker interface {
	Alive(ctx context.Context, owners []wire.Owner) (map[wire.Owner]bool, error)
}

// AllAlive trusts the record: allocations of vanished pods are left to the runtime's CNI GC.
type AllAlive struct{}

// Alive implements PodChecker.
func (AllAlive) Alive(_ context.Context, owners []wire.Owner) (map[wire.Owner]bool, error) {
	out := make(map[wire.Owner]bool, len(owners))
	for _, o := range owners {
		out[o] = true
	}
	return out, nil
}

// LinkChecker finds live pods by their host-side veth: the CNI plugin sets each one's alias to
// "flatnet/<network>/<containerID>/<ifName>". A pod whose link is gone was deleted while
// ipamd was down and its release never arrived.
type LinkChecker struct{}

// linkAliasPrefix is the CNI plugin's marker (cni/names.go).
const linkAliasPrefix = "flatnet/"

// Alive implements PodChecker.
func (LinkChecker) Alive(_ context.Context, owners []wire.Owner) (map[wire.Owner]bool, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, l := range links {
		if a, ok := strings.CutPrefix(l.Attrs().Alias, linkAliasPrefix); ok {
			live[a] = true
		}
	}
	out := make(map[wire.Owner]bool, len(owners))
	for _, o := range owners {
		out[o] = live[o.Network+"/"+o.ContainerID+"/"+o.IfName]
	}
	return out, nil
}

func podChecker(name string) PodChecker {
	if name == "link" {
		return LinkChecker{}
	}
	return AllAlive{}
}

// unjudged is an allocation found at start that the pod check has not judged yet.
type unjudged struct {
	assignedAt time.Time // identifies the allocation: a later one of the same owner differs
	asked      time.Time // the last repeated allocate of the owner since start
	judging    bool      // the checker is looking at it; a repeated allocate clears this
}

// releaseGonePods runs at start: it releases the allocations whose pod the checker says is
// gone. The plugin tags its host link only after allocate answered, so an allocation younger
// than PodCheckGrace may belong to a pod being wired right now; it is judged later, by
// judgePods on the worker, once it is old enough.
func (d *Daemon) releaseGonePods(ctx context.Context) {
	found := map[wire.Owner]*unjudged{}
	for _, a := range d.store.Addresses() {
		if !a.Free() {
			found[a.Owner] = &unjudged{assignedAt: a.AssignedAt}
		}
	}
	d.mu.Lock()
	d.unjudged = found
	d.mu.Unlock()
	d.judgePods(ctx, time.Now())
}

// judgePods judges the start-up allocations that are now older than PodCheckGrace and
// releases those whose pod is gone. now is taken before the checker looks: an allocation old
// enough at now has its link tagged by then if its pod lives.
func (d *Daemon) judgePods(ctx context.Context, now time.Time) {
	due := d.duePods(now)
	if len(due) == 0 {
		return
	}
	alive, err := d.pods.Alive(ctx, due)
	if err != nil {
		d.log.Warn("cannot tell which pods still exist; keeping their allocations", "count", len(due), "err", err)
		d.mu.Lock()
		for _, o := range due {
			delete(d.unjudged, o)
		}
		d.mu.Unlock()
		return
	}
	for _, o := range due {
		if d.releaseJudged(o, alive[o]) {
			d.m.reconcile.WithLabelValues("released").Inc()
			d.log.Info("released the address of a pod that is gone", "owner", o.Key())
			d.poke()
		}
	}
}

// duePods marks and returns the unjudged allocations old enough to judge at now, and forgets
// those released or replaced since start.
func (d *Daemon) duePods(now time.Time) []wire.Owner {
	d.mu.Lock()
	defer d.mu.Unlock()
	var due []wire.Owner
	for o, u := range d.unjudged {
		a, ok := d.store.ByOwner(o)
		if !ok || !a.AssignedAt.Equal(u.assignedAt) {
			delete(d.unjudged, o) // released, or allocated anew by a running ipamd
			continue
		}
		if now.Sub(u.assignedAt) >= d.cfg.PodCheckGrace && now.Sub(u.asked) >= d.cfg.PodCheckGrace {
			u.judging = true
			due = append(due, o)
		}
	}
	return due
}

// releaseJudged forgets o's judgement and releases its address when its pod is gone and no
// allocate asked for it while the checker looked. It holds d.mu across the release so that a
// repeated allocate (askedAgain, called before the store hands the address out) either comes
// first and saves it, or comes after and gets a fresh allocation.
func (d *Daemon) releaseJudged(o wire.Owner, alive bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.unjudged[o]
	if !ok || !u.judging {
		return false // asked for again meanwhile: judged another time
	}
	delete(d.unjudged, o)
	if alive {
		return false
	}
	a, held := d.store.ByOwner(o)
	if !held || !a.AssignedAt.Equal(u.assignedAt) {
		return false
	}
	_, released, err := d.store.Release(o, time.Now())
	if err != nil {
		d.log.Warn("release the address of a pod that is gone", "owner", o.Key(), "err", err)
	}
	return released
}

// askedAgain notes an allocate of an owner not judged yet: the plugin is wiring its pod
// (again), so the check waits another PodCheckGrace. Allocate calls it before the store.
func (d *Daemon) askedAgain(o wire.Owner, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u, ok := d.unjudged[o]; ok {
		u.asked, u.judging = now, false
	}
}
