package nodenet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrLinkNotFound is wrapped when no link carries an interface's MAC: the cloud says the
// interface is attached but the kernel has not shown it yet (retry), or the MAC is wrong.
var ErrLinkNotFound = errors.New("no link with that MAC")

// linkByMAC finds the link carrying mac. Names are not stable across attach/detach, MACs are.
// Links enslaved to another (bond ports, VLANs on top) share the MAC, so only links without a
// master and of a physical-like type count.
func (n *Node) linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := n.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var found []netlink.Link
	for _, l := range links {
		a := l.Attrs()
		if bytes.Equal(a.HardwareAddr, mac) && a.MasterIndex == 0 && l.Type() != "vlan" {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w %s", ErrLinkNotFound, mac)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, l := range found {
		names = append(names, l.Attrs().Name)
	}
	return nil, fmt.Errorf("MAC %s is on %d links (%s); cannot tell which is the cloud interface",
		mac, len(found), strings.Join(names, ", "))
}

// ensureLink brings the link up, sets its MTU and loose rp_filter; for a secondary interface it
// also makes sure the primary address is present (as /32 noprefixroute, the shape the cloud
// agent and the lab give it, so main gets no connected route through this link).
func (n *Node) ensureLink(link netlink.Link, in Interface) error {
	a := link.Attrs()
	if mtu := n.mtuFor(in); mtu != 0 && a.MTU != mtu {
		if err := n.nl.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU %d (was %d): %w", mtu, a.MTU, err)
		}
		n.log.Info("link MTU set", "link", a.Name, "mtu", mtu, "was", a.MTU)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := n.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("set link up: %w", err)
		}
		n.log.Info("link up", "link", a.Name)
	}
	if _, err := n.ensureSysctls(interfaceSysctls(a.Name)); err != nil {
		return err
	}
	if in.DeviceIndex == 0 {
		return nil
	}
	return n.ensureAddress(link, in.PrimaryIP)
}

func (n *Node) mtuFor(in Interface) int {
	if in.MTU != 0 {
		return in.MTU
	}
	return n.cfg.MTU
}

func (n *Node) ensureAddress(link netlink.Link, ip netip.Addr) error {
	addrs, err := n.nl.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip {
			return nil
		}
	}
	addr := &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(ip, 32)), Flags: unix.IFA_F_NOPREFIXROUTE}
	if err := n.nl.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add address %s/32: %w", ip, err)
	}
	n.log.Info("address added", "link", link.Attrs().Name, "addr", ip)
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetToPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}
