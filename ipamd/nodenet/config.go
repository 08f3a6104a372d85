package nodenet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// Defaults and fixed numbers of the datapath.
const (
	// DefaultTableBase: a secondary interface with device index N uses route table 100+N.
	DefaultTableBase = 100
	// DefaultMark is the packet-mark bit that steers SNATed pod traffic to the main table. It
	// stays clear of kube-proxy's bits (0x4000, 0x8000) and of the high bits CNIs such as Calico use.
	DefaultMark = 0x80
	// PrioritySNATToMain is the priority of "fwmark MARK lookup main": after the rules that send
	// traffic to pods to main, before the rules that send traffic from pods to their table.
	PrioritySNATToMain = 1024
	// PriorityInterface is the priority of "from <interface primary IP> lookup <table>".
	PriorityInterface = wire.PriorityFromPod
	// Protocol is the routing protocol number stamped on every route and rule nodenet makes
	// ("proto 70" in ip route / ip rule); it is how they are told apart from anyone else's.
	Protocol = 70
	// NFTTable is the name of nodenet's nftables table (family ip).
	NFTTable = "flatnet"
)

// Config holds the static facts of a node. VPCCIDRs and PrimaryIP are required.
type Config struct {
	// VPCCIDRs are the VPC's IPv4 blocks; traffic to them is never SNATed.
	VPCCIDRs []netip.Prefix
	// PrimaryIP is the node's primary address (on the primary interface); the SNAT source.
	PrimaryIP netip.Addr
	// ExternalSNAT turns SNAT off, for when a NAT outside the node translates pod addresses. The
	// zero value keeps SNAT on.
	ExternalSNAT bool
	// SNATExclusions are extra destinations (outside the VPC) that pods reach with their own
	// address, e.g. peered networks.
	SNATExclusions []netip.Prefix
	// MTU for cloud interfaces whose Interface.MTU is 0; 0 leaves the link's MTU alone.
	MTU int
	// TableBase: secondary interface N uses route table TableBase+N. 0 means DefaultTableBase.
	TableBase int
	// Mark is the packet-mark bit (one bit) used for SNAT steering. 0 means DefaultMark.
	Mark uint32
	// NetNS is the path of the network namespace to program (e.g. /var/run/netns/node1). Empty
	// means the namespace of the thread that calls New.
	NetNS string
	// FastPath is FastPathOn, FastPathAuto or FastPathOff (the empty string means off): whether
	// pod traffic inside the VPC is forwarded by the BPF fast path (package fastpath) instead of
	// the node's IP stack. On: EnsureBase fails when it cannot be loaded. Auto: it is used when
	// the kernel supports it, with a warning otherwise.
	FastPath string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Fast path modes (Config.FastPath).
const (
	FastPathOff  = "off"
	FastPathAuto = "auto"
	FastPathOn   = "on"
)

// Interface is a cloud network interface attached to the node, as the cloud describes it.
type Interface struct {
	// DeviceIndex is the attachment slot: 0 is the primary interface.
	DeviceIndex int
	// MAC identifies the link on the node; names are not stable, MACs are.
	MAC net.HardwareAddr
	// PrimaryIP is the interface's own address.
	PrimaryIP netip.Addr
	// SubnetCIDR is the interface's subnet.
	SubnetCIDR netip.Prefix
	// Gateway is the subnet's router, inside SubnetCIDR.
	Gateway netip.Addr
	// MTU; 0 means Config.MTU.
	MTU int
}

// ErrInvalid is wrapped by every error about a bad Config or Interface.
var ErrInvalid = errors.New("invalid nodenet input")

func (c *Config) setDefaults() {
	if c.TableBase == 0 {
		c.TableBase = DefaultTableBase
	}
	if c.Mark == 0 {
		c.Mark = DefaultMark
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	if len(c.VPCCIDRs) == 0 {
		return fmt.Errorf("%w: config: VPCCIDRs is empty; give the VPC's CIDR blocks", ErrInvalid)
	}
	for _, p := range append(append([]netip.Prefix{}, c.VPCCIDRs...), c.SNATExclusions...) {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("%w: config: %v is not an IPv4 CIDR", ErrInvalid, p)
		}
	}
	if !c.PrimaryIP.Is4() {
		return fmt.Errorf("%w: config: PrimaryIP %v is not an IPv4 address", ErrInvalid, c.PrimaryIP)
	}
	if c.MTU < 0 || c.MTU > 65535 {
		return fmt.Errorf("%w: config: MTU %d out of range 0..65535", ErrInvalid, c.MTU)
	}
	// Tables 253..255 are default/main/local; keep the whole range of 32-bit tables clear of them.
	if c.TableBase < 256 && c.TableBase+maxDeviceIndex >= 253 {
		return fmt.Errorf("%w: config: TableBase %d makes tables collide with default/main/local (253-255); use a base below %d or from 256",
			ErrInvalid, c.TableBase, 253-maxDeviceIndex)
	}
	if c.TableBase < 0 {
		return fmt.Errorf("%w: config: TableBase %d is negative", ErrInvalid, c.TableBase)
	}
	switch c.FastPath {
	case "", FastPathOff, FastPathAuto, FastPathOn:
	default:
		return fmt.Errorf("%w: config: FastPath %q is not one of on, auto, off", ErrInvalid, c.FastPath)
	}
	if c.Mark&(c.Mark-1) != 0 {
		return fmt.Errorf("%w: config: Mark %#x must be a single bit", ErrInvalid, c.Mark)
	}
	return nil
}

// maxDeviceIndex bounds device indexes; no cloud instance has more interfaces.
const maxDeviceIndex = 127

func (n *Node) tableFor(deviceIndex int) int { return n.cfg.TableBase + deviceIndex }

// RouteTable is the policy-routing table of the interface with deviceIndex, as ipamd reports
// it in wire.Allocation.RouteTable: 0 (main) for the primary interface, TableBase+deviceIndex
// otherwise.
func (n *Node) RouteTable(deviceIndex int) int {
	if deviceIndex == 0 {
		return 0
	}
	return n.tableFor(deviceIndex)
}

func (i Interface) validate() error {
	if i.DeviceIndex < 0 || i.DeviceIndex > maxDeviceIndex {
		return fmt.Errorf("%w: interface: device index %d out of range 0..%d", ErrInvalid, i.DeviceIndex, maxDeviceIndex)
	}
	if len(i.MAC) != 6 {
		return fmt.Errorf("%w: interface %d: MAC %q is not a 6-byte hardware address", ErrInvalid, i.DeviceIndex, i.MAC)
	}
	if i.MTU < 0 || i.MTU > 65535 {
		return fmt.Errorf("%w: interface %d: MTU %d out of range 0..65535", ErrInvalid, i.DeviceIndex, i.MTU)
	}
	if i.DeviceIndex == 0 {
		return nil
	}
	if !i.PrimaryIP.Is4() || !i.SubnetCIDR.IsValid() || !i.SubnetCIDR.Addr().Is4() {
		return fmt.Errorf("%w: interface %d: PrimaryIP %v / SubnetCIDR %v must be IPv4", ErrInvalid, i.DeviceIndex, i.PrimaryIP, i.SubnetCIDR)
	}
	if !i.SubnetCIDR.Contains(i.PrimaryIP) || !i.SubnetCIDR.Contains(i.Gateway) {
		return fmt.Errorf("%w: interface %d: PrimaryIP %v and Gateway %v must both lie in SubnetCIDR %v",
			ErrInvalid, i.DeviceIndex, i.PrimaryIP, i.Gateway, i.SubnetCIDR)
	}
	return nil
}
