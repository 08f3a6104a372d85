package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// addPort plugs an interface into its node: a veth pair created in the router namespace with its
// peer born inside the node namespace as eth<Device> (vpc<Device> in an attached namespace),
// carrying the interface's MAC.
func (k *kernel) addPort(op PortOp) error {
	p := op.Port
	rns, nns := RouterNetns(k.prefix, op.VpcID), p.nodeNs(k.prefix)
	h, err := k.handle(rns)
	if err != nil {
		return err
	}
	nh, err := k.handle(nns)
	if err != nil {
		return err
	}
	if err := removeLeftovers(h, nh, p); err != nil {
		return err
	}
	if p.Netns != "" && p.Device == 0 {
		// Before anything is created: a VPC overlapping the namespace's own networks fails whole.
		if err := checkRouteConflicts(nh, p, 0); err != nil {
			return err
		}
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return fmt.Errorf("interface %s: mac %q: %w", p.ENI, p.MAC, err)
	}
	fd, err := unix.Open(netns.File(nns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nns, err)
	}
	defer unix.Close(fd)
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: portName(p.ENI), MTU: k.mtu},
		PeerName:         p.nodeLink(),
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth for %s in %s: %w", p.ENI, rns, err)
	}
	// Proxy ARP answers at once: neigh/default does not exist outside the root namespace, so
	// the delay is set per port.
	if err := sysctl(rns, "net.ipv4.neigh."+portName(p.ENI)+".proxy_delay", "0",
		"net.ipv4.conf."+portName(p.ENI)+".rp_filter", rpFilter(p)); err != nil {
		return err
	}
	l, err := h.LinkByName(portName(p.ENI))
	if err != nil {
		return fmt.Errorf("port of %s: %w", p.ENI, err)
	}
	// The kernel ignores an alias given at creation; set it now (it is how a restart adopts).
	alias := portAlias(p.ENI, p.Instance, p.Device, p.Netns)
	if err := h.LinkSetAlias(l, alias); err != nil {
		return fmt.Errorf("alias port of %s: %w", p.ENI, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("port of %s up: %w", p.ENI, err)
	}
	k.setPortIndex(p.ENI, l.Attrs().Index)
	if p.Netns != "" {
		// The node end says whose it is too: the fabric deletes only links that do.
		nl, err := nh.LinkByName(p.nodeLink())
		if err != nil {
			return fmt.Errorf("%s of %s in %s: %w", p.nodeLink(), p.Instance, p.Netns, err)
		}
		if err := nh.LinkSetAlias(nl, alias); err != nil {
			return fmt.Errorf("alias %s of %s in %s: %w", p.nodeLink(), p.Instance, p.Netns, err)
		}
	}
	return configureNodeLink(nh, p, Port{})
}

// removeLeftovers deletes a router port or node device that stands in the way of a new pair
// (a half-made earlier attempt). Deleting either end of a veth destroys both. In an attached
// namespace only a device the fabric made goes; another of the same name is an error.
func removeLeftovers(h, nh *netlink.Handle, p Port) error {
	if l, err := h.LinkByName(portName(p.ENI)); err == nil {
		if err := h.LinkDel(l); err != nil {
			return fmt.Errorf("delete leftover port of %s: %w", p.ENI, err)
		}
	}
	if p.Netns != "" {
		return checkAttachedLink(nh, p)
	}
	if l, err := nh.LinkByName(nodeLinkName(p.Device)); err == nil {
		if err := nh.LinkDel(l); err != nil {
			return fmt.Errorf("delete leftover %s of %s: %w", nodeLinkName(p.Device), p.Instance, err)
		}
	}
	return nil
}

// setSourceDestCheck turns strict reverse-path filtering on the router's end on or off. Strict
// mode accepts a packet only when the route back to its source leaves through the same port,
// and the router has a /32 or /28 route for exactly the addresses assigned to that interface.
func (k *kernel) setSourceDestCheck(vpc string, p Port) error {
	return sysctl(RouterNetns(k.prefix, vpc), "net.ipv4.conf."+portName(p.ENI)+".rp_filter", rpFilter(p))
}

func rpFilter(p Port) string {
	if p.SourceDestCheck {
		return "1"
	}
	return "0"
}

// configureNodeLink sets the node end up the way a cloud image's DHCP client would: eth0 gets its
// primary IP with the subnet's prefix length and a default route via the subnet gateway; other
// devices get their primary IP as a /32 without a prefix route, and no routes. In an attached
// namespace configureAttachedLink does it, without taking the default route.
func configureNodeLink(nh *netlink.Handle, p, old Port) error {
	if p.Netns != "" {
		return configureAttachedLink(nh, p, old)
	}
	name := nodeLinkName(p.Device)
	l, err := nh.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", name, p.Instance, err)
	}
	if err := nh.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s of %s up: %w", name, p.Instance, err)
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
	if !p.Gateway.IsValid() {
		return nil
	}
	def := &netlink.Route{
		LinkIndex: l.Attrs().Index, Gw: p.Gateway.AsSlice(), Protocol: unix.RTPROT_DHCP,
		Table: unix.RT_TABLE_MAIN, Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0")),
	}
	if err := nh.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %s on %s of %s: %w", p.Gateway, name, p.Instance, err)
	}
	return nil
}

// fixPort brings an existing pair in line without recreating it: valid traffic keeps flowing.
func (k *kernel) fixPort(op PortOp) error {
	if op.Port.SourceDestCheck != op.Old.SourceDestCheck {
		if err := k.setSourceDestCheck(op.VpcID, op.Port); err != nil {
			return err
		}
	}
	if op.Port.Addr == op.Old.Addr && op.Port.Gateway == op.Old.Gateway && op.Port.NodeRoutes == op.Old.NodeRoutes {
		return nil
	}
	nh, err := k.handle(op.Port.nodeNs(k.prefix))
	if err != nil {
		return err
	}
	return configureNodeLink(nh, op.Port, op.Old)
}

// delPort unplugs an interface: deleting the router end destroys the node's device too.
func (k *kernel) delPort(op PortOp) error {
	k.setPortIndex(op.Old.ENI, 0)
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	l, err := h.LinkByName(portName(op.Old.ENI))
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("port of %s: %w", op.Old.ENI, err)
	}
	if err := h.LinkDel(l); err != nil {
		return fmt.Errorf("delete port of %s: %w", op.Old.ENI, err)
	}
	return nil
}
