package nodenet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/flatnet/flatnet/ipamd/nodenet/fastpath"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// Node programs one node's network namespace. Its methods are safe for concurrent use; they
// are serialised, since each one converges a part of the kernel's state by diff.
type Node struct {
	cfg    Config
	netns  ns.NetNS
	nl     *netlink.Handle
	log    *slog.Logger
	mu     sync.Mutex
	closed bool

	fast    *fastpath.FastPath // nil: off, not loaded yet, or unavailable (fastErr)
	fastErr error
}

// New checks cfg and opens the network namespace it names (or the calling thread's). It
// changes nothing; call EnsureBase and EnsureInterface for that. Close releases the handles.
func New(cfg Config) (*Node, error) {
	cfg.VPCCIDRs = append([]netip.Prefix(nil), cfg.VPCCIDRs...)
	cfg.SNATExclusions = append([]netip.Prefix(nil), cfg.SNATExclusions...)
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	target, err := openNetNS(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(target.Fd()))
	if err != nil {
		_ = target.Close()
		return nil, fmt.Errorf("netlink handle in network namespace %s: %w", target.Path(), err)
	}
	n := &Node{cfg: cfg, netns: target, nl: h}
	n.log = cfg.Logger.With("component", "nodenet", "netns", target.Path())
	return n, nil
}

func openNetNS(path string) (ns.NetNS, error) {
	if path == "" {
		cur, err := ns.GetCurrentNS()
		if err != nil {
			return nil, fmt.Errorf("open the current network namespace: %w", err)
		}
		return cur, nil
	}
	target, err := ns.GetNS(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s (does it exist?): %w", path, err)
	}
	return target, nil
}

// Close releases the namespace and netlink handles. What was programmed stays.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	if n.fast != nil {
		errs = append(errs, n.fast.Close())
		n.fast = nil
	}
	n.nl.Close()
	return errors.Join(append(errs, n.netns.Close())...)
}

// lock serialises the methods and refuses work on a closed Node or a cancelled context.
func (n *Node) lock(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errors.New("nodenet: node is closed")
	}
	return n.mu.Unlock, nil
}

// nft opens a netlink connection to nf_tables in the node's namespace; each batch opens its
// own socket, so no state lingers between calls.
func (n *Node) nft() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(n.netns.Fd())))
	if err != nil {
		return nil, fmt.Errorf("nftables connection in %s: %w", n.netns.Path(), err)
	}
	return c, nil
}

// EnsureBase converges the node-wide settings: sysctls, and SNAT (nftables table and its
// policy rule) on or off per Config.ExternalSNAT. Running it again changes nothing.
func (n *Node) EnsureBase(ctx context.Context) error {
	unlock, err := n.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	changed, err := n.ensureSysctls(baseSysctls())
	if err != nil {
		return err
	}
	for _, k := range changed {
		n.log.Info("sysctl set", "key", k)
	}
	if n.cfg.ExternalSNAT {
		err = n.removeSNAT()
	} else {
		err = n.ensureSNAT()
	}
	if err != nil {
		return err
	}
	return n.ensureFastPath()
}

// ensureFastPath loads the fast path once, per Config.FastPath. In auto mode a kernel that
// cannot run it is reported once and the node's stack forwards everything.
func (n *Node) ensureFastPath() error {
	mode := n.cfg.FastPath
	if mode == "" || mode == FastPathOff || n.fast != nil || n.fastErr != nil {
		return nil
	}
	f, err := fastpath.Start(fastpath.Config{VPCCIDRs: n.cfg.VPCCIDRs, NetNS: n.netns, Logger: n.log})
	if err != nil {
		if mode == FastPathOn {
			return err
		}
		n.fastErr = err
		n.log.Warn("fast path unavailable; the node's IP stack forwards pod traffic", "err", err)
		return nil
	}
	n.fast = f
	n.log.Info("fast path loaded")
	return nil
}

// FastPathStats reports the fast path's counters; false when it is not running.
func (n *Node) FastPathStats() (fastpath.Stats, bool) {
	n.mu.Lock()
	f := n.fast
	n.mu.Unlock()
	if f == nil {
		return fastpath.Stats{}, false
	}
	s, err := f.Stats()
	if err != nil {
		n.log.Warn("read fast path counters", "err", err)
	}
	return s, true
}

// EnsureInterface converges one cloud interface: the link with in.MAC is up with the MTU; for a
// secondary interface its address is present, its route table holds the subnet and default
// routes, and "from PrimaryIP lookup table" exists. The primary interface (DeviceIndex 0) uses
// the main table and gets only the link settings.
func (n *Node) EnsureInterface(ctx context.Context, in Interface) error {
	if err := in.validate(); err != nil {
		return err
	}
	unlock, err := n.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	link, err := n.linkByMAC(in.MAC)
	if err != nil {
		return fmt.Errorf("interface %d: %w", in.DeviceIndex, err)
	}
	if err := n.ensureLink(link, in); err != nil {
		return fmt.Errorf("interface %d (%s): %w", in.DeviceIndex, link.Attrs().Name, err)
	}
	if n.fast != nil {
		if err := n.fast.AttachCloud(link, in.PrimaryIP); err != nil {
			n.log.Warn("fast path not attached to a cloud interface; its traffic takes the node's stack", "link", link.Attrs().Name, "err", err)
		}
	}
	if in.DeviceIndex == 0 {
		return nil
	}
	if err := n.ensureInterfaceRouting(link, in); err != nil {
		return fmt.Errorf("interface %d (%s): %w", in.DeviceIndex, link.Attrs().Name, err)
	}
	return nil
}

// RemoveInterface deletes route table TableBase+deviceIndex and every rule that points at it
// (including per-pod rules left behind: without the table they would route through main). It
// is a no-op for the primary interface and for an interface already gone.
func (n *Node) RemoveInterface(ctx context.Context, deviceIndex int) error {
	if deviceIndex < 0 || deviceIndex > maxDeviceIndex {
		return fmt.Errorf("%w: device index %d out of range 0..%d", ErrInvalid, deviceIndex, maxDeviceIndex)
	}
	if deviceIndex == 0 {
		return nil
	}
	unlock, err := n.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	table := n.tableFor(deviceIndex)
	if err := n.deleteRules(func(r netlink.Rule) bool { return r.Table == table }); err != nil {
		return fmt.Errorf("remove interface %d: %w", deviceIndex, err)
	}
	if err := n.flushTable(table); err != nil {
		return fmt.Errorf("remove interface %d: %w", deviceIndex, err)
	}
	return nil
}

// Cleanup removes everything nodenet made: the fast path, the nftables table, every route and
// rule carrying Protocol, and rules pointing at the tables those routes were in. Sysctls stay.
func (n *Node) Cleanup(ctx context.Context) error {
	unlock, err := n.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	if n.fast != nil {
		errs = append(errs, n.fast.Close())
		n.fast = nil
	}
	if err := n.deleteNFTTable(); err != nil {
		errs = append(errs, err)
	}
	tables, err := n.ownedTables()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	mine := func(r netlink.Rule) bool { return r.Protocol == Protocol || tables[r.Table] }
	if err := n.deleteRules(mine); err != nil {
		errs = append(errs, err)
	}
	for t := range tables {
		if err := n.flushTable(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
