package nodenet

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// interfaceRoutes is table TableBase+N of a secondary interface: the subnet on the link, and
// a default route through the subnet's gateway. Pure.
func interfaceRoutes(in Interface, linkIndex, table int) []netlink.Route {
	return []netlink.Route{
		{LinkIndex: linkIndex, Dst: prefixToIPNet(in.SubnetCIDR.Masked()), Src: in.PrimaryIP.AsSlice(),
			Scope: netlink.SCOPE_LINK, Table: table, Protocol: Protocol, Type: unix.RTN_UNICAST},
		{LinkIndex: linkIndex, Dst: prefixToIPNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: in.Gateway.AsSlice(),
			Scope: netlink.SCOPE_UNIVERSE, Table: table, Protocol: Protocol, Type: unix.RTN_UNICAST},
	}
}

// interfaceRules: the interface's own address uses its table, so the node's traffic from that
// address leaves where the cloud expects it. Pure.
func interfaceRules(in Interface, table int) []netlink.Rule {
	r := *netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = PriorityInterface
	r.Src = prefixToIPNet(netip.PrefixFrom(in.PrimaryIP, 32))
	r.Table = table
	r.Protocol = Protocol
	return []netlink.Rule{r}
}

// snatRules: marked (to-be-SNATed) pod traffic uses main, i.e. leaves through the primary
// interface whose address it is SNATed to. Pure.
func (n *Node) snatRules() []netlink.Rule {
	r := *netlink.NewRule()
	r.Family = unix.AF_INET
	r.Priority = PrioritySNATToMain
	r.Mark = n.cfg.Mark
	mask := n.cfg.Mark
	r.Mask = &mask
	r.Table = unix.RT_TABLE_MAIN
	r.Protocol = Protocol
	return []netlink.Rule{r}
}

func isSNATRule(r netlink.Rule) bool {
	return r.Protocol == Protocol && r.Priority == PrioritySNATToMain
}

// routeKey is the identity of a route for diffing: everything nodenet sets.
func routeKey(r netlink.Route) string {
	dst := "0.0.0.0/0"
	if r.Dst != nil {
		dst = ipNetToPrefix(r.Dst).String()
	}
	return fmt.Sprintf("%s via %v dev %d src %v scope %d table %d proto %d",
		dst, r.Gw, r.LinkIndex, r.Src, r.Scope, r.Table, r.Protocol)
}

// ruleKey is the identity of a rule for diffing.
func ruleKey(r netlink.Rule) string {
	mask := uint32(0)
	if r.Mask != nil {
		mask = *r.Mask
	}
	return fmt.Sprintf("%d from %v to %v fwmark %#x/%#x iif %q oif %q not %t table %d proto %d",
		r.Priority, r.Src, r.Dst, r.Mark, mask, r.IifName, r.OifName, r.Invert, r.Table, r.Protocol)
}

func (n *Node) ensureInterfaceRouting(link netlink.Link, in Interface) error {
	table := n.tableFor(in.DeviceIndex)
	if err := n.ensureRoutes(table, interfaceRoutes(in, link.Attrs().Index, table)); err != nil {
		return err
	}
	scope := func(r netlink.Rule) bool { return r.Protocol == Protocol && r.Table == table }
	return n.ensureRules(interfaceRules(in, table), scope)
}

// ensureRoutes makes table hold exactly want: replace (never delete-then-add, which would
// leave a moment without a route) and then remove leftovers.
func (n *Node) ensureRoutes(table int, want []netlink.Route) error {
	got, err := n.tableRoutes(table)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, r := range got {
		have[routeKey(r)] = true
	}
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[routeKey(r)] = true
		if have[routeKey(r)] {
			continue
		}
		if err := n.nl.RouteReplace(&r); err != nil {
			return fmt.Errorf("table %d: replace route %s: %w", table, routeKey(r), err)
		}
		n.log.Info("route set", "table", table, "route", routeKey(r))
	}
	for _, r := range got {
		if wanted[routeKey(r)] {
			continue
		}
		if err := n.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("table %d: delete stale route %s: %w", table, routeKey(r), err)
		}
		n.log.Info("stale route deleted", "table", table, "route", routeKey(r))
	}
	return nil
}

func (n *Node) tableRoutes(table int) ([]netlink.Route, error) {
	rs, err := n.nl.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of table %d: %w", table, err)
	}
	return rs, nil
}

// ensureRules makes the rules selected by scope exactly want: add the missing first, then
// delete the stale, so traffic never falls through a gap.
func (n *Node) ensureRules(want []netlink.Rule, scope func(netlink.Rule) bool) error {
	got, err := n.addMissingRules(want, scope)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[ruleKey(r)] = true
	}
	for _, r := range got {
		if !wanted[ruleKey(r)] {
			if err := n.deleteRule(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// addMissingRules adds the rules of want that scope does not hold yet, and returns what scope
// held before.
func (n *Node) addMissingRules(want []netlink.Rule, scope func(netlink.Rule) bool) ([]netlink.Rule, error) {
	got, err := n.rules(scope)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, r := range got {
		have[ruleKey(r)] = true
	}
	for _, r := range want {
		if have[ruleKey(r)] {
			continue
		}
		if err := n.nl.RuleAdd(&r); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("add rule %s: %w", ruleKey(r), err)
		}
		n.log.Info("rule added", "rule", ruleKey(r))
	}
	return got, nil
}

func (n *Node) rules(scope func(netlink.Rule) bool) ([]netlink.Rule, error) {
	all, err := n.nl.RuleList(unix.AF_INET)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var out []netlink.Rule
	for _, r := range all {
		if scope(r) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (n *Node) deleteRule(r netlink.Rule) error {
	if err := n.nl.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete rule %s: %w", ruleKey(r), err)
	}
	n.log.Info("rule deleted", "rule", ruleKey(r))
	return nil
}

func (n *Node) deleteRules(scope func(netlink.Rule) bool) error {
	got, err := n.rules(scope)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range got {
		errs = append(errs, n.deleteRule(r))
	}
	return errors.Join(errs...)
}

// flushTable deletes every route of table.
func (n *Node) flushTable(table int) error {
	return n.ensureRoutes(table, nil)
}

// ownedTables are the tables holding nodenet's routes or named by nodenet's rules; never
// main, local or default.
func (n *Node) ownedTables() (map[int]bool, error) {
	rs, err := n.nl.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: Protocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes with protocol %d: %w", Protocol, err)
	}
	tables := map[int]bool{}
	for _, r := range rs {
		tables[r.Table] = true
	}
	rules, err := n.rules(func(r netlink.Rule) bool { return r.Protocol == Protocol })
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		tables[r.Table] = true
	}
	for _, t := range []int{unix.RT_TABLE_UNSPEC, unix.RT_TABLE_DEFAULT, unix.RT_TABLE_MAIN, unix.RT_TABLE_LOCAL} {
		delete(tables, t)
	}
	return tables, nil
}
