package fabric

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// World is what the fabric programs, or has programmed: routers by VPC ID, nodes by instance
// ID and load balancers by ID. The desired World comes from a snapshot (Desired), the actual one
// from the kernel (observe) and is then kept up to date in memory as operations succeed.
type World struct {
	Routers map[string]*Router
	Nodes   map[string]Node
	LBs     map[string]*LB
	// Checks are the health checks the load balancers run (desired only).
	Checks []Check
	// LBFailures are the load balancers the snapshot holds that cannot be built (a malformed
	// address, an unknown subnet), with why: they are reported failed (desired only).
	LBFailures map[string]string
	// apps is the snapshot's load balancers indexed (desired only): convergence builds the
	// engines' configurations from the same index.
	apps *albSnapshot
}

// Router is one VPC's router namespace.
type Router struct {
	VpcID string
	CIDR  netip.Prefix
	// Ready is set once the router's base (namespaces, sysctls, internet link, listeners) has been
	// ensured by this process. Observed routers are not Ready until the fabric ensures them.
	Ready bool
	// Locals are the subnet gateway addresses the router owns (on its loopback).
	Locals map[netip.Addr]bool
	// Ports are the router ends of attached interfaces, by interface ID.
	Ports map[string]Port
	// Routes deliver an address (/32) or a delegated prefix (/28) to an interface ID.
	Routes map[netip.Prefix]string
	// Neighs are permanent neighbour entries for host routes, so delivery needs no ARP.
	Neighs map[NeighKey]string // value: MAC
}

// NeighKey names a neighbour entry: an address on the link of an interface.
type NeighKey struct {
	ENI  string
	Addr netip.Addr
}

// Port is an attached interface: the veth pair from the router to eth<Device> of a node.
type Port struct {
	ENI      string
	Instance string
	Device   int
	MAC      string
	// SourceDestCheck on means strict reverse-path filtering on the router's end.
	SourceDestCheck bool
	// Addr is the primary IP as the node carries it: subnet prefix length on eth0, /32 elsewhere.
	Addr netip.Prefix
	// Gateway is eth0's default gateway (zero on other devices). On an attached node's device 0
	// it is the gateway of NodeRoutes.
	Gateway netip.Addr
	// Netns is the path of the namespace the node end lives in when the instance is attached to
	// a namespace the fabric does not own (attach.go); empty for the fabric's own node namespace.
	Netns string
	// NodeRoutes are the routes an attached node's device 0 carries through Gateway, as
	// formatRoutes writes them (empty otherwise).
	NodeRoutes string
}

// sameLink reports whether two ports are the same veth pair (otherwise it must be recreated).
func (p Port) sameLink(q Port) bool {
	return p.ENI == q.ENI && p.Instance == q.Instance && p.Device == q.Device && p.MAC == q.MAC &&
		p.Netns == q.Netns
}

// nodeLink is the name of the port's device inside the node: eth<N> in the fabric's own node
// namespace, vpc<N> in an attached one (whose eth0 is the container runtime's).
func (p Port) nodeLink() string {
	if p.Netns != "" {
		return attachedLinkName(p.Device)
	}
	return nodeLinkName(p.Device)
}

// nodeNs names the namespace of the port's node end for kernel.handle: the fabric's node
// namespace, or the attached namespace's path.
func (p Port) nodeNs(prefix string) string {
	if p.Netns != "" {
		return p.Netns
	}
	return NodeNetns(prefix, p.Instance)
}

// Node is an instance's namespace.
type Node struct {
	Instance string
	VpcID    string
	// Netns is the path of an existing namespace the instance is attached to (attach.go); empty
	// when the fabric makes and owns the node namespace.
	Netns string
	// DefaultRoute: an attached node's default route goes through the VPC too (desired only).
	DefaultRoute bool
}

// NewWorld returns an empty World.
func NewWorld() *World {
	return &World{Routers: map[string]*Router{}, Nodes: map[string]Node{}, LBs: map[string]*LB{}, LBFailures: map[string]string{}}
}

func newRouter(vpcID string, cidr netip.Prefix) *Router {
	return &Router{
		VpcID: vpcID, CIDR: cidr,
		Locals: map[netip.Addr]bool{}, Ports: map[string]Port{},
		Routes: map[netip.Prefix]string{}, Neighs: map[NeighKey]string{},
	}
}

// instanceGone reports whether an instance no longer needs a node.
func instanceGone(state string) bool {
	return state == "terminated" || state == "shutting-down" || state == "stopped"
}

// Desired computes the World a snapshot asks for. It is pure. Malformed entries are skipped and
// reported in the joined error; the World is still usable.
func Desired(snap *api.Snapshot) (*World, error) { return desiredWorld(snap, nil) }

// desiredWorld is Desired with the instances attached to existing namespaces (att may be nil):
// their nodes carry the namespace's path, and those an attachment could not bind get no node.
func desiredWorld(snap *api.Snapshot, att *attachPlan) (*World, error) {
	w := NewWorld()
	var errs []error
	for _, v := range snap.Vpcs {
		cidr, err := netip.ParsePrefix(v.CidrBlock)
		if err != nil {
			errs = append(errs, fmt.Errorf("vpc %s: cidr %q: %w", v.VpcID, v.CidrBlock, err))
			continue
		}
		w.Routers[v.VpcID] = newRouter(v.VpcID, cidr.Masked())
	}
	subnets := map[string]subnetInfo{}
	for _, s := range snap.Subnets {
		si, err := parseSubnet(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		subnets[s.SubnetID] = si
		if r := w.Routers[s.VpcID]; r != nil {
			r.Locals[si.gateway] = true
		}
	}
	for _, in := range snap.Instances {
		if instanceGone(in.State) || w.Routers[in.VpcID] == nil || att.blocks(in.InstanceID) {
			continue
		}
		n := Node{Instance: in.InstanceID, VpcID: in.VpcID}
		if a, ok := att.of(in.InstanceID); ok {
			n.Netns, n.DefaultRoute = a.Netns, a.DefaultRoute
		}
		w.Nodes[in.InstanceID] = n
	}
	for i := range snap.NetworkInterfaces {
		if err := w.addENI(&snap.NetworkInterfaces[i], subnets); err != nil {
			errs = append(errs, err)
		}
	}
	checks, err := w.addLBs(snap, subnets)
	w.Checks = checks
	return w, errors.Join(append(errs, err)...)
}

type subnetInfo struct {
	cidr    netip.Prefix
	gateway netip.Addr
}

func parseSubnet(s api.Subnet) (subnetInfo, error) {
	cidr, err := netip.ParsePrefix(s.CidrBlock)
	if err != nil {
		return subnetInfo{}, fmt.Errorf("subnet %s: cidr %q: %w", s.SubnetID, s.CidrBlock, err)
	}
	gw, err := netip.ParseAddr(s.Gateway)
	if err != nil {
		// The gateway is always base+1; derive it when the control plane leaves it out.
		gw = cidr.Masked().Addr().Next()
	}
	return subnetInfo{cidr: cidr.Masked(), gateway: gw}, nil
}

// attached reports whether an interface is plugged into a running node.
func attached(eni *api.NetworkInterface, nodes map[string]Node) bool {
	a := eni.Attachment
	if a == nil || a.Status != api.AttachmentStatusAttached {
		return false
	}
	_, ok := nodes[a.InstanceID]
	return ok
}

func (w *World) addENI(eni *api.NetworkInterface, subnets map[string]subnetInfo) error {
	r := w.Routers[eni.VpcID]
	if r == nil || !attached(eni, w.Nodes) {
		return nil
	}
	sn, ok := subnets[eni.SubnetID]
	if !ok {
		return fmt.Errorf("interface %s: unknown subnet %s", eni.NetworkInterfaceID, eni.SubnetID)
	}
	primary, err := netip.ParseAddr(eni.PrivateIPAddress)
	if err != nil {
		return fmt.Errorf("interface %s: primary ip %q: %w", eni.NetworkInterfaceID, eni.PrivateIPAddress, err)
	}
	node := w.Nodes[eni.Attachment.InstanceID]
	p := Port{
		ENI: eni.NetworkInterfaceID, Instance: eni.Attachment.InstanceID,
		Device: eni.Attachment.DeviceIndex, MAC: strings.ToLower(eni.MacAddress),
		SourceDestCheck: eni.SourceDestCheck, Addr: netip.PrefixFrom(primary, 32), Netns: node.Netns,
	}
	if p.Device == 0 {
		p.Addr = netip.PrefixFrom(primary, sn.cidr.Bits())
		p.Gateway = sn.gateway
		if p.Netns != "" {
			p.NodeRoutes = formatRoutes(attachedRoutes(r.CIDR, sn.cidr, node.DefaultRoute))
		}
	}
	r.Ports[p.ENI] = p
	r.Routes[netip.PrefixFrom(primary, 32)] = p.ENI
	r.Neighs[NeighKey{ENI: p.ENI, Addr: primary}] = p.MAC
	var errs []error
	for _, a := range eni.PrivateIPAddresses {
		ip, err := netip.ParseAddr(a.PrivateIPAddress)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: ip %q: %w", p.ENI, a.PrivateIPAddress, err))
			continue
		}
		r.Routes[netip.PrefixFrom(ip, 32)] = p.ENI
		r.Neighs[NeighKey{ENI: p.ENI, Addr: ip}] = p.MAC
	}
	for _, pf := range eni.Ipv4Prefixes {
		pp, err := netip.ParsePrefix(pf.Ipv4Prefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: prefix %q: %w", p.ENI, pf.Ipv4Prefix, err))
			continue
		}
		r.Routes[pp.Masked()] = p.ENI
		// The cloud delivers to the interface's MAC without asking: a node need not answer ARP
		// for addresses it hands to pods.
		for ip, n := pp.Masked().Addr(), 0; n < 1<<(32-pp.Bits()) && pp.Bits() >= 24; ip, n = ip.Next(), n+1 {
			r.Neighs[NeighKey{ENI: p.ENI, Addr: ip}] = p.MAC
		}
	}
	return errors.Join(errs...)
}

// Counts returns how many routes and neighbour entries the World holds.
func (w *World) Counts() (routes, neighs int) {
	for _, r := range w.Routers {
		routes += len(r.Routes)
		neighs += len(r.Neighs)
	}
	return routes, neighs
}
