package nodenet

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/flatnet/flatnet/ipamd/wire"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The lab: namespaces made by the test only, never the root namespace's links or routes.
//
//	pod netns ──veth── node netns ──eth0/eth1 (veths)── router netns ──veth── inet netns
//
// The router stands in for the VPC fabric: it owns the gateways, delivers node and pod
// addresses with permanent neighbour entries, and enforces the source/destination check with
// strict rp_filter (a packet whose source is not routed back through the port it came in on
// is dropped). The inet namespace holds an "internet" address, a VPC address of another
// subnet, and an address inside a SNAT exclusion.
var (
	vpcCIDR      = netip.MustParsePrefix("10.0.0.0/16")
	subnet0      = netip.MustParsePrefix("10.0.0.0/24")
	subnet1      = netip.MustParsePrefix("10.0.1.0/24")
	gw0          = netip.MustParseAddr("10.0.0.1")
	gw1          = netip.MustParseAddr("10.0.1.1")
	nodeIP       = netip.MustParseAddr("10.0.0.10")
	eth1IP       = netip.MustParseAddr("10.0.1.20")
	pod0IP       = netip.MustParseAddr("10.0.0.50") // on eth0: main table
	pod1IP       = netip.MustParseAddr("10.0.1.60") // on eth1: table 101
	internetIP   = netip.MustParseAddr("203.0.113.10")
	vpcPeerIP    = netip.MustParseAddr("10.0.2.10")
	excludedCIDR = netip.MustParsePrefix("198.18.0.0/24")
	excludedIP   = netip.MustParseAddr("198.18.0.10")
	mac0, _      = net.ParseMAC("02:fc:00:00:00:10")
	mac1, _      = net.ParseMAC("02:fc:00:00:00:11")
)

const serverPort uint16 = 7070

type lab struct {
	node, router, inet ns.NetNS
	server             *sourceServer
}

// requirePrivileged fails (never skips) with what to do when the test cannot run.
func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("nodenet tests create network namespaces: run them as root (CI does, via .ci/run)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("the nft command is needed to compare rulesets: apt-get install nftables")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the ip command is needed for ip netns exec: apt-get install iproute2")
	}
}

func newNetNS(t *testing.T) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = n.Close()
		_ = testutils.UnmountNS(n)
	})
	return n
}

func handle(t *testing.T, n ns.NetNS) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(vnetns.NsHandle(n.Fd()))
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", n.Path(), err)
	}
	t.Cleanup(h.Close)
	return h
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newLab builds the topology and starts the source-reporting server in inet.
func newLab(t *testing.T) *lab {
	t.Helper()
	requirePrivileged(t)
	l := &lab{node: newNetNS(t), router: newNetNS(t), inet: newNetNS(t)}
	rh, nh, ih := handle(t, l.router), handle(t, l.node), handle(t, l.inet)
	for _, h := range []*netlink.Handle{rh, nh, ih} {
		lo, err := h.LinkByName("lo")
		must(t, "find lo", err)
		must(t, "lo up", h.LinkSetUp(lo))
	}
	veth(t, rh, "r0", l.node, "eth0", mac0)
	veth(t, rh, "r1", l.node, "eth1", mac1)
	veth(t, rh, "ri", l.inet, "ei", nil)
	l.setupRouter(t, rh)
	l.setupNode(t, nh)
	l.setupInet(t, ih)
	l.server = startServer(t, l.inet)
	return l
}

// veth creates a pair from inside the router (or node) namespace with its peer already in
// peerNS, so no link ever exists in the root namespace.
func veth(t *testing.T, h *netlink.Handle, name string, peerNS ns.NetNS, peer string, peerMAC net.HardwareAddr) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer,
		PeerNamespace: netlink.NsFd(int(peerNS.Fd())), PeerHardwareAddr: peerMAC}
	must(t, "create veth "+name+"/"+peer, h.LinkAdd(v))
	l, err := h.LinkByName(name)
	must(t, "find "+name, err)
	must(t, "up "+name, h.LinkSetUp(l))
	ph := handle(t, peerNS)
	p, err := ph.LinkByName(peer)
	must(t, "find "+peer, err)
	must(t, "up "+peer, ph.LinkSetUp(p))
}

func addAddr(t *testing.T, h *netlink.Handle, link string, p netip.Prefix, flags int) {
	t.Helper()
	l, err := h.LinkByName(link)
	must(t, "find "+link, err)
	must(t, fmt.Sprintf("address %s on %s", p, link), h.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(p), Flags: flags}))
}

func addRoute(t *testing.T, h *netlink.Handle, r *netlink.Route) {
	t.Helper()
	must(t, "route "+r.String(), h.RouteAdd(r))
}

func linkIndex(t *testing.T, h *netlink.Handle, name string) int {
	t.Helper()
	l, err := h.LinkByName(name)
	must(t, "find "+name, err)
	return l.Attrs().Index
}

func (l *lab) setupRouter(t *testing.T, h *netlink.Handle) {
	addAddr(t, h, "r0", netip.PrefixFrom(gw0, 24), 0)
	addAddr(t, h, "r1", netip.PrefixFrom(gw1, 24), 0)
	addAddr(t, h, "ri", netip.MustParsePrefix("203.0.113.1/24"), 0)
	for _, dst := range []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24"), excludedCIDR} {
		addRoute(t, h, &netlink.Route{Dst: prefixToIPNet(dst), Gw: internetIP.AsSlice()})
	}
	// Delivery without ARP, like the fabric: node and pod addresses to the port they live on.
	for link, m := range map[string]struct {
		mac   net.HardwareAddr
		addrs []netip.Addr
	}{"r0": {mac0, []netip.Addr{nodeIP, pod0IP}}, "r1": {mac1, []netip.Addr{eth1IP, pod1IP}}} {
		for _, a := range m.addrs {
			must(t, "neighbour "+a.String(), h.NeighSet(&netlink.Neigh{LinkIndex: linkIndex(t, h, link),
				Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: a.AsSlice(), HardwareAddr: m.mac}))
		}
	}
	must(t, "router sysctls", setSysctls(l.router, map[string]string{
		"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "1",
		"net/ipv4/conf/r0/rp_filter": "1", "net/ipv4/conf/r1/rp_filter": "1", "net/ipv4/conf/ri/rp_filter": "1",
	}))
}

// setupNode gives the node the shape fakecloud's fabric gives it: eth0 with the primary IP and
// the default route, eth1 up with its primary IP as /32 noprefixroute and no routes.
func (l *lab) setupNode(t *testing.T, h *netlink.Handle) {
	addAddr(t, h, "eth0", netip.PrefixFrom(nodeIP, 24), 0)
	addAddr(t, h, "eth1", netip.PrefixFrom(eth1IP, 32), unix.IFA_F_NOPREFIXROUTE)
	addRoute(t, h, &netlink.Route{Dst: prefixToIPNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: gw0.AsSlice(),
		LinkIndex: linkIndex(t, h, "eth0")})
}

func (l *lab) setupInet(t *testing.T, h *netlink.Handle) {
	addAddr(t, h, "ei", netip.PrefixFrom(internetIP, 24), 0)
	addAddr(t, h, "lo", netip.PrefixFrom(vpcPeerIP, 32), 0)
	addAddr(t, h, "lo", netip.PrefixFrom(excludedIP, 32), 0)
	addRoute(t, h, &netlink.Route{Dst: prefixToIPNet(netip.MustParsePrefix("0.0.0.0/0")),
		Gw: netip.MustParseAddr("203.0.113.1").AsSlice(), LinkIndex: linkIndex(t, h, "ei")})
}

func setSysctls(n ns.NetNS, kv map[string]string) error {
	return n.Do(func(ns.NetNS) error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// addPod wires a pod the way the CNI plugin does (docs/architecture.md#pod-datapath): /32 on the pod's
// eth0, default via 169.254.1.1 with a permanent neighbour, a host route in main, and for a
// pod on a secondary interface the to/from rules.
func (l *lab) addPod(t *testing.T, ip netip.Addr, table int) ns.NetNS {
	t.Helper()
	pod := newNetNS(t)
	ph, nh := handle(t, pod), handle(t, l.node)
	hostName := fmt.Sprintf("vp%x", ip.As4()[3])
	veth(t, nh, hostName, pod, "eth0", nil)
	host, err := nh.LinkByName(hostName)
	must(t, "find host veth", err)
	lo, err := ph.LinkByName("lo")
	must(t, "pod lo", err)
	must(t, "pod lo up", ph.LinkSetUp(lo))
	eth0, err := ph.LinkByName("eth0")
	must(t, "pod eth0", err)
	must(t, "pod eth0 up", ph.LinkSetUp(eth0))
	addAddr(t, ph, "eth0", netip.PrefixFrom(ip, 32), 0)
	linkLocal := net.IPv4(169, 254, 1, 1)
	addRoute(t, ph, &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: &net.IPNet{IP: linkLocal, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK})
	addRoute(t, ph, &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: linkLocal, Flags: int(netlink.FLAG_ONLINK)})
	must(t, "pod neighbour", ph.NeighSet(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, Family: unix.AF_INET,
		State: netlink.NUD_PERMANENT, IP: linkLocal, HardwareAddr: host.Attrs().HardwareAddr}))
	addRoute(t, nh, &netlink.Route{LinkIndex: host.Attrs().Index, Dst: prefixToIPNet(netip.PrefixFrom(ip, 32)), Scope: netlink.SCOPE_LINK})
	if table != 0 {
		to := netlink.NewRule()
		to.Priority, to.Dst, to.Table = wire.PriorityToPod, prefixToIPNet(netip.PrefixFrom(ip, 32)), unix.RT_TABLE_MAIN
		from := netlink.NewRule()
		from.Priority, from.Src, from.Table = wire.PriorityFromPod, prefixToIPNet(netip.PrefixFrom(ip, 32)), table
		must(t, "pod to-rule", nh.RuleAdd(to))
		must(t, "pod from-rule", nh.RuleAdd(from))
	}
	return pod
}

// sourceServer answers each TCP connection with the source address it sees, then echoes lines.
type sourceServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startServer(t *testing.T, n ns.NetNS) *sourceServer {
	t.Helper()
	s := &sourceServer{}
	must(t, "listen in inet", n.Do(func(ns.NetNS) error {
		var err error
		s.ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", serverPort))
		return err
	}))
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *sourceServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go func() {
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			r := bufio.NewScanner(c)
			for r.Scan() {
				fmt.Fprintf(c, "echo %s\n", r.Text())
			}
		}()
	}
}

func (s *sourceServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// conn is a client connection made inside a namespace.
type conn struct {
	c  net.Conn
	rd *bufio.Reader
	// Source is the address the server saw.
	Source string
}

// dial connects from inside n (optionally from a local address) to dst's server port and reads
// the source the server saw.
func dial(ctx context.Context, n ns.NetNS, local, dst netip.Addr) (*conn, error) {
	return dialPort(ctx, n, local, dst, serverPort)
}

// dialPort is dial to another port (one a DNAT rule maps to a server).
func dialPort(ctx context.Context, n ns.NetNS, local, dst netip.Addr, port uint16) (*conn, error) {
	var c net.Conn
	err := n.Do(func(ns.NetNS) error {
		d := net.Dialer{Timeout: 2 * time.Second}
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		var err error
		c, err = d.DialContext(ctx, "tcp4", netip.AddrPortFrom(dst, port).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %v: %w", dst, local, err)
	}
	cc := &conn{c: c, rd: bufio.NewReader(c)}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := cc.rd.ReadString('\n')
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("read source from %s: %w", dst, err)
	}
	cc.Source = strings.TrimSpace(line)
	return cc, nil
}

// echo proves the connection still carries data both ways.
func (c *conn) echo(msg string) error {
	_ = c.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c.c, "%s\n", msg); err != nil {
		return err
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(line); got != "echo "+msg {
		return fmt.Errorf("echo: got %q", got)
	}
	return nil
}

// sourceSeen dials once and returns the source address the server saw.
func sourceSeen(t *testing.T, n ns.NetNS, local, dst netip.Addr) string {
	t.Helper()
	c, err := dial(context.Background(), n, local, dst)
	if err != nil {
		t.Fatalf("%v", err)
	}
	_ = c.c.Close()
	return c.Source
}

// nftRuleset is `nft list ruleset` inside n; with handles, a rule re-created with the same text
// still shows as a difference.
func nftRuleset(t *testing.T, n ns.NetNS, handles bool) string {
	t.Helper()
	args := []string{"netns", "exec", filepath.Base(n.Path()), "nft", "list", "ruleset"}
	if handles {
		args = []string{"netns", "exec", filepath.Base(n.Path()), "nft", "-a", "list", "ruleset"}
	}
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset in %s: %v\n%s", n.Path(), err, out)
	}
	return string(out)
}
