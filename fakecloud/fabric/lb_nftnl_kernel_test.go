package fabric

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// TestLBRulesetMatchesNft holds the netlink form to the nft script: for programs of every
// shape, one namespace is programmed by programLB and another by `nft -f` with the script
// RenderLBProgram writes, and the kernel must read back the same in both (rules, the sets they
// look up, comments). The nft command is a development aid here, never a product dependency,
// so the test skips without it.
func TestLBRulesetMatchesNft(t *testing.T) {
	requireRoot(t)
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("no nft command to compare with (apt-get install nftables)")
	}
	watchRootNetns(t)
	k := newKernel(testPrefix(t), 1500)
	defer k.close()
	one := tgt("10.0.1.101", 8080, "healthy")
	for i, tc := range []struct {
		name string
		snap *api.Snapshot
	}{
		{"golden", goldenSnap()},
		{"internal: the VPC only", lbSnap(api.SchemeInternal, nil, one)},
		{"internal, ranges outside the VPC: no one", lbSnap(api.SchemeInternal, []string{"192.0.2.0/24"}, one)},
		{"no source ranges, one target", lbSnap(api.SchemeInternetFacing, nil, one)},
		{"no targets", lbSnap(api.SchemeInternetFacing, []string{"198.51.100.0/24"})},
		{"ranges reaching both ends", lbSnap(api.SchemeInternetFacing, []string{"0.0.0.0/8", "255.255.255.0/24"}, one)},
		{"everyone", lbSnap(api.SchemeInternetFacing, []string{"0.0.0.0/0"}, one)},
		{"one range not on a byte boundary", lbSnap(api.SchemeInternetFacing, []string{"203.0.112.0/20"}, one)},
		{"one address", lbSnap(api.SchemeInternetFacing, []string{"203.0.113.7/32"}, one)},
		{"adjacent ranges", lbSnap(api.SchemeInternetFacing, []string{"10.0.0.128/25", "10.0.0.0/25"}, one)},
		{"nested ranges", lbSnap(api.SchemeInternetFacing, []string{"10.0.0.0/8", "10.1.0.0/16"}, one)},
		{"application, source ranges", albSnap(one)},
		{"application, no source ranges", appSnap(api.SchemeInternetFacing, nil, one)},
		{"application, internal", appSnap(api.SchemeInternal, nil, one)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := desiredLBOf(t, tc.snap)
			mine, theirs := fmt.Sprintf("lb-%d-go", i), fmt.Sprintf("lb-%d-nft", i)
			lbNetns(t, k, mine)
			lbNetns(t, k, theirs)
			prog := *lb
			prog.ID = mine
			if err := k.programLB(&prog); err != nil {
				t.Fatal(err)
			}
			script, _ := RenderLBProgram(lb.Program)
			err := netns.Do(LBNetns(k.prefix, theirs), func() error {
				cmd := exec.Command(nft, "-f", "-")
				var stderr bytes.Buffer
				cmd.Stdin, cmd.Stderr = strings.NewReader(script), &stderr
				if err := cmd.Run(); err != nil {
					return errors.New(err.Error() + ": " + stderr.String())
				}
				return nil
			})
			if err != nil {
				t.Fatalf("nft -f the script: %v\n%s", err, script)
			}
			got, _ := readLB(t, k, mine)
			want, _ := readLB(t, k, theirs)
			if got == "" {
				t.Fatal("programLB left no table")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the kernel holds (-from nft +from programLB):\n%s\nscript:\n%s", diff, script)
			}
		})
	}
}

// lbPair is a load balancer namespace on a link to a client namespace that holds addresses
// inside and outside the source ranges and runs two targets.
type lbPair struct {
	k        *kernel
	lb       *LB
	clientNS string
}

const (
	pairLBAddr = "10.0.1.9"
	pairVIP    = "198.51.100.1"
	pairClient = "10.0.1.20" // also the targets' address
)

func newLBPair(t *testing.T) *lbPair {
	t.Helper()
	requireRoot(t)
	watchRootNetns(t)
	k := newKernel(testPrefix(t), 1500)
	t.Cleanup(k.close)
	p := &lbPair{k: k, lb: &LB{ID: "lb-pair"}, clientNS: NodeNetns(k.prefix, "client")}
	lbNetns(t, k, p.lb.ID)
	lns := LBNetns(k.prefix, p.lb.ID)
	if err := k.ensureNetns(p.clientNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.closeHandle(p.clientNS)
		if err := netns.Delete(p.clientNS); err != nil {
			t.Errorf("delete %s: %v", p.clientNS, err)
		}
	})
	if err := sysctl(lns, lbSysctls...); err != nil {
		t.Fatal(err)
	}
	ch, err := k.handle(p.clientNS)
	if err != nil {
		t.Fatal(err)
	}
	lh, err := k.handle(lns)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(netns.Path(lns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(fd)}
	if err := ch.LinkAdd(veth); err != nil {
		t.Fatalf("link client to load balancer: %v", err)
	}
	up := func(h *netlink.Handle, addrs []string, routes ...string) {
		t.Helper()
		l, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(netip.MustParsePrefix(a))}); err != nil {
				t.Fatalf("address %s: %v", a, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(netip.MustParsePrefix(r)), Scope: netlink.SCOPE_LINK}
			if err := h.RouteAdd(rt); err != nil {
				t.Fatalf("route %s: %v", r, err)
			}
		}
	}
	up(ch, []string{pairClient + "/24", "10.1.0.1/32", "9.255.255.255/32", "203.0.113.5/32", "203.0.114.1/32"}, pairVIP+"/32")
	up(lh, []string{pairLBAddr + "/24", pairVIP + "/32"}, "0.0.0.0/0")
	return p
}

// program makes the pair's load balancer forward tcp/80 to targets on the client, from sources
// in allowed (everyone if none).
func (p *lbPair) program(t *testing.T, allowed []string, targetPorts ...int) {
	t.Helper()
	prog := LBProgram{Addr: addr(pairLBAddr), VIPs: []netip.Addr{addr(pairLBAddr), addr(pairVIP)}}
	for _, a := range allowed {
		prog.Allowed = append(prog.Allowed, netip.MustParsePrefix(a))
	}
	if len(targetPorts) > 0 {
		l := LBListener{Protocol: "tcp", Port: 80}
		for _, port := range targetPorts {
			l.Targets = append(l.Targets, TargetAddr{IP: addr(pairClient), Port: port})
		}
		prog.Listeners = []LBListener{l}
	}
	_, prog.Hash = RenderLBProgram(prog)
	p.lb.Program = prog
	if err := p.k.programLB(p.lb); err != nil {
		t.Fatal(err)
	}
}

// programApp gives the pair's load balancer an application load balancer's program (only the
// guard) with sources in allowed (everyone if none).
func (p *lbPair) programApp(t *testing.T, allowed []string) {
	t.Helper()
	prog := LBProgram{Addr: addr(pairLBAddr), VIPs: []netip.Addr{addr(pairLBAddr), addr(pairVIP)}, App: true}
	for _, a := range allowed {
		prog.Allowed = append(prog.Allowed, netip.MustParsePrefix(a))
	}
	_, prog.Hash = RenderLBProgram(prog)
	p.lb.Program = prog
	if err := p.k.programLB(p.lb); err != nil {
		t.Fatal(err)
	}
}

// tracked is how many connections conntrack holds in the pair's load balancer namespace.
func (p *lbPair) tracked(t *testing.T) int {
	t.Helper()
	nsh, err := vnetns.GetFromPath(netns.Path(LBNetns(p.k.prefix, p.lb.ID)))
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	return len(flows)
}

// dial connects from src in the client namespace to dst:80.
func (p *lbPair) dial(src, dst string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(p.clientNS, func() error {
		d := &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		c, err = d.Dial("tcp4", net.JoinHostPort(dst, "80"))
		return err
	})
	return c, err
}

// TestALBProgramTraffic: an application load balancer's program, written over a network one's,
// leaves only the guard (no NAT chains), so connections to a socket in its namespace are not
// tracked at all; with source ranges the guard drops new connections from outside them, which
// takes conntrack ("ct state new"), and lets the others through.
func TestALBProgramTraffic(t *testing.T) {
	p := newLBPair(t)
	ln := listenTCPIn(t, LBNetns(p.k.prefix, p.lb.ID), netip.MustParseAddrPort("0.0.0.0:80"))
	go (&pod{t: t, name: "alb"}).serveTCP(ln)
	p.program(t, nil) // a network load balancer's shape first, as an older fabric left it
	p.programApp(t, nil)
	got, _ := readLB(t, p.k, p.lb.ID)
	if want := lbRulesetOf(p.lb.Program).view().String(); got != want {
		t.Errorf("the namespace holds:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, lbChainDNAT) || strings.Contains(got, lbChainSNAT) {
		t.Errorf("NAT chains left in an application load balancer's table:\n%s", got)
	}
	if h, err := p.k.programHashIn(p.lb.ID); err != nil || h != p.lb.Program.Hash {
		t.Errorf("hash read back %q, %v; want %q", h, err, p.lb.Program.Hash)
	}
	greet := func(src, dst string) error {
		c, err := p.dial(src, dst, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	for _, dst := range []string{pairVIP, pairLBAddr} {
		if err := greet("203.0.113.5", dst); err != nil {
			t.Errorf("203.0.113.5 -> %s:80 without source ranges: %v", dst, err)
		}
	}
	if n := p.tracked(t); n != 0 {
		t.Errorf("conntrack holds %d connections in the namespace; want none (nothing needs it)", n)
	}

	p.programApp(t, []string{"203.0.113.0/24"})
	if err := greet("203.0.113.5", pairVIP); err != nil {
		t.Errorf("203.0.113.5 inside the source ranges: %v", err)
	}
	c, err := p.dial("203.0.114.1", pairVIP, time.Second)
	if err == nil {
		_ = c.Close()
		t.Errorf("203.0.114.1 connected from outside the source ranges")
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("203.0.114.1 outside the source ranges was refused, not dropped: %v", err)
	}
	if p.tracked(t) == 0 {
		t.Errorf("no connection tracked with source ranges: the guard's ct state cannot work")
	}
}

// TestLBNetlinkTraffic sends real connections through a namespace programmed by programLB: the
// source-range guard drops new connections from outside the ranges (and only those, up to the
// ranges' edges); DNAT takes targets in turn and SNAT makes the load balancer their peer; a new
// program leaves established connections on their target.
func TestLBNetlinkTraffic(t *testing.T) {
	p := newLBPair(t)
	sources := []string{pairClient, "203.0.113.5", "10.1.0.1", "9.255.255.255", "203.0.114.1"}
	for _, tc := range []struct {
		allowed []string
		pass    []string // the sources that may connect
	}{
		// 10.1.0.1 is one past 10.0.0.0/16, 9.255.255.255 one before; 203.0.114.1 is one past
		// 203.0.113.0/24.
		{[]string{"10.0.0.0/16", "203.0.113.0/24"}, []string{pairClient, "203.0.113.5"}}, // an interval set
		{[]string{"10.0.0.0/16"}, []string{pairClient}},                                  // a comparison
		{[]string{"203.0.112.0/23"}, []string{"203.0.113.5"}},                            // a masked comparison
		{nil, sources},
	} {
		p.program(t, tc.allowed)
		// No listener has targets: an allowed SYN reaches the namespace, which refuses it; a
		// dropped one times out. The wait is generous: under load the first SYN also waits for
		// neighbour resolution, and a slow refusal must not read as a drop (it did at 500 ms).
		var wg sync.WaitGroup
		for _, src := range sources {
			for _, dst := range []string{pairLBAddr, pairVIP} {
				wg.Go(func() {
					c, err := p.dial(src, dst, 2*time.Second)
					if c != nil {
						_ = c.Close()
					}
					refused, want := errors.Is(err, syscall.ECONNREFUSED), slices.Contains(tc.pass, src)
					if refused != want || err == nil {
						t.Errorf("source ranges %v: %s -> %s:80: %v; want it through %v", tc.allowed, src, dst, err, want)
					}
				})
			}
		}
		wg.Wait()
	}

	for _, port := range []int{8080, 8081} {
		ln := listenTCPIn(t, p.clientNS, netip.AddrPortFrom(addr(pairClient), uint16(port)))
		go (&pod{t: t, name: ln.Addr().String()}).serveTCP(ln)
	}
	p.program(t, nil, 8080, 8081)
	ask := func() (net.Conn, string, string) {
		t.Helper()
		c, err := p.dial("203.0.113.5", pairVIP, time.Second)
		if err != nil {
			t.Fatalf("connect through the load balancer: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		target, peer, _ := strings.Cut(strings.TrimSpace(line), " ")
		return c, target, peer
	}
	var order []string
	for range 4 {
		_, target, peer := ask()
		order = append(order, target)
		if peer != pairLBAddr {
			t.Errorf("target %s sees peer %s, want the load balancer %s", target, peer, pairLBAddr)
		}
	}
	if order[0] == order[1] || order[0] != order[2] || order[1] != order[3] {
		t.Errorf("targets in order %v, want them in turn", order)
	}

	// A connection to the target the next program leaves out.
	old := pairClient + ":8080"
	kept, target, _ := ask()
	if target != old {
		kept, target, _ = ask()
	}
	if target != old {
		t.Fatalf("two connections in a row reached %s", target)
	}
	p.program(t, nil, 8081)
	if err := echo(kept, "still there"); err != nil {
		t.Errorf("a connection to %s after a program without it: %v", old, err)
	}
	for range 2 {
		if _, target, _ := ask(); target != pairClient+":8081" {
			t.Errorf("a new connection after the new program reached %s, want %s:8081", target, pairClient)
		}
	}
}
