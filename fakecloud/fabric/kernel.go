package fabric

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// routeProto marks the routes the fabric owns, so it can tell them from the kernel's own.
const routeProto = netlink.RouteProtocol(252)

// kernel executes plan operations with netlink. It caches one netlink handle per namespace and
// the interface index of every port, so the hot path is one or two netlink requests.
type kernel struct {
	prefix string
	mtu    int
	// lbPoll sets the links of application load balancers for busy polling (busypoll.go);
	// pollFailed reports a link that could not be set (the load balancer works without).
	lbPoll     bool
	pollFailed func(lb string, err error)

	mu      sync.Mutex
	handles map[string]*netlink.Handle // by namespace name, or path of an attached namespace
	// handleIDs is the namespace each handle by path was opened in.
	handleIDs map[string]nsID
	ifindex   map[string]int // router port link index, by interface ID
	// attached is the identity of each attached namespace as the fabric wired it, by path.
	attached map[string]nsID
	// home is the namespace the fabric runs in, read once at start: /proc/self/ns/net read
	// later names the main thread's, which may be inside a namespace the fabric is working in
	// at that moment (goroutines lock threads and switch namespaces).
	home    nsID
	homeErr error
}

func newKernel(prefix string, mtu int) *kernel {
	home, err := statNetns("/proc/self/ns/net")
	return &kernel{prefix: prefix, mtu: mtu, handles: map[string]*netlink.Handle{}, ifindex: map[string]int{},
		attached: map[string]nsID{}, handleIDs: map[string]nsID{}, home: home, homeErr: err}
}

// handle returns the cached netlink handle of a namespace (a name, or an attached namespace's
// path), opening it on first use. A handle by path is reopened when another namespace is at the
// path now: it never reaches into a namespace the path no longer names.
func (k *kernel) handle(ns string) (*netlink.Handle, error) {
	var id nsID
	if filepath.IsAbs(ns) {
		var err error
		if id, err = statNetns(ns); err != nil {
			k.closeHandle(ns)
			return nil, err
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if h := k.handles[ns]; h != nil && k.handleIDs[ns] == id {
		return h, nil
	}
	k.dropHandleLocked(ns)
	nsh, err := vnetns.GetFromPath(netns.File(ns))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns, err)
	}
	k.handles[ns], k.handleIDs[ns] = h, id
	return h, nil
}

func (k *kernel) closeHandle(ns string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropHandleLocked(ns)
}

func (k *kernel) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for ns := range k.handles {
		k.dropHandleLocked(ns)
	}
}

func (k *kernel) routerHandle(vpc string) (*netlink.Handle, error) {
	return k.handle(RouterNetns(k.prefix, vpc))
}

func (k *kernel) portIndex(h *netlink.Handle, eni string) (int, error) {
	k.mu.Lock()
	idx, ok := k.ifindex[eni]
	k.mu.Unlock()
	if ok {
		return idx, nil
	}
	l, err := h.LinkByName(portName(eni))
	if err != nil {
		return 0, fmt.Errorf("port of %s: %w", eni, err)
	}
	k.setPortIndex(eni, l.Attrs().Index)
	return l.Attrs().Index, nil
}

func (k *kernel) setPortIndex(eni string, idx int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if idx == 0 {
		delete(k.ifindex, eni)
		return
	}
	k.ifindex[eni] = idx
}

// ensureNetns creates a namespace unless it exists, with its loopback up.
func (k *kernel) ensureNetns(ns string) error {
	if !netns.Exists(ns) {
		if err := netns.Create(ns); err != nil {
			return err
		}
	}
	h, err := k.handle(ns)
	if err != nil {
		return err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback in %s: %w", ns, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up in %s: %w", ns, err)
	}
	return nil
}

func (k *kernel) addNode(n Node) error {
	if n.Netns != "" {
		return k.attach(n)
	}
	return k.ensureNetns(NodeNetns(k.prefix, n.Instance))
}

// delNode removes a node: the fabric's own namespace goes (its ports with it); an attached one
// stays, and only the ports the fabric plugged into it (ports: those of the node) are removed.
func (k *kernel) delNode(n Node, ports []PortOp) error {
	if n.Netns != "" {
		return k.detach(n, ports)
	}
	ns := NodeNetns(k.prefix, n.Instance)
	k.closeHandle(ns)
	return netns.Delete(ns)
}

// delRouter removes a VPC's router and internet namespaces; the ports die with them.
func (k *kernel) delRouter(vpc string) error {
	var errs []error
	for _, ns := range []string{RouterNetns(k.prefix, vpc), InternetNetns(k.prefix, vpc)} {
		k.closeHandle(ns)
		errs = append(errs, netns.Delete(ns))
	}
	return errors.Join(errs...)
}

// setRoute delivers dst to an interface's port (add or move).
func (k *kernel) setRoute(op RouteOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	idx, err := k.portIndex(h, op.ENI)
	if err != nil {
		return err
	}
	r := &netlink.Route{
		Dst: prefixNet(op.Dst), LinkIndex: idx, Scope: netlink.SCOPE_LINK, Protocol: routeProto,
		Table: unix.RT_TABLE_MAIN,
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s -> %s in %s: %w", op.Dst, op.ENI, op.VpcID, err)
	}
	return nil
}

// delRoute stops delivering dst; a route already gone is fine.
func (k *kernel) delRoute(op RouteOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	// Scope "nowhere" matches a route of any scope; netlink's default (universe) would not match
	// our link-scope routes and the delete would quietly find nothing.
	r := &netlink.Route{Dst: prefixNet(op.Dst), Protocol: routeProto, Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_NOWHERE}
	if err := h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s in %s: %w", op.Dst, op.VpcID, err)
	}
	return nil
}

func (k *kernel) setNeigh(op NeighOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	idx, err := k.portIndex(h, op.Key.ENI)
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(op.MAC)
	if err != nil {
		return fmt.Errorf("neighbour %s: mac %q: %w", op.Key.Addr, op.MAC, err)
	}
	n := &netlink.Neigh{
		LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		IP: op.Key.Addr.AsSlice(), HardwareAddr: mac,
	}
	if err := h.NeighSet(n); err != nil {
		return fmt.Errorf("neighbour %s on %s in %s: %w", op.Key.Addr, op.Key.ENI, op.VpcID, err)
	}
	return nil
}

func (k *kernel) delNeigh(op NeighOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	idx, err := k.portIndex(h, op.Key.ENI)
	if err != nil {
		return nil //nolint:nilerr // the port is gone, and its neighbour entries with it
	}
	n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, IP: op.Key.Addr.AsSlice()}
	if err := h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete neighbour %s in %s: %w", op.Key.Addr, op.VpcID, err)
	}
	return nil
}

func (k *kernel) addLocal(op LocalOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	return addrOnLoopback(h, op.Addr, true)
}

func (k *kernel) delLocal(op LocalOp) error {
	h, err := k.routerHandle(op.VpcID)
	if err != nil {
		return err
	}
	return addrOnLoopback(h, op.Addr, false)
}

func addrOnLoopback(h *netlink.Handle, ip netip.Addr, add bool) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	a := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(ip, 32))}
	if add {
		err = h.AddrReplace(lo, a)
	} else if err = h.AddrDel(lo, a); errors.Is(err, unix.EADDRNOTAVAIL) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("address %s on loopback: %w", ip, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func ipNetPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
