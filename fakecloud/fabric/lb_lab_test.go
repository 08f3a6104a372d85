package fabric

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// Pods of the load balancer tests serve on these ports of their own address.
const (
	podPort       = 8080 // TCP (greets with "name peer", then echoes lines) and UDP (answers "name peer")
	podHealthPort = 9000 // TCP: accepts and closes; closing it makes the pod unhealthy
	podHTTPPort   = 9001 // HTTP: GET /healthz (serveHealthz)
)

// pod stands in for a Kubernetes pod: a secondary IP of a node, assigned through the store,
// with servers in the node's namespace.
type pod struct {
	t      *testing.T
	name   string
	ip     netip.Addr
	ns     string
	mu     sync.Mutex
	health net.Listener
}

func listenTCPIn(t *testing.T, ns string, ap netip.AddrPort) net.Listener {
	t.Helper()
	ln, err := listenIn(ns, ap.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func newPod(t *testing.T, l *lab, in api.Instance, name, ip string) *pod {
	t.Helper()
	p := &pod{t: t, name: name, ip: addr(ip), ns: l.node(in)}
	must(l.st.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{
		NetworkInterfaceID: in.NetworkInterfaces[0].NetworkInterfaceID, PrivateIPAddresses: []string{ip}}))
	h := nodeHandle(t, p.ns)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(p.ip, 32))}); err != nil {
		t.Fatalf("pod address %s: %v", ip, err)
	}
	ln := listenTCPIn(t, p.ns, netip.AddrPortFrom(p.ip, podPort))
	go p.serveTCP(ln)
	uc := udpListen(t, p.ns, netip.AddrPortFrom(p.ip, podPort).String())
	go p.serveUDP(uc)
	p.openHealth()
	return p
}

func (p *pod) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			peer := c.RemoteAddr().(*net.TCPAddr).IP
			if _, err := fmt.Fprintf(c, "%s %s\n", p.name, peer); err == nil {
				_, _ = io.Copy(c, c)
			}
		}()
	}
}

func (p *pod) serveUDP(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDP(fmt.Appendf(nil, "%s %s", p.name, from.IP), from)
	}
}

func (p *pod) openHealth() {
	ln := listenTCPIn(p.t, p.ns, netip.AddrPortFrom(p.ip, podHealthPort))
	p.mu.Lock()
	p.health = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
}

func (p *pod) closeHealth() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.health.Close()
}

// lbLab is the lab with three pods behind an internet-facing load balancer: TCP 80 and UDP 53
// to the pods' port 8080, health checked on their port 9000.
type lbLab struct {
	*lab
	pods         []*pod
	lb           api.LoadBalancer
	tcpTG, udpTG string
	internet     string
}

func newLBLab(t *testing.T) *lbLab {
	t.Helper()
	l := &lbLab{lab: newLab(t, nil)}
	l.internet = InternetNetns(l.prefix, l.vpc)
	l.pods = []*pod{
		newPod(t, l.lab, l.n1, "pod-a", "10.0.1.101"),
		newPod(t, l.lab, l.n1, "pod-b", "10.0.1.102"),
		newPod(t, l.lab, l.n2, "pod-c", "10.0.1.103"),
	}
	l.lb = must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "web", SubnetID: l.subA.SubnetID})).LoadBalancer
	hc := api.HealthCheck{Protocol: api.ProtocolTCP, Port: fmt.Sprint(podHealthPort), IntervalSeconds: 5, TimeoutSeconds: 2,
		HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
	var targets []api.Target
	for _, p := range l.pods {
		targets = append(targets, api.Target{IP: p.ip.String(), Port: podPort})
	}
	for _, ls := range []struct {
		proto string
		port  int
		tg    *string
	}{{api.ProtocolTCP, 80, &l.tcpTG}, {api.ProtocolUDP, 53, &l.udpTG}} {
		*ls.tg = must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "web-" + strings.ToLower(ls.proto),
			Protocol: ls.proto, Port: podPort, VpcID: l.vpc, HealthCheck: hc})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: *ls.tg, Targets: targets}))
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID, Protocol: ls.proto,
			Port: ls.port, DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: *ls.tg}}}))
	}
	must(l.st.ModifyTargetGroupAttributes(admin(), &api.ModifyTargetGroupAttributesRequest{TargetGroupID: l.tcpTG,
		Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: "4"}}}))
	l.converge()
	return l
}

// health is a target's state and reason in the store, or "gone".
func (l *lbLab) health(tg string, ip netip.Addr) (string, string) {
	out := must(l.st.DescribeTargetHealth(admin(), &api.DescribeTargetHealthRequest{TargetGroupID: tg}))
	for _, d := range out.TargetHealthDescriptions {
		if d.Target.IP == ip.String() {
			return d.TargetHealth.State, d.TargetHealth.Reason
		}
	}
	return "gone", ""
}

// waitHealth waits until the targets are in state (health checks take intervals of 5 s), then
// until the fabric has programmed it.
func (l *lbLab) waitHealth(t *testing.T, tg, state string, pods ...*pod) {
	t.Helper()
	for _, p := range pods {
		eventually(t, 40*time.Second, fmt.Sprintf("%s to be %s in %s", p.name, state, tg), func() bool {
			s, _ := l.health(tg, p.ip)
			return s == state
		})
	}
	l.converge()
}

// dialIn dials from inside a namespace with a short timeout.
func dialIn(ns, network, address string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(ns, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout}).Dial(network, address)
		return err
	})
	return c, err
}

// askTCP connects and reads the pod's greeting: its name and the peer it sees.
func askTCP(ns string, ap netip.AddrPort) (name, peer string, err error) {
	c, err := dialIn(ns, "tcp4", ap.String(), 500*time.Millisecond)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	name, peer, _ = strings.Cut(strings.TrimSpace(line), " ")
	return name, peer, nil
}

func askUDP(ns string, ap netip.AddrPort) (name, peer string, err error) {
	c, err := dialIn(ns, "udp4", ap.String(), time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	buf := make([]byte, 256)
	for range 3 { // a datagram may be lost while the path warms up (ARP)
		if _, err = c.Write([]byte("?")); err != nil {
			return "", "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var n int
		if n, err = c.Read(buf); err == nil {
			name, peer, _ = strings.Cut(string(buf[:n]), " ")
			return name, peer, nil
		}
	}
	return "", "", err
}

type askFunc func(ns string, ap netip.AddrPort) (name, peer string, err error)

// spread sends n requests and counts the answers by pod; every answer must show wantPeer.
func spread(t *testing.T, ask askFunc, ns string, ap netip.AddrPort, n int, wantPeer string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, peer, err := ask(ns, ap)
		if err != nil {
			t.Fatalf("request to %s from %s: %v", ap, ns, err)
		}
		if peer != wantPeer {
			t.Errorf("%s saw peer %s, want the load balancer's %s", name, peer, wantPeer)
		}
		got[name]++
	}
	return got
}

func podNames(pods ...*pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.name)
	}
	slices.Sort(out)
	return out
}

func sortedNames(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// TestLB runs the load balancer data plane through its behaviours, in order, on one lab.
func TestLB(t *testing.T) {
	l := newLBLab(t)
	a, b, c := l.pods[0], l.pods[1], l.pods[2]
	vip := addr(l.lb.PublicIPAddress)
	priv := l.lb.PrivateIPAddress
	tcp, udp := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(vip, 53)
	if !netip.MustParsePrefix(PublicVIPPool).Contains(vip) {
		t.Fatalf("VIP %s is outside %s", vip, PublicVIPPool)
	}

	t.Run("tcp and udp reach every pod, which sees the load balancer", func(t *testing.T) {
		l.waitHealth(t, l.tcpTG, api.TargetHealthHealthy, a, b, c)
		l.waitHealth(t, l.udpTG, api.TargetHealthHealthy, a, b, c)
		if got := spread(t, askTCP, l.internet, tcp, 30, priv); !slices.Equal(sortedNames(got), podNames(a, b, c)) {
			t.Errorf("tcp answers by pod %v, want all three", got)
		}
		if got := spread(t, askUDP, l.internet, udp, 30, priv); !slices.Equal(sortedNames(got), podNames(a, b, c)) {
			t.Errorf("udp answers by pod %v, want all three", got)
		}
		var show strings.Builder
		if err := Show(&show, l.prefix, l.st.Snapshot()); err != nil {
			t.Fatal(err)
		}
		t.Logf("fabric show:\n%s", show.String())
		if !strings.Contains(show.String(), l.lb.LoadBalancerID) || !strings.Contains(show.String(), "tcp/80->3") {
			t.Errorf("show lacks the load balancer and its listener")
		}
	})

	t.Run("an unhealthy pod gets no new connections", func(t *testing.T) {
		c.closeHealth()
		l.waitHealth(t, l.tcpTG, api.TargetHealthUnhealthy, c)
		if _, reason := l.health(l.tcpTG, c.ip); reason != api.ReasonFailedHealthChecks {
			t.Errorf("unhealthy reason %q, want %s (connection refused)", reason, api.ReasonFailedHealthChecks)
		}
		if got := spread(t, askTCP, l.internet, tcp, 20, priv); !slices.Equal(sortedNames(got), podNames(a, b)) {
			t.Errorf("answers by pod %v, want only the healthy ones", got)
		}
	})

	t.Run("no healthy pod: fail open to all", func(t *testing.T) {
		a.closeHealth()
		b.closeHealth()
		l.waitHealth(t, l.tcpTG, api.TargetHealthUnhealthy, a, b)
		if got := spread(t, askTCP, l.internet, tcp, 30, priv); !slices.Equal(sortedNames(got), podNames(a, b, c)) {
			t.Errorf("answers by pod %v, want all three", got)
		}
		for _, p := range l.pods {
			p.openHealth()
		}
		l.waitHealth(t, l.tcpTG, api.TargetHealthHealthy, a, b, c)
	})

	t.Run("source ranges", func(t *testing.T) {
		setRanges := func(v string) {
			must(l.st.ModifyLoadBalancerAttributes(admin(), &api.ModifyLoadBalancerAttributesRequest{
				LoadBalancerID: l.lb.LoadBalancerID, Attributes: []api.Attribute{{Key: api.AttributeSourceRanges, Value: v}}}))
			l.converge()
		}
		setRanges("10.0.0.0/16")
		if _, _, err := askTCP(l.internet, tcp); err == nil {
			t.Errorf("the internet connected from outside the source ranges")
		}
		if _, _, err := askTCP(l.node(l.n3), tcp); err != nil {
			t.Errorf("a VPC node inside the source ranges: %v", err)
		}
		setRanges("")
		if _, _, err := askTCP(l.internet, tcp); err != nil {
			t.Errorf("ranges cleared, the internet still cannot connect: %v", err)
		}
	})

	t.Run("draining keeps established connections, then cuts them", func(t *testing.T) {
		testDraining(t, l, tcp)
	})

	t.Run("an internal load balancer answers only inside the VPC", func(t *testing.T) {
		in := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "inner", Scheme: api.SchemeInternal,
			SubnetID: l.subB.SubnetID})).LoadBalancer
		// Its group is checked over HTTP: pod-a answers 503, then 200.
		code := serveHealthz(t, l.pods[0])
		hc := api.HealthCheck{Protocol: api.ProtocolHTTP, Port: fmt.Sprint(podHTTPPort), Path: "/healthz",
			IntervalSeconds: 5, TimeoutSeconds: 2, HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
		tg := must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "inner-udp", Protocol: api.ProtocolUDP,
			Port: podPort, VpcID: l.vpc, HealthCheck: hc})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg,
			Targets: []api.Target{{IP: l.pods[0].ip.String(), Port: podPort}}}))
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: in.LoadBalancerID, Protocol: api.ProtocolUDP,
			Port: 53, DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg}}}))
		l.converge()
		ap := netip.AddrPortFrom(addr(in.PrivateIPAddress), 53)
		if in.PublicIPAddress != "" {
			t.Errorf("an internal load balancer got a public address %s", in.PublicIPAddress)
		}
		if name, _, err := askUDP(l.internet, ap); err == nil {
			t.Errorf("the internet reached %s through the internal load balancer", name)
		}
		if _, peer, err := askUDP(l.node(l.n1), ap); err != nil || peer != in.PrivateIPAddress {
			t.Errorf("from a VPC node: peer %q, err %v; want an answer that saw %s", peer, err, in.PrivateIPAddress)
		}
		l.waitHealth(t, tg, api.TargetHealthUnhealthy, l.pods[0])
		if _, reason := l.health(tg, l.pods[0].ip); reason != api.ReasonResponseCodeMismatch {
			t.Errorf("HTTP 503: reason %q, want %s", reason, api.ReasonResponseCodeMismatch)
		}
		code.Store(http.StatusOK)
		l.waitHealth(t, tg, api.TargetHealthHealthy, l.pods[0])
	})

	t.Run("a restarted fabric adopts load balancers without breaking connections", func(t *testing.T) {
		conn, name := openEcho(t, l.internet, tcp)
		lh := nodeHandle(t, LBNetns(l.prefix, l.lb.LoadBalancerID))
		before := routerLinksAndRoutes(t, lh)
		l.stop()
		l.start()
		if diff := cmpStrings(before, routerLinksAndRoutes(t, lh)); diff != "" {
			t.Errorf("restart changed the load balancer's namespace:\n%s", diff)
		}
		if err := echo(conn, "after restart"); err != nil {
			t.Errorf("connection to %s broke across the restart: %v", name, err)
		}
		if _, _, err := askTCP(l.internet, tcp); err != nil {
			t.Errorf("new connection after restart: %v", err)
		}
	})

	t.Run("delete removes the namespace and the routes", func(t *testing.T) {
		for _, lb := range must(l.st.DescribeLoadBalancers(admin(), &api.DescribeLoadBalancersRequest{})).LoadBalancers {
			must(l.st.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: lb.LoadBalancerID}))
		}
		l.converge()
		left, _ := netns.List(l.prefix + "l-")
		if len(left) > 0 {
			t.Errorf("load balancer namespaces left: %v", left)
		}
		for _, r := range routerLinksAndRoutes(t, nodeHandle(t, RouterNetns(l.prefix, l.vpc))) {
			if strings.Contains(r, priv+"/32") || strings.Contains(r, vip.String()+"/32") {
				t.Errorf("router still routes a deleted load balancer's address: %s", r)
			}
		}
		if _, _, err := askTCP(l.internet, tcp); err == nil {
			t.Errorf("the deleted load balancer's VIP still answers")
		}
	})
}

// serveHealthz serves GET /healthz on a pod's podHTTPPort with the returned code (503 first).
func serveHealthz(t *testing.T, p *pod) *atomic.Int64 {
	t.Helper()
	code := &atomic.Int64{}
	code.Store(http.StatusServiceUnavailable)
	ln := listenTCPIn(t, p.ns, netip.AddrPortFrom(p.ip, podHTTPPort))
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return code
}

// testDraining deregisters the pod an established connection went to: new connections avoid
// it, the established one keeps working while it drains, and is cut once the drain is over.
func testDraining(t *testing.T, l *lbLab, tcp netip.AddrPort) {
	conn, name := openEcho(t, l.internet, tcp)
	i := slices.IndexFunc(l.pods, func(p *pod) bool { return p.name == name })
	drained, rest := l.pods[i], slices.Delete(slices.Clone(l.pods), i, i+1)
	target := []api.Target{{IP: drained.ip.String(), Port: podPort}}
	must(l.st.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: l.tcpTG, Targets: target}))
	l.converge()
	if got := spread(t, askTCP, l.internet, tcp, 20, l.lb.PrivateIPAddress); !slices.Equal(sortedNames(got), podNames(rest...)) {
		t.Errorf("answers by pod %v while %s drains, want only %v", got, name, podNames(rest...))
	}
	if err := echo(conn, "while draining"); err != nil {
		t.Fatalf("established connection to draining %s broke: %v", name, err)
	}
	eventually(t, 15*time.Second, name+" to finish draining", func() bool {
		s, _ := l.health(l.tcpTG, drained.ip)
		return s == "gone"
	})
	l.converge()
	if err := echo(conn, "after the drain"); err == nil {
		t.Errorf("connection to %s still works after its drain deadline", name)
	}
	must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: l.tcpTG, Targets: target}))
	l.converge()
}

// openEcho opens a connection through the load balancer and returns it with the pod it reached.
func openEcho(t *testing.T, ns string, ap netip.AddrPort) (net.Conn, string) {
	t.Helper()
	c, err := dialIn(ns, "tcp4", ap.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var name string
	if _, err := fmt.Fscanln(c, &name, new(string)); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	return c, name
}

// echo sends a line on an echo connection and checks it comes back.
func echo(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg)+1)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg+"\n" {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}
