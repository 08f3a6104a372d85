package nodenet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/flatnet/flatnet/ipamd/nodenet/fastpath"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fastLab is the nodenet lab with the fast path on and two pods whose host veths carry the CNI
// plugin's alias (what the fast path recognises pod veths by).
type fastLab struct {
	*lab
	n          *Node
	pod0, pod1 ns.NetNS
}

func newFastLab(t *testing.T) *fastLab {
	t.Helper()
	l := newLab(t)
	cfg := labConfig(l)
	cfg.FastPath = FastPathOn
	n, _ := newNode(t, cfg)
	converge(t, n)
	f := &fastLab{lab: l, n: n}
	f.pod0 = l.addPod(t, pod0IP, 0)
	f.pod1 = l.addPod(t, pod1IP, n.RouteTable(1))
	nh := handle(t, l.node)
	for _, ip := range []netip.Addr{pod0IP, pod1IP} {
		host, err := nh.LinkByName(fmt.Sprintf("vp%x", ip.As4()[3]))
		must(t, "find host veth", err)
		must(t, "alias", nh.LinkSetAlias(host, fastpath.PodAliasPrefix+"test/"+ip.String()+"/eth0"))
	}
	f.waitLinks(t, 2, 2)
	return f
}

// waitLinks waits until the fast path has attached to pods pod veths and cloud cloud interfaces.
func (f *fastLab) waitLinks(t *testing.T, pods, cloud int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, ok := f.n.FastPathStats()
		if !ok {
			t.Fatal("the fast path is not running")
		}
		if s.PodLinks == pods && s.CloudLinks == cloud {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fast path attached to %d pod veths and %d cloud interfaces, want %d and %d", s.PodLinks, s.CloudLinks, pods, cloud)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fastLab) packets(t *testing.T) map[string]uint64 {
	t.Helper()
	s, ok := f.n.FastPathStats()
	if !ok {
		t.Fatal("the fast path is not running")
	}
	return s.Packets
}

// exchange opens a connection from pod (bound to src) to dst's server port, checks the source
// the server saw, and echoes rounds lines over it.
func exchange(t *testing.T, pod ns.NetNS, src, dst netip.Addr, wantSource netip.Addr, rounds int) {
	t.Helper()
	exchangePort(t, pod, src, dst, serverPort, wantSource, rounds)
}

// exchangePort is exchange to another port (one a DNAT rule maps to a server).
func exchangePort(t *testing.T, pod ns.NetNS, src, dst netip.Addr, port uint16, wantSource netip.Addr, rounds int) {
	t.Helper()
	c, err := dialPort(context.Background(), pod, src, dst, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.c.Close()
	if c.Source != wantSource.String() {
		t.Fatalf("%s -> %s:%d: server saw source %s, want %s", src, dst, port, c.Source, wantSource)
	}
	for i := range rounds {
		if err := c.echo(fmt.Sprintf("round %d", i)); err != nil {
			t.Fatalf("%s -> %s:%d: %v", src, dst, port, err)
		}
	}
}

func delta(before, after map[string]uint64, k string) uint64 { return after[k] - before[k] }

// TestFastPathForwardsInsideTheVPC: pod traffic to a VPC address is forwarded by the fast path
// both ways (pod -> cloud interface, cloud interface -> pod), through the interface the policy
// rules choose, with the pod's own address; traffic leaving the VPC still takes the stack and
// is SNATed.
func TestFastPathForwardsInsideTheVPC(t *testing.T) {
	f := newFastLab(t)
	// The first flows find no neighbour entries on the node (the gateway's, the pods'): the
	// neighbour subsystem resolves them while the fast path keeps the flow out of the stack.
	before := f.packets(t)
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 1)
	exchange(t, f.pod1, pod1IP, vpcPeerIP, pod1IP, 1)
	after := f.packets(t)
	if delta(before, after, "resolving_neighbour") == 0 || delta(before, after, "conntrack") != 0 {
		t.Errorf("first flows: resolving_neighbour +%d, conntrack +%d; want their first packets sent on through neighbour resolution and none left to the stack; counters %v -> %v",
			delta(before, after, "resolving_neighbour"), delta(before, after, "conntrack"), before, after)
	}

	const rounds = 50
	for _, pod := range []struct {
		name  string
		netns ns.NetNS
		ip    netip.Addr
	}{{"pod0 (primary interface)", f.pod0, pod0IP}, {"pod1 (secondary interface, table 101)", f.pod1, pod1IP}} {
		before := f.packets(t)
		exchange(t, pod.netns, pod.ip, vpcPeerIP, pod.ip, rounds)
		after := f.packets(t)
		if delta(before, after, "to_cloud") < rounds || delta(before, after, "to_pod") < rounds {
			t.Errorf("%s: %d round trips moved %d packets to the cloud and %d to the pod on the fast path, want at least %d each; counters %v -> %v",
				pod.name, rounds, delta(before, after, "to_cloud"), delta(before, after, "to_pod"), rounds, before, after)
		}
		if d := delta(before, after, "conntrack"); d != 0 {
			t.Errorf("%s: %d packets of a fresh in-VPC flow were found in conntrack; the fast path should have kept it out", pod.name, d)
		}
	}

	before = f.packets(t)
	exchange(t, f.pod0, pod0IP, internetIP, nodeIP, 5)
	after = f.packets(t)
	if delta(before, after, "outside_vpc") == 0 || delta(before, after, "to_cloud") != 0 {
		t.Errorf("internet-bound flow: outside_vpc +%d, to_cloud +%d; want it all on the stack (SNAT)",
			delta(before, after, "outside_vpc"), delta(before, after, "to_cloud"))
	}
}

// TestFastPathLeavesNATToTheStack: flows with a NAT binding in the node (kube-proxy's ClusterIP
// DNAT, a NodePort/hostPort DNAT to a pod) keep working with the fast path on: their packets
// are found in conntrack and left to the stack, which reverses the translation. Without that
// check the replies would bypass the un-NAT and the connections would fail.
func TestFastPathLeavesNATToTheStack(t *testing.T) {
	f := newFastLab(t)
	startServer(t, f.pod0) // the NodePort backend
	const clusterIP = "10.96.0.1"
	ruleset := fmt.Sprintf(`table ip fptest {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s tcp dport 80 dnat to %s:%d
		ip daddr %s tcp dport %d dnat to %s:%d
	}
}`, clusterIP, vpcPeerIP, serverPort, nodeIP, serverPort, pod0IP, serverPort)
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(f.node.Path()), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s", err, out)
	}
	// Warm the neighbours so that NAT flows are not on the stack merely for want of one.
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 1)

	before := f.packets(t)
	// ClusterIP: pod0 -> 10.96.0.1:80, DNATed to the peer; the peer's replies come in on eth0.
	exchangePort(t, f.pod0, pod0IP, netip.MustParseAddr(clusterIP), 80, pod0IP, 10)
	// NodePort: the peer -> node:7070, DNATed to pod0; pod0's replies go through from_pod.
	exchange(t, f.inet, vpcPeerIP, nodeIP, vpcPeerIP, 10)
	after := f.packets(t)
	if d := delta(before, after, "conntrack"); d < 20 {
		t.Errorf("NAT flows: %d packets left to the stack for their conntrack entry, want at least 20; counters %v -> %v", d, before, after)
	}
	if d := delta(before, after, "for_node"); d < 10 {
		t.Errorf("NodePort flow: %d packets for the node's own address recognised as such, want at least 10", d)
	}
}

// TestFastPathCloseDetaches: closing the node removes every program from every link, and the
// pods' traffic carries on through the stack.
func TestFastPathCloseDetaches(t *testing.T) {
	f := newFastLab(t)
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 1)
	must(t, "Close", f.n.Close())
	nh := handle(t, f.node)
	links, err := nh.LinkList()
	must(t, "list links", err)
	err = f.node.Do(func(ns.NetNS) error {
		for _, l := range links {
			res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress})
			if err != nil {
				return fmt.Errorf("query tcx on %s: %w", l.Attrs().Name, err)
			}
			if len(res.Programs) != 0 {
				return fmt.Errorf("%s still has %d tcx programs after Close", l.Attrs().Name, len(res.Programs))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 3)
	exchange(t, f.pod1, pod1IP, vpcPeerIP, pod1IP, 3)
}

// TestFastPathFollowsLinks: the fast path follows pod veths as they come and go: a veth that
// loses the CNI plugin's alias is left to the stack (and keeps working), a deleted one is
// forgotten, and one that appears later is attached.
func TestFastPathFollowsLinks(t *testing.T) {
	f := newFastLab(t)
	nh := handle(t, f.node)
	host0, err := nh.LinkByName(fmt.Sprintf("vp%x", pod0IP.As4()[3]))
	must(t, "find pod0's host veth", err)
	must(t, "clear alias", nh.LinkSetAlias(host0, ""))
	f.waitLinks(t, 1, 2)
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 1) // neighbours
	before := f.packets(t)
	exchange(t, f.pod0, pod0IP, vpcPeerIP, pod0IP, 20)
	after := f.packets(t)
	if d := delta(before, after, "to_pod"); d != 0 {
		t.Errorf("%d packets went to a veth without the alias on the fast path", d)
	}
	if d := delta(before, after, "other_device"); d < 20 {
		t.Errorf("replies to the pod without the alias: %d left to the stack as other_device, want at least 20", d)
	}

	host1, err := nh.LinkByName(fmt.Sprintf("vp%x", pod1IP.As4()[3]))
	must(t, "find pod1's host veth", err)
	must(t, "delete pod1's veth", nh.LinkDel(host1))
	f.waitLinks(t, 0, 2)

	const lateIP = "10.0.0.51"
	late := f.addPod(t, netip.MustParseAddr(lateIP), 0)
	hostLate, err := nh.LinkByName(fmt.Sprintf("vp%x", netip.MustParseAddr(lateIP).As4()[3]))
	must(t, "find the late pod's host veth", err)
	must(t, "alias", nh.LinkSetAlias(hostLate, fastpath.PodAliasPrefix+"test/late/eth0"))
	f.waitLinks(t, 1, 2)
	// The router delivers the late pod's address like the others.
	rh := handle(t, f.router)
	must(t, "router neighbour", rh.NeighSet(&netlink.Neigh{LinkIndex: linkIndex(t, rh, "r0"), Family: unix.AF_INET,
		State: netlink.NUD_PERMANENT, IP: net.ParseIP(lateIP), HardwareAddr: mac0}))
	exchange(t, late, netip.MustParseAddr(lateIP), vpcPeerIP, netip.MustParseAddr(lateIP), 1)
	before = f.packets(t)
	exchange(t, late, netip.MustParseAddr(lateIP), vpcPeerIP, netip.MustParseAddr(lateIP), 20)
	after = f.packets(t)
	if delta(before, after, "to_pod") < 20 || delta(before, after, "to_cloud") < 20 {
		t.Errorf("late pod: to_pod +%d, to_cloud +%d, want at least 20 each", delta(before, after, "to_pod"), delta(before, after, "to_cloud"))
	}
}
