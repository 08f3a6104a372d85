package fabric

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// BenchmarkLBVersusDirect measures, in one run, requests and bulk throughput from the internet
// namespace to one pod through a load balancer's VIP and straight to the pod's IP (issue #8,
// acceptance 5). Each operation is one request both ways (a new TCP connection and the pod's
// greeting); at the end 64 MiB go each way to a sink. Run it with:
// go test -run '^$' -bench LBVersusDirect -benchtime 2000x ./fakecloud/fabric/
func BenchmarkLBVersusDirect(b *testing.B) {
	l := newLab(b, nil)
	internet := InternetNetns(l.prefix, l.vpc)
	p := benchPod(b, l)
	lb := must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "bench", SubnetID: l.subA.SubnetID})).LoadBalancer
	for _, port := range []int{podPort, podPort + 1} {
		tg := must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: fmt.Sprint("bench-", port),
			Protocol: api.ProtocolTCP, Port: port, VpcID: l.vpc})).TargetGroup.TargetGroupID
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: tg, Targets: []api.Target{{IP: p.String()}}}))
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancerID, Protocol: api.ProtocolTCP,
			Port: port - podPort + 80, DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg}}}))
	}
	l.converge() // the target is initial: the load balancer fails open to it
	vip, direct := netip.AddrPortFrom(addr(lb.PublicIPAddress), 80), netip.AddrPortFrom(p, podPort)
	for _, ap := range []netip.AddrPort{vip, direct} {
		eventually(b, 5*time.Second, "a first answer from "+ap.String(), func() bool {
			_, _, err := askTCP(internet, ap)
			return err == nil
		})
	}
	var viaLB, straight []time.Duration
	b.ResetTimer()
	for range b.N {
		for _, m := range []struct {
			ap  netip.AddrPort
			out *[]time.Duration
		}{{vip, &viaLB}, {direct, &straight}} {
			t0 := time.Now()
			if _, _, err := askTCP(internet, m.ap); err != nil {
				b.Fatalf("request to %s: %v", m.ap, err)
			}
			*m.out = append(*m.out, time.Since(t0))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(viaLB, 50)), "vip-p50-ms")
	b.ReportMetric(ms(pct(viaLB, 99)), "vip-p99-ms")
	b.ReportMetric(ms(pct(straight, 50)), "direct-p50-ms")
	b.ReportMetric(ms(pct(straight, 99)), "direct-p99-ms")
	b.ReportMetric(bulkGbps(b, internet, netip.AddrPortFrom(vip.Addr(), 81)), "vip-Gbit/s")
	b.ReportMetric(bulkGbps(b, internet, netip.AddrPortFrom(p, podPort+1)), "direct-Gbit/s")
}

// benchPod is one pod on n1 (10.0.1.150) with the greeting server on 8080 and a sink on 8081.
func benchPod(b *testing.B, l *lab) netip.Addr {
	b.Helper()
	ip := addr("10.0.1.150")
	must(l.st.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{
		NetworkInterfaceID: l.n1.NetworkInterfaces[0].NetworkInterfaceID, PrivateIPAddresses: []string{ip.String()}}))
	ns := l.node(l.n1)
	h := nodeHandle(b, ns)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(ip, 32))}); err != nil {
		b.Fatal(err)
	}
	greet, err := listenIn(ns, netip.AddrPortFrom(ip, podPort).String())
	if err != nil {
		b.Fatal(err)
	}
	sink, err := listenIn(ns, netip.AddrPortFrom(ip, podPort+1).String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = greet.Close(); _ = sink.Close() })
	serve := func(ln net.Listener, handle func(net.Conn)) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}
	go serve(greet, func(c net.Conn) { _, _ = fmt.Fprintf(c, "bench %s\n", c.RemoteAddr().(*net.TCPAddr).IP) })
	go serve(sink, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	return ip
}

// bulkGbps sends 64 MiB over one connection and returns the rate in Gbit/s.
func bulkGbps(b *testing.B, ns string, ap netip.AddrPort) float64 {
	b.Helper()
	c, err := dialIn(ns, "tcp4", ap.String(), time.Second)
	if err != nil {
		b.Fatalf("bulk to %s: %v", ap, err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	const total = 64
	start := time.Now()
	for range total {
		if _, err := c.Write(buf); err != nil {
			b.Fatalf("bulk to %s: %v", ap, err)
		}
	}
	// Half-close and wait for the sink to finish reading, so the time covers delivery.
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
	return float64(total<<20) * 8 / time.Since(start).Seconds() / 1e9
}
