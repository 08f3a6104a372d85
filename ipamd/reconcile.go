package ipamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flatnet/flatnet/ipamd/store"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/flatnet/flatnet/providers"
)

// reconcile makes the record agree with the cloud's truth: interfaces and addresses the cloud
// has and the record lacks are adopted (free), those the record has and the cloud lacks are
// dropped once older than VisibilityGrace (the cloud may not show them yet), and an assigned
// address the cloud lost is re-assigned explicitly. Interfaces ipamd created that are not
// attached are deleted. At start-up it also releases allocations whose pod is gone.
func (d *Daemon) reconcile(ctx context.Context, start bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	inst, err := d.cloud.DescribeInstance(ctx, d.cfg.InstanceID)
	if err != nil {
		return fmt.Errorf("describe instance: %w", err)
	}
	for _, ni := range inst.Detached {
		if err := d.cloud.DeleteInterface(ctx, ni.ID); err != nil {
			d.log.Warn("delete a leftover interface failed", "interface", ni.ID, "err", err)
			continue
		}
		d.m.reconcile.WithLabelValues("interface_deleted").Inc()
	}
	now := time.Now()
	seen := map[string]bool{}
	for i := range inst.Interfaces {
		ni := &inst.Interfaces[i]
		if !ni.Ready {
			continue // attaching or detaching: next time
		}
		seen[ni.ID] = true
		if err := d.adoptInterface(ctx, ni, now); err != nil {
			d.log.Warn("adopt interface failed", "interface", ni.ID, "err", err)
		}
	}
	for _, in := range d.store.Interfaces() {
		if seen[in.ID] || now.Sub(in.AddedAt) < d.cfg.VisibilityGrace {
			continue
		}
		d.dropInterface(ctx, in)
	}
	if start {
		d.releaseGonePods(ctx)
	}
	d.notify()
	return nil
}

// adoptInterface records a cloud interface and its addresses and repairs differences.
func (d *Daemon) adoptInterface(ctx context.Context, ni *providers.Interface, now time.Time) error {
	in, known := d.store.Interface(ni.ID)
	if !known {
		in = storeInterface(ni, now)
	} else {
		in.DeviceIndex, in.MAC, in.PrimaryIP, in.SubnetCIDR, in.SubnetID = ni.DeviceIndex, ni.MAC, ni.PrimaryIP, ni.SubnetCIDR, ni.SubnetID
		in.Managed = in.Managed || ni.Managed
	}
	if err := d.ensureLink(ctx, in); err != nil {
		return err // its addresses are not usable until the datapath works
	}
	if err := d.store.PutInterface(in); err != nil {
		return err
	}
	cloud := map[netip.Addr]bool{}
	for _, ip := range ni.IPs {
		cloud[ip] = true
	}
	for _, p := range ni.Prefixes {
		for _, ip := range expand(p) {
			cloud[ip] = true
		}
	}
	before := len(d.store.Addresses())
	if err := d.record(ni.ID, ni.IPs, ni.Prefixes); err != nil {
		return err
	}
	if n := len(d.store.Addresses()) - before; n > 0 {
		d.m.reconcile.WithLabelValues("adopted").Add(float64(n))
		d.log.Info("adopted addresses the record lacked", "interface", ni.ID, "count", n)
	}
	for _, a := range d.store.Addresses() {
		if a.Interface != ni.ID || cloud[a.IP] || now.Sub(a.AddedAt) < d.cfg.VisibilityGrace {
			continue
		}
		d.dropAddress(ctx, ni, a)
	}
	return nil
}

// dropAddress handles an address the record holds and the cloud does not.
func (d *Daemon) dropAddress(ctx context.Context, ni *providers.Interface, a store.Address) {
	if a.Free() {
		if err := d.store.RemoveAddresses([]netip.Addr{a.IP}); err == nil {
			d.m.reconcile.WithLabelValues("dropped").Inc()
			d.log.Info("dropped an address the cloud no longer assigns", "ip", a.IP)
		}
		return
	}
	if a.Prefix.IsValid() {
		d.log.Error("an assigned address's prefix is gone from the cloud", "ip", a.IP, "prefix", a.Prefix, "owner", a.Owner.Key())
		d.m.reconcile.WithLabelValues("leaked").Inc()
		return
	}
	if _, err := d.cloud.Assign(ctx, providers.AssignRequest{InterfaceID: ni.ID, IPs: []netip.Addr{a.IP}}); err != nil {
		d.m.reconcile.WithLabelValues("leaked").Inc()
		d.log.Error("an assigned address is gone from the cloud and could not be restored", "ip", a.IP, "owner", a.Owner.Key(), "err", err)
		return
	}
	d.m.reconcile.WithLabelValues("restored").Inc()
	d.log.Warn("restored an assigned address the cloud had lost", "ip", a.IP, "owner", a.Owner.Key())
}

// dropInterface forgets an interface the cloud no longer attaches.
func (d *Daemon) dropInterface(ctx context.Context, in store.Interface) {
	lost := 0
	for _, a := range d.store.Addresses() {
		if a.Interface == in.ID && !a.Free() {
			lost++
		}
	}
	if lost > 0 {
		d.log.Error("an interface with assigned addresses is gone from the cloud; its pods lost their addresses", "interface", in.ID, "assigned", lost)
		d.m.reconcile.WithLabelValues("leaked").Add(float64(lost))
	}
	if err := d.store.RemoveInterface(in.ID, true); err != nil {
		d.log.Warn("forget interface failed", "interface", in.ID, "err", err)
		return
	}
	_ = d.dp.RemoveInterface(ctx, in.DeviceIndex)
	d.m.reconcile.WithLabelValues("interface_dropped").Inc()
}

// replaySpool applies the releases the plugin left while ipamd was unreachable. A file is
// removed only once its release is durable.
func (d *Daemon) replaySpool() {
	entries, err := os.ReadDir(d.cfg.SpoolDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("read the spool", "dir", d.cfg.SpoolDir, "err", err)
		}
		d.m.spool.Set(0)
		return
	}
	depth := 0
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // the plugin's temp files
		}
		depth++
		path := filepath.Join(d.cfg.SpoolDir, e.Name())
		if err := d.replayOne(path, e.Name()); err != nil {
			d.log.Warn("spooled release not applied", "file", path, "err", err)
			continue
		}
		depth--
	}
	d.m.spool.Set(float64(depth))
}

func (d *Daemon) replayOne(path, name string) error {
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // applied already under another name (a migrated legacy file)
	}
	if err != nil {
		return err
	}
	var req wire.ReleaseRequest
	valid := json.Unmarshal(body, &req) == nil && req.Owner.Validate() == nil
	if valid && req.Owner.Key() != name && req.Owner.LegacyKey() == name {
		if path, err = d.migrateSpooled(path, req.Owner); err != nil {
			return err
		}
		name = req.Owner.Key()
	}
	if !valid || req.Owner.Key() != name {
		// Not a release the plugin wrote: keep it out of the way, never act on it.
		if rerr := os.Rename(path, filepath.Join(d.cfg.SpoolDir, "."+name+".invalid")); rerr != nil {
			return errors.Join(fmt.Errorf("spool file is not a valid release"), rerr)
		}
		return fmt.Errorf("spool file is not a valid release for its name; moved aside")
	}
	a, ok, err := d.store.Release(req.Owner, time.Now())
	if err != nil {
		return err
	}
	if ok {
		d.log.Info("applied a spooled release", "owner", name, "ip", a.IP)
		d.poke()
	}
	return os.Remove(path)
}

// migrateSpooled renames a spool file of the older plugin, named by the ambiguous legacy key,
// to owner's key: the owner comes from the file's body, which always named it exactly. When a
// release of the same owner already sits under the new name, that one stays and the legacy
// file goes (both release the same owner). It returns the file's new path.
func (d *Daemon) migrateSpooled(path string, owner wire.Owner) (string, error) {
	final := filepath.Join(d.cfg.SpoolDir, owner.Key())
	if _, err := os.Lstat(final); err == nil {
		return final, os.Remove(path)
	}
	if err := os.Rename(path, final); err != nil {
		return "", fmt.Errorf("migrate the spool file to its unambiguous name %s: %w", owner.Key(), err)
	}
	d.log.Info("migrated a spooled release to its unambiguous name", "from", filepath.Base(path), "to", owner.Key())
	return final, nil
}
