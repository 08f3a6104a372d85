package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// lbSysctls make a load balancer's namespace forward what it DNATs back out of the link it came
// in on, without telling the sender to go direct (a redirect would bypass the load balancer).
var lbSysctls = []string{
	"net.ipv4.ip_forward", "1",
	"net.ipv4.conf.all.send_redirects", "0",
	"net.ipv4.conf.all.rp_filter", "0",
}

// lbAliasTag marks the router's end of a load balancer's link, for `ip link` readers.
const lbAliasTag = "flatnet-lb"

// executeLBOps runs the load balancer operations in order: removals, bases, programs, then the
// conntrack cuts (after the program, so no new connection reaches a removed target meanwhile).
func (f *Fabric) executeLBOps(p *Plan, el *errList) {
	a := f.actual
	for _, lb := range p.DelLBs {
		if el.ok(f.k.delLB(lb.ID)) {
			delete(a.LBs, lb.ID)
		}
	}
	for _, lb := range p.EnsureLBs {
		if !el.ok(f.lbStep(lb.ID, opEnsureLB, func() error { return f.k.ensureLB(lb) })) {
			continue
		}
		have := a.LBs[lb.ID]
		if have == nil {
			have = &LB{ID: lb.ID}
			a.LBs[lb.ID] = have
		}
		prog, keep := have.Program, have.Keep
		*have = *lb
		have.Program, have.Keep, have.Ready = prog, keep, true
	}
	for _, lb := range p.ProgramLBs {
		have := a.LBs[lb.ID]
		if have == nil || !have.Ready || !el.ok(f.lbStep(lb.ID, opProgramLB, func() error { return f.k.programLB(lb) })) {
			continue
		}
		have.Program = lb.Program
		if !slices.ContainsFunc(p.FlushLBs, func(f *LB) bool { return f.ID == lb.ID }) {
			have.Keep = lb.Keep // nothing was registered that is not still (the diff checked)
		}
	}
	for _, lb := range p.FlushLBs {
		have := a.LBs[lb.ID]
		if have == nil || have.Program.Hash != lb.Program.Hash {
			continue // not programmed yet: cutting now would let the old rules make new ones
		}
		n, err := f.k.flushLB(lb)
		if el.ok(err) {
			have.Keep = lb.Keep
			if n > 0 {
				f.log.Info("cut connections to targets no longer registered", "lb", lb.ID, "connections", n)
			}
		}
	}
}

// ensureLB makes a load balancer's namespace exist with its link to the router, its addresses
// and routes, and the router's routes to it. Every step is idempotent, so it adopts what a
// previous run made without disturbing connections.
func (k *kernel) ensureLB(lb *LB) error {
	lns, rns := LBNetns(k.prefix, lb.ID), RouterNetns(k.prefix, lb.VpcID)
	if err := k.ensureNetns(lns); err != nil {
		return err
	}
	if err := sysctl(lns, lbSysctls...); err != nil {
		return err
	}
	h, err := k.handle(rns)
	if err != nil {
		return err
	}
	lh, err := k.handle(lns)
	if err != nil {
		return err
	}
	port, err := k.ensureLBLink(h, lh, lb)
	if err != nil {
		return err
	}
	eth0, err := lh.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0 of load balancer %s: %w", lb.ID, err)
	}
	want := []netip.Prefix{lb.Addr}
	if lb.VIP.IsValid() {
		want = append(want, netip.PrefixFrom(lb.VIP, 32))
	}
	if err := setOnlyAddrs(lh, eth0, want); err != nil {
		return fmt.Errorf("addresses of load balancer %s: %w", lb.ID, err)
	}
	if err := lh.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("eth0 of load balancer %s up: %w", lb.ID, err)
	}
	if lb.App && k.lbPoll {
		if err := k.setLBPolling(rns, lns, port.Attrs().Name); err != nil && k.pollFailed != nil {
			k.pollFailed(lb.ID, err)
		}
	}
	def := &netlink.Route{
		LinkIndex: eth0.Attrs().Index, Gw: lb.Gateway.AsSlice(), Protocol: routeProto,
		Table: unix.RT_TABLE_MAIN, Dst: prefixNet(netip.MustParsePrefix("0.0.0.0/0")),
	}
	if err := lh.RouteReplace(def); err != nil {
		return fmt.Errorf("default route of load balancer %s via %s: %w", lb.ID, lb.Gateway, err)
	}
	var dsts []netip.Prefix
	for _, p := range want {
		dsts = append(dsts, netip.PrefixFrom(p.Addr(), 32))
	}
	return setOnlyRoutes(h, port, dsts)
}

// setLBPolling sets an application load balancer's link for busy polling (busypoll.go): GRO on
// its end gives it a NAPI context that the engine's thread can poll; TSO off on the router's
// lets forwarded packets in through it.
func (k *kernel) setLBPolling(rns, lns, port string) error {
	if _, err := setLinkFeature(lns, "eth0", featureGRO, true); err != nil {
		return err
	}
	_, err := setLinkFeature(rns, port, featureTSO, false)
	return err
}

// ensureLBLink makes the veth from the router (lbPortName) to the load balancer (eth0) unless it
// is there, and returns the router's end.
func (k *kernel) ensureLBLink(h, lh *netlink.Handle, lb *LB) (netlink.Link, error) {
	name, rns, lns := lbPortName(lb.ID), RouterNetns(k.prefix, lb.VpcID), LBNetns(k.prefix, lb.ID)
	if l, err := h.LinkByName(name); err == nil {
		// Found: finish it, in case an earlier pass failed after creating it (these steps are
		// idempotent; a port left down or without its rp_filter would black-hole the VIP).
		return l, k.finishLBLink(h, rns, name, l, lb)
	}
	if l, err := lh.LinkByName("eth0"); err == nil { // a half-made pair: its router end is gone
		if err := lh.LinkDel(l); err != nil {
			return nil, fmt.Errorf("delete leftover eth0 of load balancer %s: %w", lb.ID, err)
		}
	}
	fd, err := unix.Open(netns.Path(lns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", lns, err)
	}
	defer unix.Close(fd)
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: k.mtu},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create link of load balancer %s in %s: %w", lb.ID, rns, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link of load balancer %s: %w", lb.ID, err)
	}
	return l, k.finishLBLink(h, rns, name, l, lb)
}

// finishLBLink configures the router's end of a load balancer's link. Like an interface's port:
// strict reverse-path filtering (only the load balancer's own addresses may come from it) and
// immediate proxy ARP for the subnet's other addresses; aliased for `ip link` readers; up.
func (k *kernel) finishLBLink(h *netlink.Handle, rns, name string, l netlink.Link, lb *LB) error {
	if err := sysctl(rns, "net.ipv4.neigh."+name+".proxy_delay", "0", "net.ipv4.conf."+name+".rp_filter", "1"); err != nil {
		return err
	}
	if want := lbAliasTag + " " + lb.ID; l.Attrs().Alias != want {
		if err := h.LinkSetAlias(l, want); err != nil {
			return fmt.Errorf("alias link of load balancer %s: %w", lb.ID, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link of load balancer %s up: %w", lb.ID, err)
		}
	}
	return nil
}

// setOnlyAddrs makes want the IPv4 addresses of a link.
func setOnlyAddrs(h *netlink.Handle, l netlink.Link, want []netip.Prefix) error {
	have, err := h.AddrList(l, unix.AF_INET)
	if err != nil {
		return err
	}
	for _, a := range have {
		if p, ok := ipNetPrefix(a.IPNet); ok && !slices.Contains(want, p) {
			if err := h.AddrDel(l, &a); err != nil {
				return fmt.Errorf("remove %s: %w", p, err)
			}
		}
	}
	for _, p := range want {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
	}
	return nil
}

// setOnlyRoutes makes dsts the fabric's routes over a link of the router.
func setOnlyRoutes(h *netlink.Handle, l netlink.Link, dsts []netip.Prefix) error {
	idx := l.Attrs().Index
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: routeProto, LinkIndex: idx}
	have, err := h.RouteListFiltered(unix.AF_INET, filter,
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_OIF)
	if err != nil {
		return fmt.Errorf("routes over %s: %w", l.Attrs().Name, err)
	}
	for _, r := range have {
		if p, ok := ipNetPrefix(r.Dst); ok && !slices.Contains(dsts, p) {
			if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("delete route %s over %s: %w", p, l.Attrs().Name, err)
			}
		}
	}
	for _, d := range dsts {
		r := &netlink.Route{Dst: prefixNet(d), LinkIndex: idx, Scope: netlink.SCOPE_LINK, Protocol: routeProto,
			Table: unix.RT_TABLE_MAIN}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s over %s: %w", d, l.Attrs().Name, err)
		}
	}
	return nil
}

// delLB removes a load balancer's namespace; its nftables table and its connections go with
// it. The link goes first: the kernel frees a namespace only once nothing holds it (a socket
// of a health check still closing), and the router must stop delivering the addresses now.
func (k *kernel) delLB(id string) error {
	ns := LBNetns(k.prefix, id)
	if h, err := k.handle(ns); err == nil {
		if l, err := h.LinkByName("eth0"); err == nil {
			if err := h.LinkDel(l); err != nil {
				return fmt.Errorf("delete link of load balancer %s: %w", id, err)
			}
		}
	}
	k.closeHandle(ns)
	return netns.Delete(ns)
}

// flushLB deletes the tracked connections a load balancer forwarded to targets outside
// lb.Keep, and returns how many.
func (k *kernel) flushLB(lb *LB) (uint, error) {
	ns := LBNetns(k.prefix, lb.ID)
	nsh, err := vnetns.GetFromPath(netns.Path(ns))
	if err != nil {
		return 0, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("conntrack handle in %s: %w", ns, err)
	}
	defer h.Close()
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, staleFlows{vips: lb.Program.VIPs, keep: lb.Keep})
	if err != nil {
		return n, fmt.Errorf("cut connections of load balancer %s: %w", lb.ID, err)
	}
	return n, nil
}

// staleFlows matches connections the load balancer DNATed (to one of its VIPs, answered by
// someone else) to a target that is not in keep.
type staleFlows struct {
	vips []netip.Addr
	keep []string // sorted keepKeys
}

func (s staleFlows) MatchConntrackFlow(f *netlink.ConntrackFlow) bool {
	dst, ok1 := netip.AddrFromSlice(f.Forward.DstIP)
	peer, ok2 := netip.AddrFromSlice(f.Reverse.SrcIP)
	if !ok1 || !ok2 || !slices.Contains(s.vips, dst.Unmap()) || slices.Contains(s.vips, peer.Unmap()) {
		return false
	}
	proto, ok := map[uint8]string{unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp"}[f.Forward.Protocol]
	if !ok {
		return false
	}
	if tcp, isTCP := f.ProtoInfo.(*netlink.ProtoInfoTCP); isTCP && closedTCP(tcp.State) {
		// A closed connection has nothing left to cut, and its entry must stay: deleting it
		// races with a client that reuses the port for a new connection (the kernel then
		// holds the new entry under the same tuple), and the entry expires by itself.
		return false
	}
	_, found := slices.BinarySearch(s.keep, keepKey(proto, TargetAddr{IP: peer.Unmap(), Port: int(f.Reverse.SrcPort)}))
	return !found
}

// observeLB reads back a load balancer: its addresses and the hash of the program it runs. It
// is not Ready: the fabric ensures it in place before trusting it.
func (k *kernel) observeLB(id string) (*LB, error) {
	ns := LBNetns(k.prefix, id)
	lb := &LB{ID: id}
	lh, err := k.handle(ns)
	if err != nil {
		return nil, err
	}
	if eth0, err := lh.LinkByName("eth0"); err == nil {
		addrs, err := lh.AddrList(eth0, unix.AF_INET)
		if err != nil {
			return nil, fmt.Errorf("addresses of load balancer %s: %w", id, err)
		}
		for _, a := range addrs {
			if p, ok := ipNetPrefix(a.IPNet); ok && p.Bits() < 32 {
				lb.Addr = p
			} else if ok {
				lb.VIP = p.Addr()
			}
		}
	}
	// A namespace without the table reads as no program (an empty hash): the fabric writes it.
	if lb.Program.Hash, err = k.programHashIn(id); err != nil {
		return nil, err
	}
	return lb, nil
}

// TCP conntrack states (include/uapi/linux/netfilter/nf_conntrack_tcp.h).
const (
	ctTCPTimeWait = 7
	ctTCPClose    = 8
)

// closedTCP reports a TCP conntrack state of a connection that has ended.
func closedTCP(state uint8) bool { return state == ctTCPTimeWait || state == ctTCPClose }
