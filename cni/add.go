package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/failpoint"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// defaultMTU is used when neither the config nor ipamd says.
const defaultMTU = 1500

// cmdAdd leases an address from ipamd and builds the pod datapath. Once ipamd has answered,
// every failure rolls back completely — links, rules and the allocation — keyed on the named
// return, so no early return can skip it (ptp's shadowed-err defer leaks on two paths).
func cmdAdd(inv *invocation) (err error) {
	owner := inv.owner()
	if err := validOwner(owner); err != nil {
		return err
	}
	if err := aliasFits(owner); err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "use a shorter network name")
	}
	pod, err := parsePodRef(inv.args.Args)
	if err != nil {
		return err
	}
	podNS, err := openNetNS(inv.args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return cniError(types.ErrIOFailure, "open the plugin's own netns", err)
	}
	defer hostNS.Close()

	resp, err := inv.call(&wire.Request{Op: wire.OpAllocate, Allocate: &wire.AllocateRequest{Owner: owner, Pod: pod}})
	if err != nil {
		return ipamdError(inv.conf, fmt.Sprintf("allocate an address for %s", owner.Key()), err)
	}
	failpoint.Hit("cni-add-allocated") // ipamd answered, nothing wired yet
	s := inv.spec(owner, resp.Allocation)
	foreign := false // the pod's interface of that name is someone else's: never delete it
	defer func() {
		if err != nil {
			inv.rollback(owner, s, foreign)
		}
	}()
	if err := checkAllocation(owner, resp.Allocation); err != nil {
		return err
	}
	if err := discardSpooled(inv.conf.SpoolDir, owner); err != nil {
		return cniError(types.ErrIOFailure, "clear the spool", err)
	}
	exists, err := podLinkExists(podNS, s)
	var fe *foreignLinkError
	if errors.As(err, &fe) {
		foreign = true
		return types.NewError(ErrInterfaceExists, fe.Error(), "the runtime or another plugin made it; give flatnet another CNI_IFNAME")
	}
	if err != nil {
		return cniError(ErrDatapath, "look at the pod netns", err)
	}
	if !exists {
		if err := createVeth(podNS, hostNS, s); err != nil {
			return cniError(ErrDatapath, "create the pod's veth", err)
		}
	}
	// Setting up is idempotent: on a repeated ADD it converges what exists.
	b, err := setup(podNS, s)
	if err != nil {
		return cniError(ErrDatapath, fmt.Sprintf("wire %s for %s", s.ip, owner.Key()), err)
	}
	failpoint.Hit("cni-add-wired") // wired, the runtime not answered
	inv.log.printf("pod %s on %s (device %d, table %d, mtu %d)", s.ip, s.hostName, resp.Allocation.DeviceIndex, s.table, s.mtu)
	return inv.printResult(s, b)
}

func setup(podNS ns.NetNS, s spec) (built, error) {
	hostMAC, err := setupHost(s)
	if err != nil {
		return built{}, err
	}
	podMAC, err := setupPod(podNS, s, hostMAC)
	if err != nil {
		return built{}, err
	}
	return built{hostMAC: hostMAC, podMAC: podMAC}, nil
}

// spec derives the datapath from the allocation and the config.
func (inv *invocation) spec(owner wire.Owner, a *wire.Allocation) spec {
	s := spec{ifName: owner.IfName, hostName: HostVethName(owner), alias: linkAlias(owner), mtu: inv.conf.MTU}
	if a != nil {
		s.ip, s.table = a.IP, a.RouteTable
		if s.mtu == 0 {
			s.mtu = a.MTU
		}
	}
	if s.mtu == 0 {
		s.mtu = defaultMTU
	}
	return s
}

func checkAllocation(owner wire.Owner, a *wire.Allocation) error {
	switch {
	case a == nil:
		return types.NewError(ErrIpamd, "ipamd answered allocate without an allocation", "see ipamd's log on this node")
	case a.Owner != owner:
		// An ipamd whose owner key is ambiguous hands one pod another's address: never wire it.
		return types.NewError(ErrIpamd, fmt.Sprintf("ipamd answered allocate for %s with the address of %s (%s)", owner.Key(), a.Owner.Key(), a.IP),
			"upgrade ipamd on this node to the plugin's version")
	case !a.IP.Is4():
		return types.NewError(ErrIpamd, fmt.Sprintf("ipamd allocated %q, which is not an IPv4 address", a.IP), "see ipamd's log on this node")
	case a.RouteTable < 0 || a.RouteTable == 253 || a.RouteTable == 255:
		return types.NewError(ErrIpamd, fmt.Sprintf("ipamd allocated %s in route table %d, which flatnet cannot use", a.IP, a.RouteTable), "")
	}
	return nil
}

// openNetNS opens CNI_NETNS; a path that is not a network namespace is an invalid CNI_NETNS.
func openNetNS(path string) (ns.NetNS, error) {
	podNS, err := ns.GetNS(path)
	if err == nil {
		err = isNetNS(podNS)
		if err != nil {
			podNS.Close()
		}
	}
	if err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_NETNS %q cannot be opened: %v", path, err), "the pod sandbox's netns is gone or the path is wrong")
	}
	return podNS, nil
}

// isNetNS asks the kernel what kind of namespace the file is: ns.GetNS opens any file.
func isNetNS(n ns.NetNS) error {
	kind, err := unix.IoctlRetInt(int(n.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace: %w", n.Path(), err)
	}
	if kind != unix.CLONE_NEWNET {
		return fmt.Errorf("%s is not a network namespace", n.Path())
	}
	return nil
}

// podLinkExists reports whether ifName already exists in the pod. It is fine when it is the
// interface an earlier ADD of this same owner made (a veth carrying our address whose host peer
// is our deterministic name); anything else of that name is someone else's interface.
func podLinkExists(podNS ns.NetNS, s spec) (bool, error) {
	var exists, ours bool
	err := podNS.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(s.ifName)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return fmt.Errorf("find %s: %w", s.ifName, err)
		}
		exists = true
		addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
		if err != nil {
			return fmt.Errorf("list addresses of %s: %w", s.ifName, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == s.ip {
				ours = link.Type() == "veth"
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if exists && ours {
		if _, err := netlink.LinkByName(s.hostName); err != nil {
			ours = false
		}
	}
	if exists && !ours {
		return true, &foreignLinkError{ifName: s.ifName, ip: s.ip}
	}
	return exists, nil
}

// foreignLinkError: the pod has an interface of that name flatnet did not make for this address.
type foreignLinkError struct {
	ifName string
	ip     netip.Addr
}

func (e *foreignLinkError) Error() string {
	return fmt.Sprintf("the pod already has an interface %s, and it is not flatnet's veth with %s", e.ifName, e.ip)
}

// rollback undoes a failed ADD: the datapath first, then the allocation (spooled when ipamd
// cannot take it now), so no address is ever released while a route still points at it. The
// pod interface survives only when it was someone else's.
func (inv *invocation) rollback(owner wire.Owner, s spec, foreign bool) {
	netnsPath := inv.args.Netns
	if foreign {
		netnsPath = ""
	}
	if err := teardown(netnsPath, s); err != nil {
		inv.log.printf("rollback: datapath: %v", err)
	}
	if _, err := inv.release(owner); err != nil {
		inv.log.printf("rollback: release: %v", err)
	}
}

// printResult writes the Result, in the config's cniVersion, after any prevResult it was given.
func (inv *invocation) printResult(s spec, b built) error {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if inv.conf.PrevResult != nil {
		prev, err := current.NewResultFromResult(inv.conf.PrevResult)
		if err != nil {
			return cniError(types.ErrDecodingFailure, "convert prevResult", err)
		}
		res = prev
	}
	base := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: s.hostName, Mac: b.hostMAC.String(), Mtu: s.mtu},
		&current.Interface{Name: s.ifName, Mac: b.podMAC.String(), Sandbox: inv.args.Netns, Mtu: s.mtu})
	res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(base + 1), Address: *prefix32(s.ip), Gateway: gatewayIP})
	res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gatewayIP})
	if res.DNS.IsEmpty() {
		res.DNS = inv.conf.DNS
	}
	if err := fault("result"); err != nil {
		return cniError(ErrDatapath, "print the result", err)
	}
	out, err := res.GetAsVersion(inv.conf.CNIVersion)
	if err != nil {
		return cniError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("convert the result to cniVersion %s", inv.conf.CNIVersion), err)
	}
	if err := out.PrintTo(stdout); err != nil {
		return cniError(types.ErrIOFailure, "write the result to stdout", err)
	}
	return nil
}
