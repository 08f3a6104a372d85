package nodenet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// logBuf records what a Node logs: every change is logged, so an empty log means no change.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

func labConfig(l *lab) Config {
	return Config{
		VPCCIDRs:       []netip.Prefix{vpcCIDR},
		PrimaryIP:      nodeIP,
		SNATExclusions: []netip.Prefix{excludedCIDR},
		NetNS:          l.node.Path(),
	}
}

func newNode(t *testing.T, cfg Config) (*Node, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n, logs
}

var (
	iface0 = Interface{DeviceIndex: 0, MAC: mac0, PrimaryIP: nodeIP, SubnetCIDR: subnet0, Gateway: gw0}
	iface1 = Interface{DeviceIndex: 1, MAC: mac1, PrimaryIP: eth1IP, SubnetCIDR: subnet1, Gateway: gw1, MTU: 1400}
)

// converge runs what ipamd runs on start.
func converge(t *testing.T, n *Node) {
	t.Helper()
	ctx := context.Background()
	must(t, "EnsureBase", n.EnsureBase(ctx))
	must(t, "EnsureInterface 0", n.EnsureInterface(ctx, iface0))
	must(t, "EnsureInterface 1", n.EnsureInterface(ctx, iface1))
}

func snapshot(t *testing.T, n *Node) Snapshot {
	t.Helper()
	s, err := n.State(context.Background())
	must(t, "State", err)
	return s
}

func TestEnsureIdempotent(t *testing.T) {
	l := newLab(t)
	n, logs := newNode(t, labConfig(l))
	converge(t, n)
	if logs.take() == "" {
		t.Fatal("first run logged no change; it should have programmed everything")
	}
	want := Snapshot{
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2",
			"net.ipv4.conf.default.rp_filter": "2", "net.ipv4.conf.eth1.rp_filter": "2"},
		SNAT: &SNATState{Table: "ip flatnet", NoSNAT: pfx("10.0.0.0/16", "198.18.0.0/24"), Rules: map[string][]string{
			"prerouting":  {"flatnet: mark 0x80 on traffic leaving the VPC"},
			"postrouting": {"flatnet: snat marked (0x80) traffic leaving the VPC to 10.0.0.10"},
		}},
		Rules: []RuleState{{Priority: PrioritySNATToMain, Mark: 0x80, Table: unix.RT_TABLE_MAIN},
			{Priority: PriorityInterface, From: netip.PrefixFrom(eth1IP, 32), Table: 101}},
		Tables: []TableState{{ID: 101, Routes: []RouteState{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw1, Link: "eth1"},
			{Dst: subnet1, Src: eth1IP, Link: "eth1"},
		}}},
	}
	first := snapshot(t, n)
	if diff := cmp.Diff(want, first, cmpAddrs); diff != "" {
		t.Errorf("state after first run (-want +got):\n%s", diff)
	}
	ruleset := nftRuleset(t, l.node, true)
	nh := handle(t, l.node)
	ipRules, err := nh.RuleList(unix.AF_INET)
	must(t, "rule list", err)

	converge(t, n)
	// A restarted ipamd is a new Node on the same namespace.
	n2, logs2 := newNode(t, labConfig(l))
	converge(t, n2)
	if got := logs.take() + logs2.take(); got != "" {
		t.Errorf("second and third runs changed something:\n%s", got)
	}
	if diff := cmp.Diff(ruleset, nftRuleset(t, l.node, true)); diff != "" {
		t.Errorf("nft ruleset changed (-before +after):\n%s", diff)
	}
	ipRules2, err := nh.RuleList(unix.AF_INET)
	must(t, "rule list", err)
	if diff := cmp.Diff(ipRules, ipRules2); diff != "" {
		t.Errorf("ip rules changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(first, snapshot(t, n2), cmpAddrs); diff != "" {
		t.Errorf("state changed (-before +after):\n%s", diff)
	}
	link, err := nh.LinkByName("eth1")
	must(t, "eth1", err)
	if link.Attrs().MTU != 1400 || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth1: MTU %d flags %v; want MTU 1400 and up", link.Attrs().MTU, link.Attrs().Flags)
	}
}

var cmpAddrs = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func TestSNAT(t *testing.T) {
	l := newLab(t)
	pod0 := l.addPod(t, pod0IP, 0)
	pod1 := l.addPod(t, pod1IP, 101)
	n, _ := newNode(t, labConfig(l))
	converge(t, n)
	for _, tc := range []struct {
		name     string
		pod      string
		dst      netip.Addr
		wantFrom netip.Addr
	}{
		{"pod on eth0 to internet is SNATed", "pod0", internetIP, nodeIP},
		{"pod on eth1 to internet is SNATed and leaves eth0", "pod1", internetIP, nodeIP},
		{"pod on eth0 to VPC keeps its source", "pod0", vpcPeerIP, pod0IP},
		{"pod on eth1 to VPC keeps its source and leaves eth1", "pod1", vpcPeerIP, pod1IP},
		{"pod on eth1 to an exclusion keeps its source", "pod1", excludedIP, pod1IP},
		{"pod on eth0 to an exclusion keeps its source", "pod0", excludedIP, pod0IP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := map[string]ns.NetNS{"pod0": pod0, "pod1": pod1}[tc.pod]
			if got := sourceSeen(t, p, netip.Addr{}, tc.dst); got != tc.wantFrom.String() {
				t.Errorf("server saw %s, want %s", got, tc.wantFrom)
			}
		})
	}

	t.Run("off switch", func(t *testing.T) {
		cfg := labConfig(l)
		cfg.ExternalSNAT = true
		off, _ := newNode(t, cfg)
		converge(t, off)
		s := snapshot(t, off)
		if s.SNAT != nil || len(s.Rules) != 1 || s.Rules[0].Priority != PriorityInterface {
			t.Fatalf("SNAT off still shows table %+v or rules %+v", s.SNAT, s.Rules)
		}
		if got := sourceSeen(t, pod1, netip.Addr{}, internetIP); got != pod1IP.String() {
			t.Errorf("pod1 to internet with SNAT off: server saw %s, want %s", got, pod1IP)
		}
		if got := sourceSeen(t, pod0, netip.Addr{}, internetIP); got != pod0IP.String() {
			t.Errorf("pod0 to internet with SNAT off: server saw %s, want %s", got, pod0IP)
		}
	})
}

func TestSecondaryInterfaceOwnTraffic(t *testing.T) {
	l := newLab(t)
	n, _ := newNode(t, labConfig(l))
	must(t, "EnsureBase", n.EnsureBase(context.Background()))
	// Before: the node's traffic from eth1's address follows main out of eth0, and the
	// router's source check drops it.
	if _, err := dial(context.Background(), l.node, eth1IP, internetIP); err == nil {
		t.Fatal("traffic from eth1's address got through before EnsureInterface; the lab's source check is not working")
	}
	must(t, "EnsureInterface", n.EnsureInterface(context.Background(), iface1))
	if got := sourceSeen(t, l.node, eth1IP, internetIP); got != eth1IP.String() {
		t.Errorf("server saw %s, want %s (no SNAT of the node's own traffic)", got, eth1IP)
	}
	if got := sourceSeen(t, l.node, netip.Addr{}, internetIP); got != nodeIP.String() {
		t.Errorf("node default traffic: server saw %s, want %s", got, nodeIP)
	}
	nh := handle(t, l.node)
	routes, err := nh.RouteGetWithOptions(internetIP.AsSlice(), &netlink.RouteGetOptions{SrcAddr: eth1IP.AsSlice()})
	must(t, "route get", err)
	if len(routes) != 1 || routes[0].LinkIndex != linkIndex(t, nh, "eth1") {
		t.Errorf("route from %s to %s: %+v, want via eth1", eth1IP, internetIP, routes)
	}
}

func TestEnsureInterfaceByMAC(t *testing.T) {
	l := newLab(t)
	nh := handle(t, l.node)
	// A link name that says nothing: found by MAC, not by name.
	link, err := nh.LinkByName("eth1")
	must(t, "eth1", err)
	must(t, "down", nh.LinkSetDown(link))
	must(t, "rename", nh.LinkSetName(link, "ens7"))
	n, _ := newNode(t, labConfig(l))
	must(t, "EnsureInterface", n.EnsureInterface(context.Background(), iface1))
	s := snapshot(t, n)
	if len(s.Tables) != 1 || s.Tables[0].ID != 101 || s.Tables[0].Routes[0].Link != "ens7" {
		t.Errorf("tables: %+v, want table 101 through ens7", s.Tables)
	}
	link, err = nh.LinkByName("ens7")
	must(t, "ens7", err)
	if link.Attrs().OperState != netlink.OperUp && link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("ens7 not up: %+v", link.Attrs().Flags)
	}

	bad := iface1
	bad.MAC = append(bad.MAC[:5:5], 0x99)
	if err := n.EnsureInterface(context.Background(), bad); !errors.Is(err, ErrLinkNotFound) {
		t.Errorf("unknown MAC: err %v, want ErrLinkNotFound", err)
	}
}

// TestRestartKeepsFlows: established connections, SNATed or not, survive a restarted ipamd
// converging again, also when the exclusion set changed while it was down.
func TestRestartKeepsFlows(t *testing.T) {
	l := newLab(t)
	pod0 := l.addPod(t, pod0IP, 0)
	pod1 := l.addPod(t, pod1IP, 101)
	n, _ := newNode(t, labConfig(l))
	converge(t, n)
	ctx := context.Background()
	flows := map[string]*conn{}
	for name, f := range map[string]struct {
		pod ns.NetNS
		dst netip.Addr
	}{"pod1-internet": {pod1, internetIP}, "pod0-internet": {pod0, internetIP}, "pod1-vpc": {pod1, vpcPeerIP}} {
		c, err := dial(ctx, f.pod, netip.Addr{}, f.dst)
		must(t, "dial "+name, err)
		t.Cleanup(func() { _ = c.c.Close() })
		flows[name] = c
	}
	must(t, "close first node", n.Close())

	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		// tamper runs in the node before the restart. It must not remove the snat rule: the
		// nat expression is what holds conntrack on in a namespace with no other user, and a
		// packet of a SNATed flow sent while conntrack is off (a delayed ACK) leaves unNATed
		// and draws a reset. nodenet itself only ever swaps rules inside one transaction.
		tamper string
	}{
		{"same config", func(*Config) {}, ""},
		{"exclusion added", func(c *Config) { c.SNATExclusions = append(c.SNATExclusions, netip.MustParsePrefix("192.0.2.0/24")) }, ""},
		{"mark changed: both chains' rules swapped", func(c *Config) { c.Mark = 0x100 }, ""},
		{"back to the original", func(*Config) {}, ""},
		{"table of the wrong shape is replaced", func(*Config) {}, "nft 'add chain ip flatnet stray { type filter hook forward priority 0; }'"},
	} {
		if tc.tamper != "" {
			out, err := exec.Command("ip", "netns", "exec", filepath.Base(l.node.Path()), "sh", "-ec", tc.tamper).CombinedOutput()
			must(t, "tamper: "+string(out), err)
		}
		cfg := labConfig(l)
		tc.mutate(&cfg)
		n, logs := newNode(t, cfg)
		converge(t, n)
		if tc.tamper != "" && !strings.Contains(logs.take(), "plan=replace") {
			t.Errorf("%s: the table was not replaced", tc.name)
		}
		for name, c := range flows {
			if err := c.echo(tc.name); err != nil {
				t.Errorf("%s: flow %s broke: %v", tc.name, name, err)
			}
		}
		must(t, "close", n.Close())
	}
	if got := flows["pod1-internet"].Source; got != nodeIP.String() {
		t.Errorf("pod1-internet flow source %s, want %s", got, nodeIP)
	}
}

func TestRemoveInterfaceAndCleanup(t *testing.T) {
	l := newLab(t)
	nh := handle(t, l.node)
	before := kernelRouting(t, nh)
	n, _ := newNode(t, labConfig(l))
	converge(t, n)
	// A pod rule pointing at table 101, as the plugin leaves it.
	r := netlink.NewRule()
	r.Priority, r.Src, r.Table = PriorityInterface, prefixToIPNet(netip.PrefixFrom(pod1IP, 32)), 101
	must(t, "pod rule", nh.RuleAdd(r))

	must(t, "RemoveInterface", n.RemoveInterface(context.Background(), 1))
	must(t, "RemoveInterface again", n.RemoveInterface(context.Background(), 1))
	s := snapshot(t, n)
	if len(s.Tables) != 0 || len(s.Rules) != 1 || s.Rules[0].Priority != PrioritySNATToMain {
		t.Errorf("after RemoveInterface: tables %+v rules %+v; want no tables, only the SNAT rule", s.Tables, s.Rules)
	}
	for _, r := range kernelRouting(t, nh).rules {
		if strings.Contains(r, "table 101") {
			t.Errorf("rule still points at table 101: %s", r)
		}
	}

	converge(t, n)
	must(t, "Cleanup", n.Cleanup(context.Background()))
	must(t, "Cleanup again", n.Cleanup(context.Background()))
	if diff := cmp.Diff(before, kernelRouting(t, nh), cmp.AllowUnexported(routingDump{})); diff != "" {
		t.Errorf("Cleanup left something behind (-before +after):\n%s", diff)
	}
	if rs := nftRuleset(t, l.node, true); strings.TrimSpace(rs) != "" {
		t.Errorf("nft ruleset after Cleanup:\n%s", rs)
	}
}

// routingDump is every IPv4 rule and every route of every table except local, as text.
type routingDump struct{ rules, routes []string }

func kernelRouting(t *testing.T, h *netlink.Handle) routingDump {
	t.Helper()
	var d routingDump
	rules, err := h.RuleList(unix.AF_INET)
	must(t, "rules", err)
	for _, r := range rules {
		d.rules = append(d.rules, ruleKey(r))
	}
	routes, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{}, netlink.RT_FILTER_TABLE)
	must(t, "routes", err)
	for _, r := range routes {
		if r.Table != unix.RT_TABLE_LOCAL {
			d.routes = append(d.routes, routeKey(r))
		}
	}
	return d
}

func TestValidation(t *testing.T) {
	good := Config{VPCCIDRs: pfx("10.0.0.0/16"), PrimaryIP: nodeIP}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"no VPC CIDRs", func(c *Config) { c.VPCCIDRs = nil }},
		{"IPv6 CIDR", func(c *Config) { c.VPCCIDRs = pfx("fd00::/64") }},
		{"no primary IP", func(c *Config) { c.PrimaryIP = netip.Addr{} }},
		{"bad MTU", func(c *Config) { c.MTU = 70000 }},
		{"table base hits main", func(c *Config) { c.TableBase = 200 }},
		{"mark of two bits", func(c *Config) { c.Mark = 0x180 }},
		{"netns that does not exist", func(c *Config) { c.NetNS = "/nonexistent/netns" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted it")
			} else if tc.name != "netns that does not exist" && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Interface)
	}{
		{"negative index", func(i *Interface) { i.DeviceIndex = -1 }},
		{"short MAC", func(i *Interface) { i.MAC = i.MAC[:3] }},
		{"IP outside subnet", func(i *Interface) { i.PrimaryIP = nodeIP }},
		{"gateway outside subnet", func(i *Interface) { i.Gateway = gw0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := iface1
			tc.mutate(&in)
			if err := in.validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestConvergesDrift: whatever someone changed by hand is put back by the next run.
func TestConvergesDrift(t *testing.T) {
	l := newLab(t)
	n, _ := newNode(t, labConfig(l))
	converge(t, n)
	want := snapshot(t, n)
	wantRuleset := nftRuleset(t, l.node, false)
	for _, tc := range []struct {
		name string
		cmd  string
	}{
		{"chain priority changed, postrouting gone", "nft delete chain ip flatnet postrouting; nft delete chain ip flatnet prerouting; nft add chain ip flatnet prerouting '{ type filter hook prerouting priority 0; }'"},
		{"snat rule flushed", "nft flush chain ip flatnet postrouting"},
		{"extra rule in prerouting", "nft add rule ip flatnet prerouting counter"},
		{"exclusion deleted", "nft delete element ip flatnet nosnat { 198.18.0.0/24 }"},
		{"table deleted", "nft delete table ip flatnet"},
		{"default route gone, stray route added", "ip route del default table 101; ip route add 10.9.0.0/16 via 10.0.1.1 dev eth1 table 101 proto 70"},
		{"gateway changed", "ip route replace default via 10.0.1.5 dev eth1 table 101 proto 70"},
		{"rules deleted", "ip rule del priority 1024; ip rule del priority 1536"},
		{"sysctls reset", "echo 0 > /proc/sys/net/ipv4/ip_forward; echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter; echo 0 > /proc/sys/net/ipv4/conf/eth1/rp_filter"},
		{"eth1 down with another MTU", "ip link set eth1 down mtu 1500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("ip", "netns", "exec", filepath.Base(l.node.Path()), "sh", "-ec", tc.cmd).CombinedOutput()
			must(t, "tamper: "+string(out), err)
			converge(t, n)
			if diff := cmp.Diff(want, snapshot(t, n), cmpAddrs); diff != "" {
				t.Errorf("not converged (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRuleset, nftRuleset(t, l.node, false)); diff != "" {
				t.Errorf("nft ruleset not converged (-want +got):\n%s", diff)
			}
			link, err := handle(t, l.node).LinkByName("eth1")
			must(t, "eth1", err)
			if link.Attrs().MTU != 1400 || link.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("eth1 MTU %d flags %v", link.Attrs().MTU, link.Attrs().Flags)
			}
		})
	}
}

// TestClusterIPFromSecondaryInterface: kube-proxy DNATs a pod's connection to a ClusterIP to a
// backend inside the VPC. The SNAT mark must follow the translated destination: a pod on a
// secondary interface then keeps its table's route out of eth1; marked on the ClusterIP (outside
// the VPC), it would leave through eth0 with eth1's source, and the router's source check (like
// the cloud's) would drop it.
func TestClusterIPFromSecondaryInterface(t *testing.T) {
	l := newLab(t)
	n, _ := newNode(t, labConfig(l))
	converge(t, n)
	pod1 := l.addPod(t, pod1IP, n.RouteTable(1))
	ruleset := fmt.Sprintf(`table ip kubeproxy {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.96.0.1 tcp dport 80 dnat to %s:%d
	}
}`, vpcPeerIP, serverPort)
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(l.node.Path()), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	c, err := dialPort(context.Background(), pod1, pod1IP, netip.MustParseAddr("10.96.0.1"), 80)
	if err != nil {
		t.Fatalf("pod on eth1 -> ClusterIP -> backend in the VPC: %v", err)
	}
	defer c.c.Close()
	if c.Source != pod1IP.String() {
		t.Fatalf("backend saw %s, want the pod's own %s (no SNAT inside the VPC)", c.Source, pod1IP)
	}
	if err := c.echo("through the ClusterIP"); err != nil {
		t.Fatal(err)
	}
}
