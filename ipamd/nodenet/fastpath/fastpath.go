// Package fastpath loads and attaches flatnet's node fast path (bpf/fastpath.c): tcx ingress
// programs on the host side of every pod veth and on every cloud interface that forward pod
// traffic inside the VPC without the node's IP stack, exactly where the stack would have sent it
// (the kernel's own route lookup), and only when the stack would have done nothing else to it
// (no SNAT, no conntrack entry, so no NAT binding, no options, no fragments). Everything else
// goes on to the stack, so the fast path can be added, removed or lost (the programs go away with
// the process that attached them) at any moment without breaking a flow.
//
// What it saves per packet is the node's forwarding step (ip_rcv, the netfilter hooks, the
// route and neighbour lookups of ip_forward) and, towards a pod, one pass through the CPU's
// backlog queue (bpf_redirect_peer delivers straight into the pod's end of the veth).
//
// Requirements: Linux 6.6 or later (tcx), BTF (CONFIG_DEBUG_INFO_BTF), conntrack (for the
// bpf_skb_ct_lookup kfunc), CAP_BPF and CAP_NET_ADMIN.
package fastpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// PodAliasPrefix marks the host side of a pod veth made by flatnet's CNI plugin (its link alias
// is "flatnet/<network>/<containerID>/<ifName>"); those are the links from_pod is attached to.
const PodAliasPrefix = "flatnet/"

// Link kinds, as the programs' links map holds them.
const (
	kindPod   uint8 = 1
	kindCloud uint8 = 2
)

// verdictNames are the programs' verdict counters, in the order of enum verdict.
var verdictNames = []string{
	"to_pod", "to_cloud", "not_ipv4", "not_tcp_udp", "ip_options_or_fragment", "ttl_expiring",
	"outside_vpc", "conntrack", "resolving_neighbour", "no_route", "other_device", "not_for_node", "for_node",
	"rewrite_failed",
}

// resyncEvery bounds how long a missed link notification can leave a link without the fast path.
const resyncEvery = 30 * time.Second

// Config says where the fast path works.
type Config struct {
	// VPCCIDRs are the VPC's IPv4 blocks: only traffic between two of their addresses is
	// fast-pathed. Required.
	VPCCIDRs []netip.Prefix
	// NetNS is the node's network namespace; nil means the caller's.
	NetNS ns.NetNS
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// FastPath is the loaded programs and their attachments in one namespace. Its methods are safe
// for concurrent use.
type FastPath struct {
	objs   fastpathObjects
	netns  ns.NetNS
	ownNS  bool
	nl     *netlink.Handle
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	cloudMACs map[string]bool
	attached  map[int]*attachment // by ifindex
	closed    bool
}

type attachment struct {
	kind uint8
	name string
	link link.Link
}

// Start loads the programs, fills the VPC's blocks in, attaches from_pod to every pod veth that
// exists or appears in the namespace, and keeps doing so until Close. Cloud interfaces are
// attached when AttachCloud names them.
func Start(cfg Config) (*FastPath, error) {
	if len(cfg.VPCCIDRs) == 0 {
		return nil, errors.New("fastpath: no VPC CIDR given")
	}
	for _, p := range cfg.VPCCIDRs {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("fastpath: VPC CIDR %s is not IPv4", p)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	f := &FastPath{netns: cfg.NetNS, log: log.With("component", "fastpath"), cloudMACs: map[string]bool{},
		attached: map[int]*attachment{}, done: make(chan struct{})}
	if f.netns == nil {
		cur, err := ns.GetCurrentNS()
		if err != nil {
			return nil, fmt.Errorf("fastpath: open the current network namespace: %w", err)
		}
		f.netns, f.ownNS = cur, true
	}
	if err := load(&f.objs, cfg.VPCCIDRs); err != nil {
		f.closeNS()
		return nil, err
	}
	h, err := netlink.NewHandleAt(vnetns.NsHandle(f.netns.Fd()))
	if err != nil {
		f.objs.Close()
		f.closeNS()
		return nil, fmt.Errorf("fastpath: netlink handle in %s: %w", f.netns.Path(), err)
	}
	f.nl = h
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	updates := make(chan netlink.LinkUpdate, 256)
	subErr := make(chan error, 1)
	nsh := vnetns.NsHandle(f.netns.Fd())
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		Namespace: &nsh, ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case subErr <- err:
			default:
			}
		},
	}); err != nil {
		cancel()
		h.Close()
		f.objs.Close()
		f.closeNS()
		return nil, fmt.Errorf("fastpath: watch links in %s: %w", f.netns.Path(), err)
	}
	go f.run(ctx, updates, subErr)
	return f, nil
}

// maxVPCCIDRs is MAX_VPC_CIDRS of the program (a VPC has at most 5 IPv4 blocks on EC2).
const maxVPCCIDRs = 16

// load sets the VPC's blocks into the programs' constants and loads them.
func load(objs *fastpathObjects, vpc []netip.Prefix) error {
	if len(vpc) > maxVPCCIDRs {
		return fmt.Errorf("fastpath: %d VPC CIDR blocks; the programs take at most %d", len(vpc), maxVPCCIDRs)
	}
	spec, err := loadFastpath()
	if err != nil {
		return fmt.Errorf("fastpath: read the embedded BPF object: %w", err)
	}
	var nets, masks [maxVPCCIDRs]uint32
	for i, p := range vpc {
		nets[i] = be32(p.Masked().Addr())
		masks[i] = be32(netip.AddrFrom4([4]byte(net.CIDRMask(p.Bits(), 32))))
	}
	for name, v := range map[string]any{"vpc_net": nets, "vpc_mask": masks, "vpc_count": uint32(len(vpc))} {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("fastpath: the BPF object has no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("fastpath: set %s: %w", name, err)
		}
	}
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		return fmt.Errorf("fastpath: load the BPF programs (needs Linux 6.6+ with BTF and conntrack, CAP_BPF and CAP_NET_ADMIN): %w", err)
	}
	return nil
}

func (f *FastPath) closeNS() {
	if f.ownNS {
		_ = f.netns.Close()
	}
}

// be32 is a's bytes as the uint32 whose in-memory form is network order (what the programs
// compare with ip->saddr on a little-endian machine).
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// run follows link notifications; a periodic (and, after a lost notification, immediate)
// resync against the link list repairs anything missed.
func (f *FastPath) run(ctx context.Context, updates <-chan netlink.LinkUpdate, subErr <-chan error) {
	defer close(f.done)
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				f.log.Warn("link notifications ended; following links by periodic resync only")
				updates = nil
				continue
			}
			if u.Header.Type == unix.RTM_DELLINK {
				f.forget(u.Attrs().Index)
				continue
			}
			f.converge(u.Link)
		case err := <-subErr:
			f.log.Warn("link notifications lost; resyncing", "err", err)
			f.resync()
		case <-tick.C:
			f.resync()
		}
	}
}

// resync converges every link and forgets attachments whose link is gone.
func (f *FastPath) resync() {
	links, err := f.nl.LinkList()
	if err != nil {
		f.log.Warn("list links failed", "err", err)
		return
	}
	present := map[int]bool{}
	for _, l := range links {
		present[l.Attrs().Index] = true
		f.converge(l)
	}
	f.mu.Lock()
	var gone []int
	for idx := range f.attached {
		if !present[idx] {
			gone = append(gone, idx)
		}
	}
	f.mu.Unlock()
	for _, idx := range gone {
		f.forget(idx)
	}
}

// kindOf says which program a link gets: pod veths by their alias, cloud interfaces by MAC.
func (f *FastPath) kindOf(l netlink.Link) uint8 {
	a := l.Attrs()
	if l.Type() == "veth" && strings.HasPrefix(a.Alias, PodAliasPrefix) {
		return kindPod
	}
	if f.cloudMACs[a.HardwareAddr.String()] && a.MasterIndex == 0 && l.Type() != "vlan" {
		return kindCloud
	}
	return 0
}

// converge attaches the program l should have, or detaches it if l should have none.
func (f *FastPath) converge(l netlink.Link) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	idx := l.Attrs().Index
	want := f.kindOf(l)
	have := f.attached[idx]
	if have != nil && have.kind == want {
		return
	}
	if have != nil {
		f.detachLocked(idx, have)
	}
	if want == 0 {
		return
	}
	if err := f.attachLocked(idx, l.Attrs().Name, want); err != nil {
		f.log.Warn("attach failed; this link's traffic takes the node's stack", "link", l.Attrs().Name, "err", err)
	}
}

func (f *FastPath) attachLocked(idx int, name string, kind uint8) error {
	prog := f.objs.FromPod
	if kind == kindCloud {
		prog = f.objs.FromCloud
	}
	var lk link.Link
	err := f.netns.Do(func(ns.NetNS) error {
		var err error
		lk, err = link.AttachTCX(link.TCXOptions{Interface: idx, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	})
	if err != nil {
		return fmt.Errorf("tcx ingress on %s: %w", name, err)
	}
	if err := f.objs.Links.Put(uint32(idx), kind); err != nil {
		_ = lk.Close()
		return fmt.Errorf("record %s in the links map: %w", name, err)
	}
	f.attached[idx] = &attachment{kind: kind, name: name, link: lk}
	f.log.Debug("attached", "link", name, "ifindex", idx, "kind", kindName(kind))
	return nil
}

func (f *FastPath) detachLocked(idx int, a *attachment) {
	if err := f.objs.Links.Delete(uint32(idx)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		f.log.Warn("remove from the links map failed", "link", a.name, "err", err)
	}
	if err := a.link.Close(); err != nil {
		f.log.Debug("detach", "link", a.name, "err", err)
	}
	delete(f.attached, idx)
}

func (f *FastPath) forget(idx int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := f.attached[idx]; a != nil {
		f.detachLocked(idx, a)
	}
}

func kindName(k uint8) string {
	switch k {
	case kindPod:
		return "pod"
	case kindCloud:
		return "cloud"
	}
	return "none"
}

// AttachCloud marks l as a cloud interface of the node whose own address is ip (by MAC, so the
// link watch recognises it again after a resync) and attaches from_cloud to it. Calling it again
// is a no-op.
func (f *FastPath) AttachCloud(l netlink.Link, ip netip.Addr) error {
	if ip.Is4() {
		if err := f.objs.NodeAddrs.Put(be32(ip), uint8(1)); err != nil {
			return fmt.Errorf("fastpath: record node address %s: %w", ip, err)
		}
	}
	f.mu.Lock()
	f.cloudMACs[l.Attrs().HardwareAddr.String()] = true
	f.mu.Unlock()
	f.converge(l)
	return nil
}

// Stats is what the fast path has done since it was loaded.
type Stats struct {
	// PodLinks and CloudLinks count the links with a program attached.
	PodLinks   int `json:"podLinks"`
	CloudLinks int `json:"cloudLinks"`
	// Packets counts packets by verdict: "to_pod", "to_cloud" and "resolving_neighbour" (sent
	// on through the neighbour subsystem while the next hop's MAC is resolved) were forwarded by
	// the fast path; every other verdict names why a packet went on to the node's stack.
	Packets map[string]uint64 `json:"packets"`
}

// Stats sums the per-CPU counters.
func (f *FastPath) Stats() (Stats, error) {
	s := Stats{Packets: make(map[string]uint64, len(verdictNames))}
	f.mu.Lock()
	for _, a := range f.attached {
		if a.kind == kindPod {
			s.PodLinks++
		} else {
			s.CloudLinks++
		}
	}
	f.mu.Unlock()
	for i, name := range verdictNames {
		var perCPU []uint64
		if err := f.objs.Verdicts.Lookup(uint32(i), &perCPU); err != nil {
			return s, fmt.Errorf("fastpath: read counter %s: %w", name, err)
		}
		var sum uint64
		for _, n := range perCPU {
			sum += n
		}
		s.Packets[name] = sum
	}
	return s, nil
}

// Verdicts lists the counter names Stats reports, in a fixed order.
func Verdicts() []string { return slices.Clone(verdictNames) }

// Close detaches every program and unloads them; traffic takes the node's stack again.
func (f *FastPath) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	<-f.done
	f.mu.Lock()
	for idx, a := range f.attached {
		f.detachLocked(idx, a)
	}
	f.mu.Unlock()
	f.nl.Close()
	err := f.objs.Close()
	f.closeNS()
	return err
}
