package cni

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// cmdCheck compares the datapath with the previous result and ipamd's record, and lists every
// difference in one error.
func cmdCheck(inv *invocation) error {
	owner := inv.owner()
	if err := validOwner(owner); err != nil {
		return err
	}
	if inv.conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult and the config has none", "the runtime passes the result of ADD as prevResult")
	}
	ip := prevResultIP(inv.conf, owner.IfName)
	if !ip.IsValid() {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("prevResult gives interface %s no IPv4 address; it is not the result of flatnet's ADD", owner.IfName), "")
	}
	resp, err := inv.call(&wire.Request{Op: wire.OpCheck, Check: &wire.CheckRequest{Owner: owner}})
	if errors.Is(err, &wire.Error{Code: wire.CodeNotFound}) {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("ipamd holds no address for %s; the previous result has %s", owner.Key(), ip), "")
	}
	if err != nil {
		return ipamdError(inv.conf, fmt.Sprintf("check the allocation of %s", owner.Key()), err)
	}
	if resp.Allocation != nil && resp.Allocation.Owner != owner {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("ipamd answered the check of %s with the allocation of %s (%s)", owner.Key(), resp.Allocation.Owner.Key(), resp.Allocation.IP),
			"upgrade ipamd on this node to the plugin's version")
	}
	var diffs []string
	if resp.Allocation == nil || resp.Allocation.IP != ip {
		diffs = append(diffs, fmt.Sprintf("ipamd holds %s for %s, the previous result %s", allocIP(resp.Allocation), owner.Key(), ip))
	}
	s := inv.spec(owner, resp.Allocation)
	s.ip = ip
	hostMAC, hostDiffs, err := checkHost(s, prevResultMAC(inv.conf, s.hostName))
	if err != nil {
		return cniError(ErrDatapath, "read the host side", err)
	}
	diffs = append(diffs, hostDiffs...)
	podNS, err := openNetNS(inv.args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	podDiffs, err := checkPod(podNS, s, hostMAC)
	if err != nil {
		return cniError(ErrDatapath, "read the pod side", err)
	}
	diffs = append(diffs, podDiffs...)
	if len(diffs) > 0 {
		return types.NewError(ErrCheckFailed, fmt.Sprintf("datapath of %s differs from what ADD made: %s", owner.Key(), strings.Join(diffs, "; ")),
			"DEL and ADD the pod again (delete the pod) to rebuild it")
	}
	return nil
}

func allocIP(a *wire.Allocation) string {
	if a == nil {
		return "nothing"
	}
	return a.IP.String()
}

// prevResultMAC is the MAC the previous result gives interface name, or "".
func prevResultMAC(conf *NetConf, name string) string {
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return ""
	}
	for _, iface := range res.Interfaces {
		if iface.Name == name && iface.Sandbox == "" {
			return iface.Mac
		}
	}
	return ""
}

// checkHost lists what differs on the host side: veth, its marker, state and MTU, the /32
// route, the policy rules. It returns the host veth's MAC for the pod's neighbour check.
func checkHost(s spec, wantMAC string) (net.HardwareAddr, []string, error) {
	link, err := netlink.LinkByName(s.hostName)
	if isNotFound(err) {
		return nil, []string{fmt.Sprintf("host veth %s is missing", s.hostName)}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	a := link.Attrs()
	var diffs []string
	if a.Alias != s.alias {
		diffs = append(diffs, fmt.Sprintf("host veth %s has alias %q, want %q", s.hostName, a.Alias, s.alias))
	}
	if a.Flags&net.FlagUp == 0 {
		diffs = append(diffs, fmt.Sprintf("host veth %s is down", s.hostName))
	}
	if a.MTU != s.mtu {
		diffs = append(diffs, fmt.Sprintf("host veth %s has mtu %d, want %d", s.hostName, a.MTU, s.mtu))
	}
	if wantMAC != "" && !strings.EqualFold(a.HardwareAddr.String(), wantMAC) {
		diffs = append(diffs, fmt.Sprintf("host veth %s has MAC %s, the previous result %s", s.hostName, a.HardwareAddr, wantMAC))
	}
	routeDiff, err := checkHostRoute(s, a.Index)
	if err != nil {
		return nil, nil, err
	}
	diffs = append(diffs, routeDiff...)
	ruleDiffs, err := checkRules(s)
	if err != nil {
		return nil, nil, err
	}
	return a.HardwareAddr, append(diffs, ruleDiffs...), nil
}

func checkHostRoute(s spec, index int) ([]string, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Dst: prefix32(s.ip)}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	})
	if err != nil {
		return nil, fmt.Errorf("list routes to %s: %w", s.ip, err)
	}
	for _, r := range routes {
		if r.LinkIndex == index && r.Gw == nil {
			return nil, nil
		}
	}
	if len(routes) > 0 {
		return []string{fmt.Sprintf("host route %s/32 does not go to dev %s (it goes to ifindex %d)", s.ip, s.hostName, routes[0].LinkIndex)}, nil
	}
	return []string{fmt.Sprintf("host route %s/32 dev %s is missing", s.ip, s.hostName)}, nil
}

// checkRules wants exactly the rules of podRules for the address at flatnet's priorities.
func checkRules(s spec) ([]string, error) {
	rules, err := retryDump(func() ([]netlink.Rule, error) { return netlink.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	type key struct {
		prio, table int
		to          bool
	}
	have := map[key]bool{}
	for _, r := range rules {
		switch {
		case r.Priority == priorityToPod && r.Dst != nil && r.Dst.String() == prefix32(s.ip).String():
			have[key{r.Priority, r.Table, true}] = true
		case r.Priority == priorityFromPod && r.Src != nil && r.Src.String() == prefix32(s.ip).String():
			have[key{r.Priority, r.Table, false}] = true
		}
	}
	var diffs []string
	for _, r := range podRules(s) {
		k := key{r.Priority, r.Table, r.Dst != nil}
		if !have[k] {
			diffs = append(diffs, fmt.Sprintf("rule %q is missing", ruleString(r)))
		}
		delete(have, k)
	}
	for k := range have {
		diffs = append(diffs, fmt.Sprintf("unexpected rule at priority %d for %s to table %d", k.prio, s.ip, k.table))
	}
	return diffs, nil
}

func ruleString(r *netlink.Rule) string {
	if r.Dst != nil {
		return fmt.Sprintf("priority %d to %s lookup %d", r.Priority, r.Dst, r.Table)
	}
	return fmt.Sprintf("priority %d from %s lookup %d", r.Priority, r.Src, r.Table)
}

// checkPod lists what differs inside the pod: interface, address, default route, neighbour.
func checkPod(podNS ns.NetNS, s spec, hostMAC net.HardwareAddr) ([]string, error) {
	var diffs []string
	err := podNS.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(s.ifName)
		if isNotFound(err) {
			diffs = append(diffs, fmt.Sprintf("pod interface %s is missing", s.ifName))
			return nil
		}
		if err != nil {
			return err
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			diffs = append(diffs, fmt.Sprintf("pod interface %s is down", s.ifName))
		}
		if link.Attrs().MTU != s.mtu {
			diffs = append(diffs, fmt.Sprintf("pod interface %s has mtu %d, want %d", s.ifName, link.Attrs().MTU, s.mtu))
		}
		for _, check := range []func(netlink.Link, spec, net.HardwareAddr) (string, error){checkPodAddr, checkPodRoute, checkPodNeigh} {
			d, err := check(link, s, hostMAC)
			if err != nil {
				return err
			}
			if d != "" {
				diffs = append(diffs, d)
			}
		}
		return nil
	})
	return diffs, err
}

func checkPodAddr(link netlink.Link, s spec, _ net.HardwareAddr) (string, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
	if err != nil {
		return "", fmt.Errorf("list addresses of %s: %w", s.ifName, err)
	}
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); ones == 32 && a.IP.Equal(net.IP(s.ip.AsSlice())) {
			return "", nil
		}
	}
	return fmt.Sprintf("pod interface %s lacks address %s/32", s.ifName, s.ip), nil
}

func checkPodRoute(link netlink.Link, s spec, _ net.HardwareAddr) (string, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(link, netlink.FAMILY_V4) })
	if err != nil {
		return "", fmt.Errorf("list routes of %s: %w", s.ifName, err)
	}
	for _, r := range routes {
		isDefault := r.Dst == nil || r.Dst.IP.IsUnspecified()
		if isDefault && r.Gw.Equal(gatewayIP) {
			return "", nil
		}
	}
	return fmt.Sprintf("pod default route via %s dev %s is missing", gatewayIP, s.ifName), nil
}

func checkPodNeigh(link netlink.Link, s spec, hostMAC net.HardwareAddr) (string, error) {
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4) })
	if err != nil {
		return "", fmt.Errorf("list neighbours of %s: %w", s.ifName, err)
	}
	for _, n := range neighs {
		if !n.IP.Equal(gatewayIP) {
			continue
		}
		switch {
		case n.State&netlink.NUD_PERMANENT == 0:
			return fmt.Sprintf("pod neighbour %s on %s is not permanent", gatewayIP, s.ifName), nil
		case hostMAC != nil && n.HardwareAddr.String() != hostMAC.String():
			return fmt.Sprintf("pod neighbour %s on %s has lladdr %s, the host veth's MAC is %s", gatewayIP, s.ifName, n.HardwareAddr, hostMAC), nil
		}
		return "", nil
	}
	return fmt.Sprintf("pod neighbour %s lladdr %s dev %s is missing", gatewayIP, hostMAC, s.ifName), nil
}
