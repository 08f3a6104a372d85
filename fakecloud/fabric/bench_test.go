package fabric

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// BenchmarkAssignToRoutable measures, per operation, the lag from AssignPrivateIpAddresses
// returning to the address answering a probe from another node, and from
// UnassignPrivateIpAddresses returning to the address no longer being delivered. The node that
// gets the address already carries it, so only the cloud's delivery is measured. Run it over
// 1,000 assignments with: go test -run '^$' -bench AssignToRoutable -benchtime 1000x ./fakecloud/fabric/
func BenchmarkAssignToRoutable(b *testing.B) {
	l := newLab(b, nil)
	h1 := nodeHandle(b, l.node(l.n1))
	eth0, err := h1.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{addr("10.0.1.101"), addr("10.0.1.102"), addr("10.0.1.103"), addr("10.0.1.104")}
	for _, a := range addrs {
		if err := h1.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(a, 32))}); err != nil {
			b.Fatal(err)
		}
	}
	p2 := newPinger(b, l.node(l.n2))
	eni := l.n1.NetworkInterfaces[0].NetworkInterfaceID
	var assign, unassign []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := addrs[i%len(addrs)]
		must(l.st.AssignPrivateIPAddresses(admin(), &api.AssignPrivateIPAddressesRequest{
			NetworkInterfaceID: eni, PrivateIPAddresses: []string{a.String()}}))
		t0 := time.Now()
		for !p2.ping(a, time.Millisecond) {
			if time.Since(t0) > 5*time.Second {
				b.Fatalf("%s not routable 5s after assign", a)
			}
		}
		assign = append(assign, time.Since(t0))
		must(l.st.UnassignPrivateIPAddresses(admin(), &api.UnassignPrivateIPAddressesRequest{
			NetworkInterfaceID: eni, PrivateIPAddresses: []string{a.String()}}))
		t0 = time.Now()
		sent := t0
		for p2.ping(a, time.Millisecond) {
			if time.Since(t0) > 5*time.Second {
				b.Fatalf("%s still delivered 5s after unassign", a)
			}
			sent = time.Now()
		}
		unassign = append(unassign, sent.Sub(t0))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(assign, 50)), "assign-p50-ms")
	b.ReportMetric(ms(pct(assign, 99)), "assign-p99-ms")
	b.ReportMetric(ms(pct(unassign, 50)), "unassign-p50-ms")
	b.ReportMetric(ms(pct(unassign, 99)), "unassign-p99-ms")
}

// BenchmarkNodeToNodeTCP measures TCP throughput from node n1 to node n2 through the VPC router
// (Go sender and receiver, 1 MiB per operation): go test -run '^$' -bench NodeToNodeTCP ./fakecloud/fabric/
func BenchmarkNodeToNodeTCP(b *testing.B) {
	l := newLab(b, nil)
	var ln net.Listener
	err := netns.Do(l.node(l.n2), func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(l.n2.PrivateIPAddress, "5201"))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	done := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		_ = c.Close()
		done <- n
	}()
	conn, err := dialerIn(l.node(l.n1))(b.Context(), "tcp4", net.JoinHostPort(l.n2.PrivateIPAddress, "5201"))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = conn.Close()
	got := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	if got != int64(b.N)*int64(len(buf)) {
		b.Fatalf("receiver got %d bytes, sent %d", got, int64(b.N)*int64(len(buf)))
	}
	b.ReportMetric(float64(got)*8/elapsed.Seconds()/1e9, "Gbit/s")
}
