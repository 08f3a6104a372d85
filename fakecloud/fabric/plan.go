package fabric

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// Plan is the difference between two Worlds, as kernel operations in the order they run.
// Deletions of routes come first: they are what stops delivering an unassigned address.
type Plan struct {
	EnsureRouters []RouterRef
	// ReplaceNodes are nodes whose namespace changes (attached to another namespace, attached
	// now, or no longer): the old node is removed with its ports, then the new one added.
	ReplaceNodes []Node
	AddNodes     []Node
	DelRoutes    []RouteOp
	DelNeighs    []NeighOp
	DelPorts     []PortOp
	DelLocals    []LocalOp
	AddLocals    []LocalOp
	AddPorts     []PortOp
	FixPorts     []PortOp
	SetNeighs    []NeighOp
	SetRoutes    []RouteOp
	// Load balancers go after the routes to their targets exist and before routers go.
	DelLBs     []*LB
	EnsureLBs  []*LB
	ProgramLBs []*LB
	FlushLBs   []*LB // cut connections to targets no longer registered
	DelNodes   []string
	DelRouters []string
}

// RouterRef names a router and its VPC CIDR.
type RouterRef struct {
	VpcID string
	CIDR  netip.Prefix
}

// RouteOp adds, replaces or deletes the route of Dst in a VPC router (ENI empty on delete).
type RouteOp struct {
	VpcID string
	Dst   netip.Prefix
	ENI   string
}

// NeighOp sets or deletes a permanent neighbour entry.
type NeighOp struct {
	VpcID string
	Key   NeighKey
	MAC   string
}

// PortOp creates, fixes or deletes an interface's veth pair. Old is the port as programmed (for
// a fix or a delete); Port the desired one.
type PortOp struct {
	VpcID string
	Port  Port
	Old   Port
}

// LocalOp adds or deletes a gateway address the router owns.
type LocalOp struct {
	VpcID string
	Addr  netip.Addr
}

// Empty reports whether the plan does nothing.
func (p *Plan) Empty() bool {
	return len(p.EnsureRouters)+len(p.ReplaceNodes)+len(p.AddNodes)+len(p.DelRoutes)+len(p.DelNeighs)+len(p.DelPorts)+
		len(p.DelLocals)+len(p.AddLocals)+len(p.AddPorts)+len(p.FixPorts)+len(p.SetNeighs)+
		len(p.SetRoutes)+len(p.DelNodes)+len(p.DelRouters)+
		len(p.DelLBs)+len(p.EnsureLBs)+len(p.ProgramLBs)+len(p.FlushLBs) == 0
}

// Diff computes the plan that turns actual into desired. It is pure and deterministic.
func Diff(desired, actual *World) *Plan {
	p := &Plan{}
	for _, id := range sortedKeys(desired.Routers) {
		d := desired.Routers[id]
		a := actual.Routers[id]
		if a == nil || !a.Ready || a.CIDR != d.CIDR {
			p.EnsureRouters = append(p.EnsureRouters, RouterRef{VpcID: id, CIDR: d.CIDR})
		}
	}
	have := actual.Nodes
	for _, id := range sortedKeys(desired.Nodes) {
		a, ok := actual.Nodes[id]
		switch {
		case !ok:
			p.AddNodes = append(p.AddNodes, desired.Nodes[id])
		case a.Netns != desired.Nodes[id].Netns:
			p.ReplaceNodes = append(p.ReplaceNodes, desired.Nodes[id])
			if len(p.ReplaceNodes) == 1 {
				have = maps.Clone(actual.Nodes)
			}
			delete(have, id) // its ports go with the old node
		}
	}
	for _, id := range sortedKeys(actual.Nodes) {
		if _, ok := desired.Nodes[id]; !ok {
			p.DelNodes = append(p.DelNodes, id)
		}
	}
	for _, id := range sortedKeys(actual.Routers) {
		if _, ok := desired.Routers[id]; !ok {
			p.DelRouters = append(p.DelRouters, id)
		}
	}
	for _, id := range sortedKeys(desired.Routers) {
		a := actual.Routers[id]
		if a == nil {
			a = newRouter(id, desired.Routers[id].CIDR)
		}
		p.diffRouter(desired.Routers[id], a, desired.Nodes, have)
	}
	p.diffLBs(desired, actual)
	return p
}

// diffRouter adds the operations of one router. Ports whose node disappears, or that must be
// recreated, take their routes and neighbour entries with them in the kernel, so those are
// treated as gone rather than deleted one by one.
func (p *Plan) diffRouter(d, a *Router, wantNodes, haveNodes map[string]Node) {
	vpc := d.VpcID
	gone := map[string]bool{} // ports absent from the kernel after this plan's port deletions
	for _, eni := range sortedKeys(a.Ports) {
		old := a.Ports[eni]
		want, ok := d.Ports[eni]
		_, stays := wantNodes[old.Instance]
		_, exists := haveNodes[old.Instance]
		switch {
		case !exists && old.Netns != "":
			// A port into an attached namespace the fabric does not hold (it vanished, or it is
			// being replaced): no namespace deletion takes it away, so it is deleted.
			p.DelPorts = append(p.DelPorts, PortOp{VpcID: vpc, Old: old})
			gone[eni] = true
		case !stays || !exists:
			gone[eni] = true // deleting the node namespace destroys the pair
		case !ok || !want.sameLink(old):
			p.DelPorts = append(p.DelPorts, PortOp{VpcID: vpc, Old: old})
			gone[eni] = true
		}
	}
	for _, eni := range sortedKeys(d.Ports) {
		want := d.Ports[eni]
		old, ok := a.Ports[eni]
		switch {
		case !ok || gone[eni]:
			p.AddPorts = append(p.AddPorts, PortOp{VpcID: vpc, Port: want})
		case old != want:
			p.FixPorts = append(p.FixPorts, PortOp{VpcID: vpc, Port: want, Old: old})
		}
	}
	p.diffLocals(d, a)
	p.diffRoutes(d, a, gone)
	p.diffNeighs(d, a, gone)
}

func (p *Plan) diffLocals(d, a *Router) {
	for _, ip := range sortedAddrs(a.Locals) {
		if !d.Locals[ip] {
			p.DelLocals = append(p.DelLocals, LocalOp{VpcID: d.VpcID, Addr: ip})
		}
	}
	for _, ip := range sortedAddrs(d.Locals) {
		if !a.Locals[ip] {
			p.AddLocals = append(p.AddLocals, LocalOp{VpcID: d.VpcID, Addr: ip})
		}
	}
}

func (p *Plan) diffRoutes(d, a *Router, gone map[string]bool) {
	for _, dst := range sortedPrefixes(a.Routes) {
		eni := a.Routes[dst]
		if _, want := d.Routes[dst]; !want && !gone[eni] {
			p.DelRoutes = append(p.DelRoutes, RouteOp{VpcID: d.VpcID, Dst: dst})
		}
	}
	for _, dst := range sortedPrefixes(d.Routes) {
		eni := d.Routes[dst]
		if old, ok := a.Routes[dst]; !ok || old != eni || gone[old] {
			p.SetRoutes = append(p.SetRoutes, RouteOp{VpcID: d.VpcID, Dst: dst, ENI: eni})
		}
	}
}

func (p *Plan) diffNeighs(d, a *Router, gone map[string]bool) {
	for _, k := range sortedNeighs(a.Neighs) {
		if _, want := d.Neighs[k]; !want && !gone[k.ENI] {
			p.DelNeighs = append(p.DelNeighs, NeighOp{VpcID: d.VpcID, Key: k})
		}
	}
	for _, k := range sortedNeighs(d.Neighs) {
		mac := d.Neighs[k]
		if old, ok := a.Neighs[k]; !ok || old != mac || gone[k.ENI] {
			p.SetNeighs = append(p.SetNeighs, NeighOp{VpcID: d.VpcID, Key: k, MAC: mac})
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	keys := make([]netip.Addr, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.Addr.Compare)
	return keys
}

func sortedPrefixes[V any](m map[netip.Prefix]V) []netip.Prefix {
	keys := make([]netip.Prefix, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePrefix)
	return keys
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

func sortedNeighs(m map[NeighKey]string) []NeighKey {
	keys := make([]NeighKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b NeighKey) int {
		if c := cmp.Compare(a.ENI, b.ENI); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	return keys
}
