package nodenet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/vishvananda/netlink"
)

// Snapshot is what nodenet has programmed, read back from the kernel (for ipamd's
// introspection endpoint and for tests). It is JSON-friendly.
type Snapshot struct {
	// Sysctls nodenet manages, by dotted name, with their current values.
	Sysctls map[string]string `json:"sysctls"`
	// SNAT is nil when the nftables table is absent.
	SNAT *SNATState `json:"snat,omitempty"`
	// Rules are the policy rules carrying Protocol, by priority.
	Rules []RuleState `json:"rules"`
	// Tables are the route tables nodenet owns, by number.
	Tables []TableState `json:"tables"`
}

// SNATState is nodenet's nftables table as the kernel holds it.
type SNATState struct {
	Table string `json:"table"`
	// NoSNAT are the destinations kept unSNATed (VPC CIDRs and exclusions, merged).
	NoSNAT []netip.Prefix `json:"noSNAT"`
	// Rules are the comments of the rules, by chain; each states what the rule does.
	Rules map[string][]string `json:"rules"`
}

// RuleState is one policy rule.
type RuleState struct {
	Priority int          `json:"priority"`
	From     netip.Prefix `json:"from,omitzero"`
	Mark     uint32       `json:"mark,omitempty"`
	Table    int          `json:"table"`
}

// TableState is one route table with its routes.
type TableState struct {
	ID     int          `json:"id"`
	Routes []RouteState `json:"routes"`
}

// RouteState is one route.
type RouteState struct {
	Dst     netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Src     netip.Addr   `json:"src,omitzero"`
	Link    string       `json:"link"`
}

// State reads back everything nodenet manages.
func (n *Node) State(ctx context.Context) (Snapshot, error) {
	unlock, err := n.lock(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	defer unlock()
	var s Snapshot
	if s.SNAT, err = n.snatState(); err != nil {
		return Snapshot{}, err
	}
	if s.Rules, err = n.ruleStates(); err != nil {
		return Snapshot{}, err
	}
	links, err := n.linkNames()
	if err != nil {
		return Snapshot{}, err
	}
	if s.Tables, err = n.tableStates(links); err != nil {
		return Snapshot{}, err
	}
	if s.Sysctls, err = n.readSysctls(stateSysctls(s.Tables)); err != nil {
		return Snapshot{}, err
	}
	return s, nil
}

func (n *Node) snatState() (*SNATState, error) {
	c, err := n.nft()
	if err != nil {
		return nil, err
	}
	got, err := readNFT(c)
	if err != nil || got == nil {
		return nil, err
	}
	st := &SNATState{Table: "ip " + NFTTable, NoSNAT: []netip.Prefix{}, Rules: map[string][]string{}}
	for _, r := range got.ranges {
		st.NoSNAT = append(st.NoSNAT, rangePrefixes(r)...)
	}
	for name, rs := range got.rules {
		st.Rules[name] = ruleComments(rs)
	}
	return st, nil
}

func (n *Node) ruleStates() ([]RuleState, error) {
	rules, err := n.rules(func(r netlink.Rule) bool { return r.Protocol == Protocol })
	if err != nil {
		return nil, err
	}
	out := []RuleState{}
	for _, r := range rules {
		rs := RuleState{Priority: r.Priority, Mark: r.Mark, Table: r.Table}
		if r.Src != nil {
			rs.From = ipNetToPrefix(r.Src)
		}
		out = append(out, rs)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out, nil
}

func (n *Node) tableStates(links map[int]string) ([]TableState, error) {
	owned, err := n.ownedTables()
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(owned))
	for t := range owned {
		ids = append(ids, t)
	}
	slices.Sort(ids)
	out := []TableState{}
	for _, id := range ids {
		routes, err := n.tableRoutes(id)
		if err != nil {
			return nil, err
		}
		ts := TableState{ID: id, Routes: []RouteState{}}
		for _, r := range routes {
			ts.Routes = append(ts.Routes, routeState(r, links))
		}
		out = append(out, ts)
	}
	return out, nil
}

func routeState(r netlink.Route, links map[int]string) RouteState {
	rs := RouteState{Dst: ipNetToPrefix(r.Dst), Link: links[r.LinkIndex]}
	if rs.Link == "" {
		rs.Link = fmt.Sprintf("ifindex %d", r.LinkIndex)
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		rs.Gateway = a.Unmap()
	}
	if a, ok := netip.AddrFromSlice(r.Src); ok {
		rs.Src = a.Unmap()
	}
	return rs
}

func (n *Node) linkNames() (map[int]string, error) {
	links, err := n.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make(map[int]string, len(links))
	for _, l := range links {
		out[l.Attrs().Index] = l.Attrs().Name
	}
	return out, nil
}

// stateSysctls are the base settings and those of every link nodenet routes through.
func stateSysctls(tables []TableState) []sysctl {
	want := baseSysctls()
	seen := map[string]bool{}
	for _, t := range tables {
		for _, r := range t.Routes {
			if !seen[r.Link] {
				seen[r.Link] = true
				want = append(want, interfaceSysctls(r.Link)...)
			}
		}
	}
	return want
}
