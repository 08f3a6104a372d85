package fabric

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// nsID identifies a namespace: the device and inode of its nsfs file, the same whichever path
// reaches it.
type nsID struct{ dev, ino uint64 }

// statNetns checks that path is a network namespace and returns its identity. The errors say
// what the path is instead, in words a person running `fakecloud serve --fabric-attach` can act on.
func statNetns(path string) (nsID, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nsID{}, fmt.Errorf("network namespace %s does not exist (the process it belonged to has exited, or its bind mount is gone)", path)
	}
	if err != nil {
		return nsID{}, fmt.Errorf("network namespace %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nsID{}, fmt.Errorf("%s is not a network namespace but %s: give /proc/<pid>/ns/net of a process inside the namespace, or a bind mount of it", path, fileKind(fi.Mode()))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nsID{}, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return nsID{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return nsID{}, fmt.Errorf("%s is not a network namespace but a regular file: give /proc/<pid>/ns/net of a process inside the namespace, or a bind mount of it", path)
	}
	typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return nsID{}, fmt.Errorf("namespace type of %s: %w", path, err)
	}
	if typ != unix.CLONE_NEWNET {
		return nsID{}, fmt.Errorf("%s is a %s namespace, not a network namespace: use the process's ns/net", path, nsTypeName(typ))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsID{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a " + m.Type().String() + " file"
}

func nsTypeName(t int) string {
	switch t {
	case unix.CLONE_NEWNS:
		return "mount"
	case unix.CLONE_NEWUTS:
		return "UTS"
	case unix.CLONE_NEWIPC:
		return "IPC"
	case unix.CLONE_NEWPID:
		return "PID"
	case unix.CLONE_NEWUSER:
		return "user"
	case unix.CLONE_NEWCGROUP:
		return "cgroup"
	case unix.CLONE_NEWTIME:
		return "time"
	}
	return fmt.Sprintf("type %#x", t)
}

// attach checks that an attached node's namespace can be used and records its identity, by
// which a later check notices that it vanished or was replaced. It refuses the namespace the
// fabric runs in (the host's), the fabric's own namespaces, and one already attached at another
// path. It changes nothing in the namespace.
func (k *kernel) attach(n Node) error {
	id, err := statNetns(n.Netns)
	if err != nil {
		return fmt.Errorf("instance %s: %w", n.Instance, err)
	}
	if k.homeErr == nil && k.home == id {
		return fmt.Errorf("instance %s: %s is the network namespace fakecloud itself runs in (the host's, /proc/self/ns/net): the fabric never wires into it", n.Instance, n.Netns)
	}
	if oid, err := statNetns("/proc/1/ns/net"); err == nil && oid == id {
		return fmt.Errorf("instance %s: %s is the network namespace fakecloud itself runs in (the host's, /proc/1/ns/net): the fabric never wires into it", n.Instance, n.Netns)
	}
	names, err := netns.List(k.prefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		if nid, err := statNetns(netns.Path(name)); err == nil && nid == id {
			return fmt.Errorf("instance %s: %s is the fabric's own namespace %s: attach only namespaces someone else owns", n.Instance, n.Netns, name)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for path, aid := range k.attached {
		if path != n.Netns && aid == id {
			return fmt.Errorf("instance %s: %s is the namespace already attached at %s: a namespace can be one instance only", n.Instance, n.Netns, path)
		}
	}
	k.attached[n.Netns] = id
	return nil
}

func (k *kernel) dropHandleLocked(ns string) {
	if h := k.handles[ns]; h != nil {
		h.Close()
	}
	delete(k.handles, ns)
	delete(k.handleIDs, ns)
}

// checkAttached reports whether an attached namespace is still the one the fabric wired: nil, or
// why not (gone, or another namespace at the path now).
func (k *kernel) checkAttached(path string) error {
	id, err := statNetns(path)
	if err != nil {
		return err
	}
	k.mu.Lock()
	want, ok := k.attached[path]
	k.mu.Unlock()
	if ok && want != id {
		return fmt.Errorf("%s is another namespace than the one the fabric wired (its container was replaced)", path)
	}
	return nil
}

// forgetAttached lets go of an attached namespace: its cached handle, which would keep a
// namespace whose processes are gone alive, and its identity.
func (k *kernel) forgetAttached(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropHandleLocked(path)
	delete(k.attached, path)
}

// detach unplugs an attached node: its ports are deleted on the router's side, which destroys
// their ends in the namespace with every address and route on them; then any link in the
// namespace that still carries the fabric's alias for this instance goes too. The namespace,
// and everything its owner made in it, stays.
func (k *kernel) detach(n Node, ports []PortOp) error {
	var errs []error
	for _, op := range ports {
		if !netns.Exists(RouterNetns(k.prefix, op.VpcID)) {
			continue // the router and every pair into it are gone
		}
		errs = append(errs, k.delPort(op))
	}
	if _, err := statNetns(n.Netns); err == nil {
		errs = append(errs, k.unplugLeftovers(n))
	}
	k.forgetAttached(n.Netns)
	return errors.Join(errs...)
}

func (k *kernel) unplugLeftovers(n Node) error {
	h, err := k.handle(n.Netns)
	if err != nil {
		return err
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("links of %s: %w", n.Netns, err)
	}
	var errs []error
	for _, l := range links {
		if _, inst, _, _, ok := parseAlias(l.Attrs().Alias); ok && inst == n.Instance {
			if err := h.LinkDel(l); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
				errs = append(errs, fmt.Errorf("delete %s from %s: %w", l.Attrs().Name, n.Netns, err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkAttachedLink makes sure the device a port is about to get in an attached namespace is
// free or the fabric's own: a link of that name the namespace's owner made is never deleted.
func checkAttachedLink(nh *netlink.Handle, p Port) error {
	l, err := nh.LinkByName(p.nodeLink())
	if err != nil {
		return nil //nolint:nilerr // no such link: the name is free
	}
	if _, _, _, _, ok := parseAlias(l.Attrs().Alias); ok {
		if err := nh.LinkDel(l); err != nil {
			return fmt.Errorf("delete leftover %s in %s: %w", p.nodeLink(), p.Netns, err)
		}
		return nil
	}
	return fmt.Errorf("instance %s: %s already has a link %s that the fabric did not make: rename or remove it, the fabric will not", p.Instance, p.Netns, p.nodeLink())
}

// checkRouteConflicts refuses to route through the fabric what the namespace already routes
// elsewhere: a route of the namespace's own (not on link ours) to an address inside the subnet
// or one of the fabric's destinations would be shadowed, or would shadow them. The halves that
// take the default route over are meant to lose to the namespace's more specific routes, and
// are not checked.
func checkRouteConflicts(nh *netlink.Handle, p Port, ours int) error {
	all, err := parseRoutes(p.NodeRoutes)
	if err != nil {
		return err
	}
	want := []netip.Prefix{p.Addr.Masked()}
	for _, dst := range all {
		if !slices.Contains(defaultHalves, dst) {
			want = append(want, dst)
		}
	}
	routes, err := nh.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("routes of %s: %w", p.Netns, err)
	}
	for _, r := range routes {
		dst, ok := ipNetPrefix(r.Dst)
		if !ok || r.LinkIndex == ours && ours != 0 {
			continue // a default route (0.0.0.0/0) is never inside a destination of ours
		}
		for _, w := range want {
			if dst.Bits() >= w.Bits() && w.Contains(dst.Addr()) {
				return fmt.Errorf("instance %s: %s already routes %s itself (%s), inside %s that the fabric would route to the VPC: the namespace's own networks overlap the VPC; give the VPC a CIDR they do not use",
					p.Instance, p.Netns, dst, r.String(), w)
			}
		}
	}
	return nil
}

// configureAttachedLink sets up a port's device in an attached namespace: up, the primary IP
// (subnet prefix length on device 0, a /32 without prefix route elsewhere) and, on device 0,
// exactly the routes of NodeRoutes through the gateway (marked with the fabric's protocol, so
// they are told from the owner's). Nothing else in the namespace changes: its default route
// stays unless NodeRoutes takes the two halves of the address space.
func configureAttachedLink(nh *netlink.Handle, p, old Port) error {
	name := p.nodeLink()
	l, err := nh.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s of %s in %s: %w", name, p.Instance, p.Netns, err)
	}
	if err := nh.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s of %s up: %w", name, p.Instance, err)
	}
	if p.Device == 0 {
		if err := checkRouteConflicts(nh, p, l.Attrs().Index); err != nil {
			return err
		}
	}
	if old.Addr.IsValid() && old.Addr != p.Addr {
		err := nh.AddrDel(l, &netlink.Addr{IPNet: prefixNet(old.Addr)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %s from %s of %s: %w", old.Addr, name, p.Instance, err)
		}
	}
	a := &netlink.Addr{IPNet: prefixNet(p.Addr)}
	if p.Device != 0 {
		a.Flags = unix.IFA_F_NOPREFIXROUTE
	}
	if err := nh.AddrReplace(l, a); err != nil {
		return fmt.Errorf("address %s on %s of %s: %w", p.Addr, name, p.Instance, err)
	}
	if p.Device != 0 {
		return nil
	}
	return setAttachedRoutes(nh, l, p)
}

func setAttachedRoutes(nh *netlink.Handle, l netlink.Link, p Port) error {
	want, err := parseRoutes(p.NodeRoutes)
	if err != nil {
		return err
	}
	wanted := map[netip.Prefix]bool{}
	for _, dst := range want {
		wanted[dst] = true
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(dst), Gw: p.Gateway.AsSlice(),
			Protocol: routeProto, Table: unix.RT_TABLE_MAIN}
		if err := nh.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s on %s of %s: %w", dst, p.Gateway, p.nodeLink(), p.Instance, err)
		}
	}
	have, err := ownRoutes(nh, l)
	if err != nil {
		return err
	}
	for _, r := range have {
		if dst, ok := ipNetPrefix(r.Dst); ok && !wanted[dst] {
			if err := nh.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("delete route %s on %s of %s: %w", dst, p.nodeLink(), p.Instance, err)
			}
		}
	}
	return nil
}

// ownRoutes are the routes the fabric put on a link of an attached namespace.
func ownRoutes(nh *netlink.Handle, l netlink.Link) ([]netlink.Route, error) {
	filter := &netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_MAIN, Protocol: routeProto}
	rs, err := nh.RouteListFiltered(unix.AF_INET, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("routes of %s: %w", l.Attrs().Name, err)
	}
	return rs, nil
}

// observeAttachedRoutes reads back the routes of an attached node's device 0 and their gateway.
func observeAttachedRoutes(nh *netlink.Handle, l netlink.Link, p *Port) error {
	rs, err := ownRoutes(nh, l)
	if err != nil {
		return err
	}
	var dsts []netip.Prefix
	for _, r := range rs {
		dst, ok := ipNetPrefix(r.Dst)
		if !ok {
			continue
		}
		dsts = append(dsts, dst)
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			p.Gateway = gw.Unmap()
		}
	}
	p.NodeRoutes = formatRoutes(dsts)
	return nil
}

// unplugAttached deletes, in each router namespace of a fabric, the ports that lead into
// attached namespaces: deleting a veth end destroys its peer at once, so the attached
// namespaces are back to what their owners made before Down deletes the routers.
func unplugAttached(prefix string, names []string) error {
	var errs []error
	for _, name := range names {
		if kind, _, ok := nsKind(prefix, name); !ok || kind != 'r' {
			continue
		}
		errs = append(errs, unplugAttachedIn(name))
	}
	return errors.Join(errs...)
}

func unplugAttachedIn(router string) error {
	nsh, err := vnetns.GetFromPath(netns.Path(router))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open netns %s: %w", router, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", router, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("links of %s: %w", router, err)
	}
	var errs []error
	for _, l := range links {
		if _, _, _, ns, ok := parseAlias(l.Attrs().Alias); ok && ns != "" {
			if err := h.LinkDel(l); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
				errs = append(errs, fmt.Errorf("unplug %s (into %s) in %s: %w", l.Attrs().Name, ns, router, err))
			}
		}
	}
	return errors.Join(errs...)
}
