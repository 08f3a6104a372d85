package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// The lab benchmarks answer acceptance 4 of the lab issue: pod-to-pod across nodes through the
// fabric against node-to-node and against a kernel VXLAN overlay between the same two nodes, in
// one lab; and the time 100 pods take to get addresses from an empty pool with 50 ms of cloud
// latency. Each benchmark has its own prefix and port, so that it never meets a test's lab.

// benchConfig is testConfig for a benchmark: its own directory, prefix and a free loopback
// port (port is the preference, as in testConfig). The lab's log is dropped: benchmark logs
// are always printed.
func benchConfig(b *testing.B, prefix string, port int) Config {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		b.Fatalf("find a free loopback port: %v", err)
	}
	defer ln.Close()
	return Config{
		Dir: filepath.Join(b.TempDir(), "lab"), Prefix: fmt.Sprintf("%s%x-", strings.TrimSuffix(prefix, "-"), os.Getpid()&0xffff), BinDir: binDir,
		Listen: ln.Addr().String(), Log: io.Discard,
	}
}

// upBench is Up, tried twice. Up can lose a race with the fabric: waitNodeNamespaces sees a
// node's namespace file, which the fabric creates a moment before it bind-mounts the
// namespace on it, and ipamd then fails to enter it ("unknown FS magic"). Up cleans up after
// itself, so a second try starts from nothing.
func upBench(ctx context.Context, b *testing.B, cfg Config) *Lab {
	b.Helper()
	l, err := Up(ctx, cfg)
	if err != nil {
		b.Logf("lab up failed, trying once more: %v", err)
		l, err = Up(ctx, cfg)
	}
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// rootNetFingerprint is a cheap version of readRootNet for benchmarks: the root namespace's
// links, addresses and main-table routes, which the lab must leave as they were.
func rootNetFingerprint(b *testing.B) string {
	b.Helper()
	var parts []string
	links, err := netlink.LinkList()
	if err != nil {
		b.Fatalf("list root links: %v", err)
	}
	for _, l := range links {
		parts = append(parts, "link "+l.Attrs().Name)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		b.Fatalf("list root addresses: %v", err)
	}
	for _, a := range addrs {
		parts = append(parts, fmt.Sprintf("addr %d %s", a.LinkIndex, a.IPNet))
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		b.Fatalf("list root routes: %v", err)
	}
	for _, r := range routes {
		parts = append(parts, fmt.Sprintf("route %v gw %v dev %d", r.Dst, r.Gw, r.LinkIndex))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\n")
}

func guardRootNetBench(b *testing.B) {
	before := rootNetFingerprint(b)
	b.Cleanup(func() {
		if after := rootNetFingerprint(b); after != before {
			b.Errorf("the benchmark changed the root network namespace:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// Traffic: a small request/response protocol and a bulk sink, served by goroutines of this
// process whose sockets were opened inside the lab namespaces.
const (
	benchPort   = 5201
	rttSize     = 64        // bytes of one request and of its answer
	bulkBufSize = 256 << 10 // bytes per write and per read of a bulk transfer
	modeRTT     = 'L'
	modeBulk    = 'T'
)

// netPath is one way across the two nodes: a client namespace and a server address inside
// another namespace.
type netPath struct {
	name   string
	client string // namespace
	server string // namespace
	addr   string // ip:port the server listens on
	ln     net.Listener
}

// listen starts the path's server inside its namespace.
func (p *netPath) listen() error {
	return inNetns(p.server, func() error {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("listen on %s in %s: %w", p.addr, p.server, err)
		}
		p.ln = ln
		go serveBench(ln)
		return nil
	})
}

func serveBench(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			switch mode[0] {
			case modeRTT:
				buf := make([]byte, rttSize)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			case modeBulk:
				buf := make([]byte, bulkBufSize)
				var n uint64
				for {
					k, err := c.Read(buf)
					n += uint64(k)
					if err != nil {
						break
					}
				}
				_, _ = c.Write(binary.BigEndian.AppendUint64(nil, n))
			}
		}()
	}
}

func (p *netPath) dial(ctx context.Context, mode byte) (net.Conn, error) {
	c, err := Dialer(p.client, nil)(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s from %s: %w", p.name, p.addr, p.client, err)
	}
	if _, err := c.Write([]byte{mode}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// roundTrips times n round trips on c, appending each duration to out.
func roundTrips(c net.Conn, n int, out []time.Duration) ([]time.Duration, error) {
	buf := make([]byte, rttSize)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return out, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return out, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// bulk sends size bytes over a fresh connection and returns the time until the receiver
// confirmed it got them all.
func (p *netPath) bulk(ctx context.Context, size int64) (time.Duration, error) {
	c, err := p.dial(ctx, modeBulk)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, bulkBufSize)
	t0 := time.Now()
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			return 0, fmt.Errorf("%s: send: %w", p.name, err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, fmt.Errorf("%s: no acknowledgement from the receiver: %w", p.name, err)
	}
	d := time.Since(t0)
	if got := int64(binary.BigEndian.Uint64(ack[:])); got < size {
		return 0, fmt.Errorf("%s: the receiver got %d of %d bytes", p.name, got, size)
	}
	return d, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Overlay: a Flannel-style VXLAN network between two lab nodes, built from kernel vxlan links
// in the node namespaces (VNI 42, UDP 4789, remote = the other node's primary IP, MTU = underlay
// MTU - 50), link addresses in 192.168.77.0/24, and per node an "overlay pod" namespace on a
// veth with a /24 of its own (192.168.101.0/24, 192.168.102.0/24) routed over the tunnel. The
// same shape as a pod of the fabric: one veth pair on each side, plus the encapsulation.
const (
	vxlanName  = "flb-vx42"
	vxlanVNI   = 42
	vxlanPort  = 4789
	ovHostLink = "flb-ovh"
	ovPodLink  = "flb-ovp"
	ovSNATSkip = "192.168.0.0/16" // the overlay's addresses are not SNATed by ipamd
)

type overlay struct {
	nodes []Node
	pods  []string // namespaces
}

func ovLinkIP(i int) string { return fmt.Sprintf("192.168.77.%d", i+1) }
func ovGwIP(i int) string   { return fmt.Sprintf("192.168.%d.1", 101+i) }
func ovPodIP(i int) string  { return fmt.Sprintf("192.168.%d.2", 101+i) }
func ovPodNet(i int) string { return fmt.Sprintf("192.168.%d.0/24", 101+i) }

func mustCIDR(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

// upOverlay builds the overlay between nodes[0] and nodes[1]; prefix names the pods.
func upOverlay(nodes []Node, prefix string) (*overlay, error) {
	o := &overlay{nodes: nodes}
	for i := range nodes {
		name := fmt.Sprintf("%sp-ov-%d", prefix, i+1)
		if err := netns.Create(name); err != nil {
			return o, err
		}
		o.pods = append(o.pods, name)
		if err := o.wire(i); err != nil {
			return o, fmt.Errorf("overlay on %s: %w", nodes[i].Name, err)
		}
	}
	return o, nil
}

// wire sets up node i's side: vxlan link, veth to its overlay pod, routes.
func (o *overlay) wire(i int) error {
	n, peer := o.nodes[i], o.nodes[1-i]
	mtu := 0
	err := inNetns(n.Netns, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		mtu = eth0.Attrs().MTU - 50
		// Link attributes as the CNI plugin gives its veths (kernel defaults but name and MTU).
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = vxlanName, mtu
		vx := &netlink.Vxlan{
			LinkAttrs: attrs,
			VxlanId:   vxlanVNI, VtepDevIndex: eth0.Attrs().Index, Port: vxlanPort,
			SrcAddr: net.ParseIP(n.PrimaryIP), Group: net.ParseIP(peer.PrimaryIP),
		}
		if err := netlink.LinkAdd(vx); err != nil {
			return fmt.Errorf("add %s: %w", vxlanName, err)
		}
		if err := addrUp(vxlanName, ovLinkIP(i)+"/24"); err != nil {
			return err
		}
		attrs = netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = ovHostLink, mtu
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ovPodLink}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add %s: %w", ovHostLink, err)
		}
		podEnd, err := netlink.LinkByName(ovPodLink)
		if err != nil {
			return err
		}
		h, err := vnetns.GetFromName(o.pods[i])
		if err != nil {
			return err
		}
		defer h.Close()
		if err := netlink.LinkSetNsFd(podEnd, int(h)); err != nil {
			return err
		}
		if err := addrUp(ovHostLink, ovGwIP(i)+"/24"); err != nil {
			return err
		}
		vxl, err := netlink.LinkByName(vxlanName)
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: vxl.Attrs().Index, Dst: mustCIDR(ovPodNet(1 - i)),
			Gw: net.ParseIP(ovLinkIP(1 - i)), Flags: int(netlink.FLAG_ONLINK)})
	})
	if err != nil {
		return err
	}
	return inNetns(o.pods[i], func() error {
		if err := addrUp(ovPodLink, ovPodIP(i)+"/24"); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{Dst: mustCIDR("0.0.0.0/0"), Gw: net.ParseIP(ovGwIP(i))})
	})
}

// addrUp gives the link in the current namespace an address and brings it up.
func addrUp(link, cidr string) error {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", cidr, link, err)
	}
	return netlink.LinkSetUp(l)
}

// down removes what upOverlay made (Down would too, with the node namespaces).
func (o *overlay) down() error {
	var errs []error
	for _, n := range o.nodes {
		errs = append(errs, inNetns(n.Netns, func() error {
			for _, name := range []string{vxlanName, ovHostLink} {
				if l, err := netlink.LinkByName(name); err == nil {
					if err := netlink.LinkDel(l); err != nil {
						return fmt.Errorf("delete %s: %w", name, err)
					}
				}
			}
			return nil
		}))
	}
	for _, p := range o.pods {
		errs = append(errs, netns.Delete(p))
	}
	return errors.Join(errs...)
}

// BenchmarkPodNetwork: one 2-node lab (m5.large), four ways from node-1 to node-2 measured
// side by side: pod to pod through the fabric (ipamd's BPF fast path forwarding in both
// nodes), node to node (primary IPs), overlay pod to overlay pod through a kernel VXLAN tunnel
// between the same nodes, and pod to pod with the nodes' IP stack forwarding (two more pods
// whose host veths the fast path is told to leave alone, so the same nodes show what it
// saves). The paths are interleaved (rounds of each in turn) so that load from elsewhere on the
// machine hits all of them alike.
//
// The same runs again in a second lab whose ipamds run with --fast-path off: there no BPF
// program sits on the nodes' interfaces, so its node-to-node figure is the baseline untouched by
// flatnet, and its pod path is the kernel's forwarding alone.
func BenchmarkPodNetwork(b *testing.B) {
	guardRootNetBench(b)
	b.Run("fast-path-on", func(b *testing.B) { benchPodNetwork(b, "on") })
	b.Run("fast-path-off", func(b *testing.B) { benchPodNetwork(b, "off") })
}

func benchPodNetwork(b *testing.B, fastPath string) {
	cfg := benchConfig(b, "flb-", 7483)
	cfg.Nodes, cfg.InstanceType = 2, "m5.large"
	cfg.IpamdArgs = []string{"--snat-exclusions", ovSNATSkip, "--fast-path", fastPath}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l := upBench(ctx, b, cfg)
	b.Cleanup(func() {
		if err := Down(cfg.Dir, cfg.Prefix, io.Discard); err != nil {
			b.Errorf("down: %v", err)
		}
	})
	podA, err := l.AddPod(ctx, "bench-a", "node-1")
	if err != nil {
		b.Fatal(err)
	}
	podB, err := l.AddPod(ctx, "bench-b", "node-2")
	if err != nil {
		b.Fatal(err)
	}
	podC, err := l.AddPod(ctx, "bench-c", "node-1")
	if err != nil {
		b.Fatal(err)
	}
	podD, err := l.AddPod(ctx, "bench-d", "node-2")
	if err != nil {
		b.Fatal(err)
	}
	nodes := l.State().Nodes
	if fastPath != "off" {
		for _, p := range []*Pod{&podC, &podD} {
			restore, err := hideFromFastPath(l, p)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(restore)
		}
	}
	ov, err := upOverlay(nodes, cfg.Prefix)
	b.Cleanup(func() {
		if err := ov.down(); err != nil {
			b.Errorf("remove the overlay: %v", err)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	port := strconv.Itoa(benchPort)
	paths := []*netPath{
		{name: "pod", client: podA.Netns, server: podB.Netns, addr: net.JoinHostPort(podB.IP, port)},
		{name: "node", client: nodes[0].Netns, server: nodes[1].Netns, addr: net.JoinHostPort(nodes[1].PrimaryIP, port)},
		{name: "overlay", client: ov.pods[0], server: ov.pods[1], addr: net.JoinHostPort(ovPodIP(1), port)},
		{name: "pod-stack", client: podC.Netns, server: podD.Netns, addr: net.JoinHostPort(podD.IP, port)},
	}
	for _, p := range paths {
		if err := p.listen(); err != nil {
			b.Fatal(err)
		}
		defer p.ln.Close()
	}
	b.Logf("pod %s -> %s; node %s -> %s; overlay %s -> %s (VNI %d, MTU underlay-50); pod-stack %s -> %s",
		podA.IP, podB.IP, nodes[0].PrimaryIP, nodes[1].PrimaryIP, ovPodIP(0), ovPodIP(1), vxlanVNI, podC.IP, podD.IP)
	b.Run("latency", func(b *testing.B) { benchLatency(ctx, b, paths) })
	b.Run("throughput", func(b *testing.B) { benchThroughput(ctx, b, paths) })
}

// benchLatency: per iteration, 12,000 round trips of 64 bytes per path over one connection
// each, in 6 interleaved rounds of 2,000 (odd rounds in reverse order). Reports p50/p99 per
// path over every round trip of the run, and the pod/node and overlay/node ratios (latency:
// lower is better, 1/0.95 = 1.053 is the target's bound).
func benchLatency(ctx context.Context, b *testing.B, paths []*netPath) {
	const rounds, perRound, warmup = 6, 2000, 200
	samples := make([][]time.Duration, len(paths))
	for range b.N {
		conns := make([]net.Conn, len(paths))
		for i, p := range paths {
			c, err := p.dial(ctx, modeRTT)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := roundTrips(c, warmup, nil); err != nil {
				b.Fatalf("%s: %v", p.name, err)
			}
			conns[i] = c
		}
		for r := range rounds {
			for k := range paths {
				i := inRoundOrder(r, k, len(paths))
				p := paths[i]
				var err error
				if samples[i], err = roundTrips(conns[i], perRound, samples[i]); err != nil {
					b.Fatalf("%s: %v", p.name, err)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
	p50 := make([]float64, len(paths))
	for i, p := range paths {
		p50[i] = micros(percentile(samples[i], 0.50))
		b.ReportMetric(p50[i], p.name+"-p50-us")
		b.ReportMetric(micros(percentile(samples[i], 0.99)), p.name+"-p99-us")
	}
	b.ReportMetric(p50[0]/p50[1], "pod/node-p50")
	b.ReportMetric(p50[2]/p50[1], "overlay/node-p50")
	b.ReportMetric(p50[3]/p50[1], "pod-stack/node-p50")
}

// benchThroughput: per iteration, 16 interleaved rounds of one 128 MiB transfer per path, each
// on a fresh connection, odd rounds in reverse order, timed until the receiver confirms the
// last byte. Reports Gbit/s per path (all bytes over all time) and the pod/node and overlay/node ratios (higher is better,
// the target is pod/node >= 0.95). The ratios are the median of the per-round ratios: the
// rounds of a path follow each other within a second, so load from elsewhere on the machine
// moves both sides of a round's ratio and the median drops the rounds it hit unevenly.
func benchThroughput(ctx context.Context, b *testing.B, paths []*netPath) {
	const rounds, size = 16, 128 << 20
	spent := make([]time.Duration, len(paths))
	var podNode, overlayNode, stackNode []float64
	for range b.N {
		for r := range rounds {
			round := make([]time.Duration, len(paths))
			for k := range paths {
				i := inRoundOrder(r, k, len(paths))
				p := paths[i]
				d, err := p.bulk(ctx, size)
				if err != nil {
					b.Fatal(err)
				}
				spent[i] += d
				round[i] = d
			}
			// Same bytes on every path: the throughput ratio is the inverse time ratio.
			podNode = append(podNode, round[1].Seconds()/round[0].Seconds())
			overlayNode = append(overlayNode, round[1].Seconds()/round[2].Seconds())
			stackNode = append(stackNode, round[1].Seconds()/round[3].Seconds())
		}
	}
	for i, p := range paths {
		b.ReportMetric(float64(size*rounds*b.N)*8/spent[i].Seconds()/1e9, p.name+"-Gbit/s")
	}
	b.ReportMetric(median(podNode), "pod/node")
	b.ReportMetric(median(overlayNode), "overlay/node")
	b.ReportMetric(median(stackNode), "pod-stack/node")
}

// inRoundOrder is the path measured k-th in round r: odd rounds run the paths in reverse, so
// that no path always goes first (the first one after a switch measured slower).
func inRoundOrder(r, k, n int) int {
	if r%2 == 1 {
		return n - 1 - k
	}
	return k
}

// hideFromFastPath clears the alias of p's host veth, which is how the fast path recognises a
// pod veth: it detaches from it and no longer forwards to it, so p's traffic is forwarded by
// its node's IP stack. restore puts the alias back (the CNI plugin's DEL and GC read it).
func hideFromFastPath(l *Lab, p *Pod) (restore func(), err error) {
	l.mu.Lock()
	node := l.node(p.Node)
	l.mu.Unlock()
	if node == nil {
		return nil, fmt.Errorf("pod %s: no node %s", p.Name, p.Node)
	}
	var host netlink.Link
	var alias string
	err = inNetns(node.Netns, func() error {
		routes, err := netlink.RouteGet(net.ParseIP(p.IP))
		if err != nil {
			return fmt.Errorf("route to pod %s (%s) in %s: %w", p.Name, p.IP, node.Netns, err)
		}
		if len(routes) == 0 {
			return fmt.Errorf("no route to pod %s (%s) in %s", p.Name, p.IP, node.Netns)
		}
		if host, err = netlink.LinkByIndex(routes[0].LinkIndex); err != nil {
			return err
		}
		alias = host.Attrs().Alias
		if !strings.HasPrefix(alias, "flatnet/") {
			return fmt.Errorf("pod %s: host veth %s has alias %q, not the CNI plugin's", p.Name, host.Attrs().Name, alias)
		}
		return netlink.LinkSetAlias(host, "")
	})
	if err != nil {
		return nil, err
	}
	return func() {
		_ = inNetns(node.Netns, func() error { return netlink.LinkSetAlias(host, alias) })
	}, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkPodsFromEmptyPool: a fresh single-node lab (m5.4xlarge: room for 232 pods) whose
// ipamd keeps no warm pool (warm-low 0, warm-high 0), 50 ms added to every cloud call, then 100
// pods created 20 at a time as a kubelet would (namespace + CNI ADD through libcni, retried on
// failure). ns/op is the wall time until all 100 have addresses; also reported: the per-pod ADD
// p50/p99, the cloud calls made (fakecloud's requests counter) and the retries needed. The same
// with no added latency shows how much of the time is the cloud's.
func BenchmarkPodsFromEmptyPool(b *testing.B) {
	guardRootNetBench(b)
	b.Run("cloud-50ms", func(b *testing.B) { benchEmptyPool(b, 50) })
	b.Run("cloud-0ms", func(b *testing.B) { benchEmptyPool(b, 0) })
}

func benchEmptyPool(b *testing.B, latencyMillis int) {
	const pods, inFlight = 100, 20
	var adds []time.Duration
	var calls, cloudErrs, retries int
	for range b.N {
		b.StopTimer()
		cfg := benchConfig(b, "flp-", 7484)
		cfg.Nodes, cfg.InstanceType = 1, "m5.4xlarge"
		cfg.IpamdArgs = []string{"--warm-low", "0", "--warm-high", "0"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(func() { _ = Down(cfg.Dir, cfg.Prefix, io.Discard) })
		l := upBench(ctx, b, cfg)
		if err := l.ensureCNIBin(); err != nil {
			b.Fatal(err)
		}
		if latencyMillis > 0 {
			fault := api.Fault{Action: "*", LatencyMillis: latencyMillis}
			if _, err := l.Cloud().SetFault(ctx, &api.SetFaultRequest{Fault: fault}); err != nil {
				b.Fatal(err)
			}
		}
		before, err := cloudRequests(ctx, cfg.Listen)
		if err != nil {
			b.Fatal(err)
		}
		node := l.State().Nodes[0]
		var mu sync.Mutex
		sem := make(chan struct{}, inFlight)
		var wg sync.WaitGroup
		var failed []error
		b.StartTimer()
		for i := range pods {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				t0 := time.Now()
				n, err := addPodNetwork(ctx, l, node, fmt.Sprintf("burst-%d", i))
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				adds, retries = append(adds, d), retries+n
				if err != nil {
					failed = append(failed, err)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		after, err := cloudRequests(ctx, cfg.Listen)
		if err != nil {
			b.Fatal(err)
		}
		var byAction []string
		errs := after[cloudErrors] - before[cloudErrors]
		cloudErrs += errs
		delete(after, cloudErrors)
		for action, n := range after {
			if d := n - before[action]; d > 0 {
				calls += d
				byAction = append(byAction, fmt.Sprintf("%s %d", action, d))
			}
		}
		slices.Sort(byAction)
		b.Logf("cloud calls for %d pods: %s; %d answered with an error", pods, strings.Join(byAction, ", "), errs)
		if err := Down(cfg.Dir, cfg.Prefix, io.Discard); err != nil {
			b.Fatalf("down: %v", err)
		}
		cancel()
		if len(failed) > 0 {
			b.Fatalf("%d of %d pods got no address: %v", len(failed), pods, errors.Join(failed...))
		}
	}
	b.ReportMetric(float64(percentile(adds, 0.50))/1e6, "add-p50-ms")
	b.ReportMetric(float64(percentile(adds, 0.99))/1e6, "add-p99-ms")
	b.ReportMetric(float64(calls)/float64(b.N), "cloud-calls")
	b.ReportMetric(float64(cloudErrs)/float64(b.N), "cloud-errors")
	b.ReportMetric(float64(retries)/float64(b.N), "retries")
}

// addPodNetwork is what a runtime does for a pod before starting it: a namespace and CNI ADD
// on the node, retried (as the kubelet retries a failed sandbox) until it gets an address. It
// returns the retries needed. No process is started: the benchmark times addresses, not agents.
func addPodNetwork(ctx context.Context, l *Lab, n Node, name string) (int, error) {
	p := Pod{Name: name, Node: n.Name, Netns: l.st.Config.Prefix + "p-" + name, ContainerID: "bench-" + name}
	if err := netns.Create(p.Netns); err != nil {
		return 0, err
	}
	var last error
	for try := range 5 {
		err := l.cni(n, func(cn *libcni.CNIConfig, conf *libcni.NetworkConfigList) error {
			r, err := cn.AddNetworkList(ctx, conf, l.runtimeConf(p))
			if err != nil {
				return err
			}
			res, err := types100.NewResultFromResult(r)
			if err == nil && len(res.IPs) == 0 {
				err = errors.New("the plugin returned no address")
			}
			return err
		})
		if err == nil {
			return try, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return try, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 4, fmt.Errorf("pod %s: %w", name, last)
}

// cloudErrors is cloudRequests' key for requests answered with an error code.
const cloudErrors = "error"

// cloudRequests reads fakecloud's fakecloud_requests_total, summed over answer codes, by
// action, from its /metrics on loopback; requests answered with an error code (throttling
// included) are also counted under "error".
func cloudRequests(ctx context.Context, listen string) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read fakecloud's metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "fakecloud_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		action, code := "", ""
		for _, kv := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(kv, `action="`); ok {
				action = strings.TrimSuffix(v, `"`)
			}
			if v, ok := strings.CutPrefix(kv, `code="`); ok {
				code = strings.TrimSuffix(v, `"`)
			}
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("fakecloud metric %q: %w", sc.Text(), err)
		}
		out[action] += int(f)
		if code != "OK" {
			out[cloudErrors] += int(f)
		}
	}
	return out, sc.Err()
}
