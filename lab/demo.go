package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// DemoOptions configures Demo.
type DemoOptions struct {
	Dir    string
	BinDir string
	Keep   bool // leave the lab running
	Out    io.Writer
	// Kubernetes runs the cluster part (default in flatnet-lab demo): a control plane, a node
	// agent per node, and the proofs through Kubernetes objects. K8sBinDir and
	// APIServerListen as in Config.
	Kubernetes      bool
	K8sBinDir       string
	APIServerListen string
	// Cloud is Config.Cloud: CloudFakecloud (default) or CloudAWSAPI.
	Cloud string
}

// spoofAddr is an address of the VPC that no interface holds.
const spoofAddr = "10.0.15.250"

type demo struct {
	l   *Lab
	out io.Writer
	ctx context.Context
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n==> "+format+"\n", args...)
}

func (d *demo) ok(format string, args ...any) {
	fmt.Fprintf(d.out, "  ok  "+format+"\n", args...)
}

// Demo brings up a 3-node lab and shows, checking each, that pods get VPC addresses and reach
// each other without NAT, that nodes reach pods, that pods reach the internet through the
// node's SNAT, that the fabric drops a spoofed source, that the pool refills and that a second
// interface is attached when the first is full. Then it tears the lab down unless Keep.
func Demo(ctx context.Context, o DemoOptions) error {
	return demoRun(ctx, Config{Dir: o.Dir, BinDir: o.BinDir, Kubernetes: o.Kubernetes, K8sBinDir: o.K8sBinDir, APIServerListen: o.APIServerListen, Cloud: o.Cloud}, o)
}

// demoRun is Demo on a given lab configuration (tests choose the prefix and port).
func demoRun(ctx context.Context, cfg Config, o DemoOptions) (err error) {
	cfg.Nodes, cfg.InstanceType, cfg.Log = 3, "m5.large", o.Out
	l, err := Up(ctx, cfg)
	if err != nil {
		return err
	}
	if !o.Keep {
		defer func() {
			if derr := Down(cfg.Dir, cfg.Prefix, o.Out); derr != nil && err == nil {
				err = derr
			}
			fmt.Fprintln(o.Out, "\nlab torn down: no namespace, link or process left")
		}()
	}
	d := &demo{l: l, out: o.Out, ctx: ctx}
	for _, run := range []func() error{d.pods, d.podToPod, d.nodeToPod, d.internet, d.spoof, d.metadata, d.secondInterface, d.cluster} {
		if err := run(); err != nil {
			return err
		}
	}
	d.step("final state")
	if err := l.PrintStatus(ctx, o.Out); err != nil {
		return err
	}
	if o.Keep {
		fmt.Fprintf(o.Out, "\nthe lab keeps running: flatnet-lab --dir %s status | pod add NAME --node node-2 | down\n", o.Dir)
	}
	return nil
}

func (d *demo) pods() error {
	d.step("pods on every node get addresses of the VPC subnet %s from their node's ipamd", d.l.st.Config.SubnetCIDR)
	_, subnet, _ := net.ParseCIDR(d.l.st.Config.SubnetCIDR)
	for _, n := range d.l.State().Nodes {
		for i := 1; i <= 2; i++ {
			name := fmt.Sprintf("%s-pod-%d", n.Name, i)
			p, err := d.l.AddPod(d.ctx, name, n.Name)
			if err != nil {
				return err
			}
			if !subnet.Contains(net.ParseIP(p.IP)) {
				return fmt.Errorf("pod %s got %s, outside the subnet %s", name, p.IP, subnet)
			}
			d.ok("%-14s on %s (node IP %s) has %s", name, n.Name, n.PrimaryIP, p.IP)
		}
	}
	return nil
}

func (d *demo) probe(from, ip string, local net.IP) (*EchoReply, error) {
	ctx, cancel := context.WithTimeout(d.ctx, 3*time.Second)
	defer cancel()
	return Probe(ctx, from, ip, local, 3*time.Second)
}

func (d *demo) podToPod() error {
	d.step("pod to pod across nodes, no NAT: the receiver sees the sender's pod address")
	pods := d.l.State().Pods
	for i, src := range pods {
		dst := pods[(i+2)%len(pods)] // a pod on the next node
		r, err := d.probe(src.Netns, dst.IP, nil)
		if err != nil {
			return fmt.Errorf("%s (%s) -> %s (%s): %w", src.Name, src.IP, dst.Name, dst.IP, err)
		}
		if r.Remote != src.IP || r.Name != dst.Name {
			return fmt.Errorf("%s -> %s: answered by %s, which saw %s; want %s seeing %s", src.Name, dst.Name, r.Name, r.Remote, dst.Name, src.IP)
		}
		d.ok("%s (%s) -> %s (%s): %s saw %s", src.Name, src.IP, dst.Name, dst.IP, r.Name, r.Remote)
	}
	return d.fastPath()
}

// fastPath shows that the pod traffic above went through ipamd's BPF fast path, not the
// nodes' IP stacks (where the kernel cannot run it, ipamd says so and the stack forwards).
func (d *demo) fastPath() error {
	for _, n := range d.l.State().Nodes {
		fp, err := d.l.FastPath(d.ctx, n.Name)
		if err != nil {
			return err
		}
		if !fp.Running {
			d.ok("%s: no BPF fast path on this kernel (mode %s): the node's IP stack forwards its pods' traffic", n.Name, fp.Mode)
			continue
		}
		if fp.Packets["to_pod"] == 0 || fp.Forwarded() == 0 {
			return fmt.Errorf("%s: the fast path forwarded no packet to its pods: %v", n.Name, fp.Packets)
		}
		d.ok("%s: BPF fast path on %d pod veths: %d packets delivered to pods, %d sent to the VPC without the node's IP stack",
			n.Name, fp.PodLinks, fp.Packets["to_pod"], fp.Packets["to_cloud"]+fp.Packets["resolving_neighbour"])
	}
	return nil
}

func (d *demo) nodeToPod() error {
	d.step("node to pod: each node reaches a pod on another node")
	st := d.l.State()
	for i, n := range st.Nodes {
		dst := st.Pods[((i+1)%len(st.Nodes))*2]
		r, err := d.probe(n.Netns, dst.IP, nil)
		if err != nil {
			return fmt.Errorf("%s -> %s (%s): %w", n.Name, dst.Name, dst.IP, err)
		}
		if r.Remote != n.PrimaryIP {
			return fmt.Errorf("%s -> %s: seen as %s, want the node's address %s", n.Name, dst.Name, r.Remote, n.PrimaryIP)
		}
		d.ok("%s (%s) -> %s (%s): seen as %s", n.Name, n.PrimaryIP, dst.Name, dst.IP, r.Remote)
	}
	return nil
}

func (d *demo) internet() error {
	d.step("pod to internet (%s): SNATed by the node to its primary address", InternetAddr)
	st := d.l.State()
	for i, n := range st.Nodes {
		src := st.Pods[i*2]
		r, err := d.probe(src.Netns, InternetAddr, nil)
		if err != nil {
			return fmt.Errorf("%s -> internet: %w", src.Name, err)
		}
		if r.Remote != n.PrimaryIP {
			return fmt.Errorf("%s -> internet: seen as %s, want %s's address %s", src.Name, r.Remote, n.Name, n.PrimaryIP)
		}
		d.ok("%s (%s) -> %s: seen as %s, %s's address", src.Name, src.IP, InternetAddr, r.Remote, n.Name)
	}
	return nil
}

func (d *demo) spoof() error {
	st := d.l.State()
	n, dst := st.Nodes[0], st.Pods[2]
	d.step("source/destination check: %s sends from %s, an address it does not own; the fabric drops it", n.Name, spoofAddr)
	addr, _ := netlink.ParseAddr(spoofAddr + "/32")
	change := func(add bool) error {
		return inNetns(n.Netns, func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if add {
				return netlink.AddrAdd(lo, addr)
			}
			return netlink.AddrDel(lo, addr)
		})
	}
	if err := change(true); err != nil {
		return fmt.Errorf("configure %s on %s: %w", spoofAddr, n.Name, err)
	}
	defer func() { _ = change(false) }()
	if r, err := d.probe(n.Netns, dst.IP, net.ParseIP(spoofAddr)); err == nil {
		return fmt.Errorf("a packet from %s reached %s (answered by %s): the source check let it through", spoofAddr, dst.Name, r.Name)
	}
	d.ok("%s -> %s from %s: no answer (dropped by the VPC router)", n.Name, dst.Name, spoofAddr)
	if _, err := d.probe(n.Netns, dst.IP, net.ParseIP(n.PrimaryIP)); err != nil {
		return fmt.Errorf("%s -> %s from its own address: %w", n.Name, dst.Name, err)
	}
	d.ok("%s -> %s from its own %s: answered", n.Name, dst.Name, n.PrimaryIP)
	return nil
}

func (d *demo) metadata() error {
	st := d.l.State()
	n, p := st.Nodes[0], st.Pods[0]
	d.step("the metadata service gives %s its cloud token over an IMDSv2 session; %s, behind it, gets none", n.Name, p.Name)
	token, err := CloudTokenFrom(d.ctx, n.Netns)
	if err != nil {
		return fmt.Errorf("%s could not read its own cloud token: %w", n.Name, err)
	}
	if token == "" {
		return fmt.Errorf("%s read an empty cloud token", n.Name)
	}
	d.ok("%s: session opened, cloud token read (%d characters)", n.Name, len(token))
	_, err = CloudTokenFrom(d.ctx, p.Netns)
	if err == nil {
		return fmt.Errorf("pod %s read its node's cloud token", p.Name)
	}
	d.ok("%s: %v", p.Name, err)
	return nil
}

func (d *demo) interfaces(n Node) ([]api.NetworkInterface, error) {
	r, err := d.l.cloud.DescribeNetworkInterfaces(d.ctx, &api.DescribeNetworkInterfacesRequest{
		Filters: []api.Filter{{Name: "attachment.instance-id", Values: []string{n.InstanceID}}}})
	if err != nil {
		return nil, err
	}
	return r.NetworkInterfaces, nil
}

func (d *demo) secondInterface() error {
	// The node with the fewest interfaces (the last of them on a tie): with the chart, the
	// controller's pods hold addresses on some nodes, which may already have a second one.
	var n Node
	least := 0
	for _, cand := range d.l.State().Nodes {
		enis, err := d.interfaces(cand)
		if err != nil {
			return err
		}
		if least == 0 || len(enis) <= least {
			n, least = cand, len(enis)
		}
	}
	d.step("the pool refills as pods arrive on %s, and a second interface is attached once eth0's 9 secondary slots are used", n.Name)
	before, err := d.interfaces(n)
	if err != nil {
		return err
	}
	d.printPool(n, "before")
	for i := 3; i <= 12; i++ {
		if _, err := d.l.AddPod(d.ctx, fmt.Sprintf("%s-pod-%d", n.Name, i), n.Name); err != nil {
			return err
		}
		if i%3 == 0 {
			d.printPool(n, fmt.Sprintf("with %d pods", i))
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		after, err := d.interfaces(n)
		if err != nil {
			return err
		}
		if len(after) > len(before) && len(after) >= 2 {
			d.ok("%s now has %d interfaces (had %d): %s", n.Name, len(after), len(before), describeENIs(after))
			return d.secondaryPodReachable(n, after)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has %d interfaces with 12 pods: %s", n.Name, len(after), describeENIs(after))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *demo) printPool(n Node, when string) {
	s, err := d.l.Status(d.ctx, n.Name)
	if err != nil {
		fmt.Fprintf(d.out, "  pool %s: %v\n", when, err)
		return
	}
	fmt.Fprintf(d.out, "  pool %-12s free %d, assigned %d, capacity %d\n", when+":", s.Free, s.Assigned, s.Capacity)
}

// secondaryPodReachable shows that a pod whose address sits on a secondary interface (policy
// routing through that interface's table) reaches and is reached like any other.
func (d *demo) secondaryPodReachable(n Node, enis []api.NetworkInterface) error {
	device := map[string]int{}
	for _, e := range enis {
		for _, a := range e.PrivateIPAddresses {
			device[a.PrivateIPAddress] = e.Attachment.DeviceIndex
		}
	}
	st := d.l.State()
	for _, p := range st.Pods {
		dev, ok := device[p.IP]
		if p.Node != n.Name || !ok || dev == 0 {
			continue
		}
		peer := st.Pods[0]
		r, err := d.probe(p.Netns, peer.IP, nil)
		if err := seen(r, err, p.IP); err != nil {
			return fmt.Errorf("%s (%s, on eth%d) -> %s: %w", p.Name, p.IP, dev, peer.Name, err)
		}
		d.ok("%s (%s, on eth%d) -> %s (%s): %s saw %s", p.Name, p.IP, dev, peer.Name, peer.IP, r.Name, r.Remote)
		r, err = d.probe(peer.Netns, p.IP, nil)
		if err := seen(r, err, peer.IP); err != nil {
			return fmt.Errorf("%s -> %s (%s, on eth%d): %w", peer.Name, p.Name, p.IP, dev, err)
		}
		d.ok("%s (%s) -> %s (%s, on eth%d): %s saw %s", peer.Name, peer.IP, p.Name, p.IP, dev, r.Name, r.Remote)
		r, err = d.probe(p.Netns, InternetAddr, nil)
		if err := seen(r, err, n.PrimaryIP); err != nil {
			return fmt.Errorf("%s (on eth%d) -> internet: %w", p.Name, dev, err)
		}
		d.ok("%s (%s, on eth%d) -> %s: seen as %s, %s's address", p.Name, p.IP, dev, InternetAddr, r.Remote, n.Name)
		return nil
	}
	return fmt.Errorf("no pod of %s has an address on a secondary interface", n.Name)
}

// seen checks that a probe was answered and that the answering agent saw want as the source.
func seen(r *EchoReply, err error, want string) error {
	if err != nil {
		return err
	}
	if r.Remote != want {
		return fmt.Errorf("answered by %s, which saw %s; want %s", r.Name, r.Remote, want)
	}
	return nil
}
