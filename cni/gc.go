package cni

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// cmdGC removes every host veth of this network whose attachment is not in the valid list, then
// asks ipamd to release every allocation of the network not in the list, and removes the rules
// of what it released. It goes on after an error and reports them all.
func cmdGC(inv *invocation) error {
	valid, err := inv.validOwners()
	if err != nil {
		return err
	}
	var errs []error
	if err := removeStaleLinks(inv, valid); err != nil {
		errs = append(errs, err)
	}
	if err := removeOrphanRules(); err != nil {
		errs = append(errs, err)
	}
	resp, err := inv.call(&wire.Request{Op: wire.OpGC, GC: &wire.GCRequest{Network: inv.conf.Name, Valid: valid}})
	if err != nil {
		errs = append(errs, ipamdError(inv.conf, fmt.Sprintf("release the stale allocations of network %s", inv.conf.Name), err))
	} else if resp.GC != nil {
		for _, a := range resp.GC.Released {
			inv.log.printf("gc: ipamd released %s of %s", a.IP, a.Owner.Key())
			if err := deleteRules(a.IP); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return gcError(errs)
}

func (inv *invocation) validOwners() ([]wire.Owner, error) {
	atts := inv.conf.validAttachments()
	valid := make([]wire.Owner, 0, len(atts))
	for _, a := range atts {
		o := wire.Owner{Network: inv.conf.Name, ContainerID: a.ContainerID, IfName: a.IfName}
		if err := o.Validate(); err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("cni.dev/valid-attachments holds %+v: %v", a, err), "")
		}
		valid = append(valid, o)
	}
	return valid, nil
}

// removeStaleLinks deletes the host veths of this network (name prefix and alias marker) that no
// valid attachment names, and the rules of the addresses they routed.
func removeStaleLinks(inv *invocation, valid []wire.Owner) error {
	keep := make(map[string]bool, len(valid))
	for _, o := range valid {
		keep[HostVethName(o)] = true
	}
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		network, ours := aliasNetwork(l.Attrs().Alias)
		if !strings.HasPrefix(name, hostVethPrefix) || !ours || network != inv.conf.Name || keep[name] {
			continue
		}
		ip, err := linkRouteIP(l)
		if err != nil {
			errs = append(errs, err)
		}
		if err := deleteRules(ip); err != nil {
			errs = append(errs, err)
		}
		if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete stale host veth %s: %w", name, err))
			continue
		}
		inv.log.printf("gc: removed host veth %s (%s, %s)", name, l.Attrs().Alias, ip)
	}
	return errors.Join(errs...)
}

func gcError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	var te *types.Error
	if len(errs) == 1 && errors.As(errs[0], &te) {
		return te
	}
	return cniError(ErrDatapath, "gc did not finish", errors.Join(errs...))
}

// removeOrphanRules deletes the plugin's own rules (stamped with wire.RuleProtocol; ipamd's
// rules at the same priorities carry another protocol) whose address no flatnet host veth (of
// any network) routes any more: a crash between a link's removal and its rules' leaves them.
// Rules are listed before links: ADD adds the host route before the rules, so a rule seen here
// belongs to a link that the later listing sees too, unless that pod is really gone.
func removeOrphanRules() error {
	rules, err := retryDump(func() ([]netlink.Rule, error) { return netlink.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	routed := map[string]bool{}
	for _, l := range links {
		if _, ours := aliasNetwork(l.Attrs().Alias); !ours || !strings.HasPrefix(l.Attrs().Name, hostVethPrefix) {
			continue
		}
		ip, err := linkRouteIP(l)
		if err != nil {
			return err
		}
		if ip.IsValid() {
			routed[prefix32(ip).String()] = true
		}
	}
	var errs []error
	for _, r := range rules {
		if r.Protocol != wire.RuleProtocol {
			continue // not the plugin's
		}
		pod := r.Dst
		if r.Priority == priorityFromPod {
			pod = r.Src
		}
		if (r.Priority != priorityToPod && r.Priority != priorityFromPod) || pod == nil || routed[pod.String()] {
			continue
		}
		if err := netlink.RuleDel(&r); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete orphan rule %s: %w", ruleString(&r), err))
		}
	}
	return errors.Join(errs...)
}
