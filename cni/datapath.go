package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// gatewayIP is the pod's next hop: link-local, never on the wire, answered by the permanent
// neighbour entry that points at the host veth's MAC.
var gatewayIP = net.IPv4(169, 254, 1, 1).To4()

// dumpRetries bounds retries of a netlink dump the kernel interrupted (ErrDumpInterrupted).
const dumpRetries = 5

// spec is everything needed to build or find one pod's datapath.
type spec struct {
	ifName   string     // inside the pod
	hostName string     // host-side veth
	alias    string     // marker on the host veth
	ip       netip.Addr // the pod's address
	table    int        // 0: main; else the table of the secondary interface
	mtu      int
}

// built is what setup made, for the Result.
type built struct {
	hostMAC net.HardwareAddr
	podMAC  net.HardwareAddr
}

func prefix32(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

// retryDump runs a netlink dump again while the kernel reports it was interrupted.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range dumpRetries {
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}

func isNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// createVeth makes the pair inside the pod netns with its peer born in the host netns, so no
// half-made host link can be left in the pod. A stale host link of the same (deterministic)
// name belongs to this very owner from an earlier, interrupted ADD: it is removed first.
func createVeth(podNS, hostNS ns.NetNS, s spec) error {
	if err := deleteLinkByName(s.hostName); err != nil {
		return fmt.Errorf("remove stale host veth %s: %w", s.hostName, err)
	}
	if err := fault("link"); err != nil {
		return err
	}
	return podNS.Do(func(ns.NetNS) error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = s.ifName
		attrs.MTU = s.mtu
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: s.hostName, PeerNamespace: netlink.NsFd(int(hostNS.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth %s (peer %s) in the pod netns: %w", s.ifName, s.hostName, err)
		}
		return nil
	})
}

// setupHost marks, raises and routes the host side; it returns the host veth's MAC.
func setupHost(s spec) (net.HardwareAddr, error) {
	link, err := netlink.LinkByName(s.hostName)
	if err != nil {
		return nil, fmt.Errorf("find host veth %s: %w", s.hostName, err)
	}
	if err := netlink.LinkSetAlias(link, s.alias); err != nil {
		return nil, fmt.Errorf("set alias of host veth %s: %w", s.hostName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set host veth %s up: %w", s.hostName, err)
	}
	if err := fault("route"); err != nil {
		return nil, err
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefix32(s.ip), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(route); err != nil {
		return nil, fmt.Errorf("add host route %s dev %s: %w", s.ip, s.hostName, err)
	}
	if err := addRules(s); err != nil {
		return nil, err
	}
	return link.Attrs().HardwareAddr, nil
}

// setupPod gives the pod interface its /32, its default route via 169.254.1.1 and the
// permanent neighbour entry for that gateway; it returns the pod interface's MAC.
func setupPod(podNS ns.NetNS, s spec, hostMAC net.HardwareAddr) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := podNS.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(s.ifName)
		if err != nil {
			return fmt.Errorf("find %s in the pod netns: %w", s.ifName, err)
		}
		mac = link.Attrs().HardwareAddr
		if err := fault("addr"); err != nil {
			return err
		}
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefix32(s.ip)}); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("add %s/32 to %s: %w", s.ip, s.ifName, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up in the pod netns: %w", s.ifName, err)
		}
		if err := fault("neigh"); err != nil {
			return err
		}
		neigh := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: gatewayIP, HardwareAddr: hostMAC}
		if err := netlink.NeighSet(neigh); err != nil {
			return fmt.Errorf("add permanent neighbour %s lladdr %s dev %s: %w", gatewayIP, hostMAC, s.ifName, err)
		}
		if err := fault("default-route"); err != nil {
			return err
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gatewayIP, Flags: int(netlink.FLAG_ONLINK),
			Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("add default route via %s dev %s onlink: %w", gatewayIP, s.ifName, err)
		}
		return nil
	})
	return mac, err
}

// podRules are the policy rules of a pod on a secondary interface: traffic to it uses main
// (priority PriorityToPod), traffic from it the interface's table (PriorityFromPod).
func podRules(s spec) []*netlink.Rule {
	if s.table == 0 {
		return nil
	}
	to := netlink.NewRule()
	to.Family = netlink.FAMILY_V4
	to.Dst = prefix32(s.ip)
	to.Table = unix.RT_TABLE_MAIN
	to.Priority = priorityToPod
	to.Protocol = wire.RuleProtocol
	from := netlink.NewRule()
	from.Family = netlink.FAMILY_V4
	from.Src = prefix32(s.ip)
	from.Table = s.table
	from.Priority = priorityFromPod
	from.Protocol = wire.RuleProtocol
	return []*netlink.Rule{to, from}
}

func addRules(s spec) error {
	for _, r := range podRules(s) {
		if err := fault("rule"); err != nil {
			return err
		}
		if err := netlink.RuleAdd(r); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("add rule %s: %w", r, err)
		}
	}
	return nil
}

// deleteRules removes flatnet's rules for ip whatever table they point at; absent rules are fine.
func deleteRules(ip netip.Addr) error {
	if !ip.IsValid() {
		return nil
	}
	var errs []error
	for _, r := range podRules(spec{ip: ip, table: -1}) {
		r.Table = unix.RT_TABLE_UNSPEC // match any table
		for {
			err := netlink.RuleDel(r)
			if err == nil {
				continue // a duplicate may exist; delete until none is left
			}
			if !isNotFound(err) {
				errs = append(errs, fmt.Errorf("delete rule %s: %w", r, err))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// deleteLinkByName removes a link of the current netns; a missing link is fine.
func deleteLinkByName(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// deletePodLink removes ifName in the pod netns if it is a veth (which takes its host peer
// with it). A netns that no longer exists is fine: the kernel took the pair with it.
func deletePodLink(netnsPath, ifName string) error {
	if netnsPath == "" {
		return nil
	}
	// A path that is gone, or outlived its namespace (an unmounted bind mount), is fine.
	if err := ns.IsNSorErr(netnsPath); err != nil {
		var notExist ns.NSPathNotExistErr
		var notNS ns.NSPathNotNSErr
		if errors.As(err, &notExist) || errors.As(err, &notNS) || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("look at CNI_NETNS %s: %w", netnsPath, err)
	}
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlink.LinkByName(ifName)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return fmt.Errorf("find %s in the pod netns: %w", ifName, err)
		}
		if link.Type() != "veth" {
			return nil // not ours
		}
		if err := netlink.LinkDel(link); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s in the pod netns: %w", ifName, err)
		}
		return nil
	})
	var notExist ns.NSPathNotExistErr
	if errors.As(err, &notExist) || errors.Is(err, os.ErrNotExist) {
		return nil // removed between the look and the switch
	}
	return err
}

// teardown removes everything of one datapath that still exists: rules, the pod's link, the host
// link (and with it the host route and neighbour entries). Every step runs; errors are joined.
func teardown(netnsPath string, s spec) error {
	var errs []error
	if err := deleteRules(s.ip); err != nil {
		errs = append(errs, err)
	}
	if err := deletePodLink(netnsPath, s.ifName); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLinkByName(s.hostName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hostLinkIP finds the pod address a host veth routes to (its /32 in main), if any.
func hostLinkIP(hostName string) (netip.Addr, error) {
	link, err := netlink.LinkByName(hostName)
	if err != nil {
		if isNotFound(err) {
			return netip.Addr{}, nil
		}
		return netip.Addr{}, fmt.Errorf("find host veth %s: %w", hostName, err)
	}
	return linkRouteIP(link)
}

func linkRouteIP(link netlink.Link) (netip.Addr, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list routes of %s: %w", link.Attrs().Name, err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, bits := r.Dst.Mask.Size(); ones == 32 && bits == 32 {
			if ip, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, nil
}
