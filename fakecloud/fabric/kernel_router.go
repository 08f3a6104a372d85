package fabric

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// routerSysctls make a namespace a cloud's virtual router: it forwards; every new port starts with
// strict reverse-path filtering (the source/destination check) and proxy ARP;
// and it never sends redirects (a node must keep sending through it).
var routerSysctls = []string{
	"net.ipv4.ip_forward", "1",
	"net.ipv4.conf.all.rp_filter", "0",
	"net.ipv4.conf.default.rp_filter", "1",
	"net.ipv4.conf.default.proxy_arp", "1",
	"net.ipv4.conf.all.send_redirects", "0",
	"net.ipv4.conf.default.send_redirects", "0",
}

// ensureRouter makes a VPC's router and internet namespaces exist and carry their base setup.
// Every step is idempotent, so adopting an existing router changes nothing that is right.
func (k *kernel) ensureRouter(ref RouterRef) error {
	rns, ins := RouterNetns(k.prefix, ref.VpcID), InternetNetns(k.prefix, ref.VpcID)
	for _, ns := range []string{rns, ins} {
		if err := k.ensureNetns(ns); err != nil {
			return err
		}
	}
	if err := sysctl(rns, routerSysctls...); err != nil {
		return err
	}
	h, err := k.handle(rns)
	if err != nil {
		return err
	}
	if err := addrOnLoopback(h, netip.MustParseAddr(MetadataAddr), true); err != nil {
		return err
	}
	if err := k.ensureInternet(ref); err != nil {
		return err
	}
	return k.ensureSink(h, rns, ref.CIDR)
}

// ensureSink routes the whole VPC CIDR into sink0, a bridge without ports (the kernel here has no
// dummy links): addresses no interface holds are dropped silently, as in a cloud, instead of going
// to the internet. Because that route is unicast, proxy ARP answers for every address of the
// subnets, as a cloud's router does, so a node's ARP cache never holds a failed entry for an
// address that gets assigned later; and strict reverse-path filtering still rejects an unowned
// source, whose route leads to sink0 and not to the port it came in on.
func (k *kernel) ensureSink(h *netlink.Handle, rns string, cidr netip.Prefix) error {
	sink, err := h.LinkByName(sinkLink)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("%s in %s: %w", sinkLink, rns, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: sinkLink}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create %s in %s: %w", sinkLink, rns, err)
		}
		if sink, err = h.LinkByName(sinkLink); err != nil {
			return fmt.Errorf("%s in %s: %w", sinkLink, rns, err)
		}
	}
	if err := h.LinkSetARPOff(sink); err != nil {
		return fmt.Errorf("%s noarp in %s: %w", sinkLink, rns, err)
	}
	if err := h.LinkSetUp(sink); err != nil {
		return fmt.Errorf("%s up in %s: %w", sinkLink, rns, err)
	}
	r := &netlink.Route{
		Dst: prefixNet(cidr), LinkIndex: sink.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Protocol: routeProto, Table: unix.RT_TABLE_MAIN,
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s to %s in %s: %w", cidr, sinkLink, rns, err)
	}
	return nil
}

// ensureInternet links the router to its internet namespace: 203.0.113.254 on the router's
// inet0, 203.0.113.1 on the internet's eth0, the VPC's default route towards the internet, and
// the internet's route back to the VPC CIDR. No NAT: nodes do their own.
func (k *kernel) ensureInternet(ref RouterRef) error {
	rns, ins := RouterNetns(k.prefix, ref.VpcID), InternetNetns(k.prefix, ref.VpcID)
	h, err := k.handle(rns)
	if err != nil {
		return err
	}
	ih, err := k.handle(ins)
	if err != nil {
		return err
	}
	if err := k.ensureInternetLink(h, ins); err != nil {
		return err
	}
	// The internet link is no interface of the VPC: no source check and no proxy ARP there.
	if err := sysctl(rns, "net.ipv4.conf."+internetLink+".rp_filter", "0",
		"net.ipv4.conf."+internetLink+".proxy_arp", "0"); err != nil {
		return err
	}
	rl, err := h.LinkByName(internetLink)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", internetLink, rns, err)
	}
	il, err := ih.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 in %s: %w", ins, err)
	}
	routerAddr, hostAddr := netip.MustParseAddr(internetRouterAddr), netip.MustParseAddr(InternetHostAddr)
	if err := upWithAddr(h, rl, netip.PrefixFrom(routerAddr, internetPrefixLen)); err != nil {
		return fmt.Errorf("%s in %s: %w", internetLink, rns, err)
	}
	if err := upWithAddr(ih, il, netip.PrefixFrom(hostAddr, internetPrefixLen)); err != nil {
		return fmt.Errorf("eth0 in %s: %w", ins, err)
	}
	def := &netlink.Route{
		Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: hostAddr.AsSlice(), LinkIndex: rl.Attrs().Index,
		Protocol: routeProto, Table: unix.RT_TABLE_MAIN,
	}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("default route in %s: %w", rns, err)
	}
	back := &netlink.Route{
		Dst: prefixNet(ref.CIDR), Gw: routerAddr.AsSlice(), LinkIndex: il.Attrs().Index,
		Protocol: routeProto, Table: unix.RT_TABLE_MAIN,
	}
	if err := ih.RouteReplace(back); err != nil {
		return fmt.Errorf("route to %s in %s: %w", ref.CIDR, ins, err)
	}
	return k.ensureVIPPool(h, ih, il, routerAddr)
}

// ensureVIPPool routes the public VIP pool from the internet to the router, which delivers each
// VIP in use to its load balancer (ensureLB) and drops the rest instead of sending them back.
func (k *kernel) ensureVIPPool(h, ih *netlink.Handle, il netlink.Link, routerAddr netip.Addr) error {
	pool := netip.MustParsePrefix(PublicVIPPool)
	toRouter := &netlink.Route{
		Dst: prefixNet(pool), Gw: routerAddr.AsSlice(), LinkIndex: il.Attrs().Index,
		Protocol: routeProto, Table: unix.RT_TABLE_MAIN,
	}
	if err := ih.RouteReplace(toRouter); err != nil {
		return fmt.Errorf("route to %s in the internet: %w", pool, err)
	}
	drop := &netlink.Route{Dst: prefixNet(pool), Type: unix.RTN_BLACKHOLE, Protocol: routeProto, Table: unix.RT_TABLE_MAIN}
	if err := h.RouteReplace(drop); err != nil {
		return fmt.Errorf("blackhole %s in the router: %w", pool, err)
	}
	return nil
}

func (k *kernel) ensureInternetLink(h *netlink.Handle, ins string) error {
	_, err := h.LinkByName(internetLink)
	if err == nil {
		return nil
	}
	var nf netlink.LinkNotFoundError
	if !errors.As(err, &nf) {
		return fmt.Errorf("%s: %w", internetLink, err)
	}
	fd, err := unix.Open(netns.Path(ins), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ins, err)
	}
	defer unix.Close(fd)
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: internetLink, MTU: k.mtu},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create %s: %w", internetLink, err)
	}
	return nil
}

func upWithAddr(h *netlink.Handle, l netlink.Link, p netip.Prefix) error {
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
		return fmt.Errorf("address %s: %w", p, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	return nil
}
