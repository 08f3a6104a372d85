package fabric

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/internal/netns"
)

// requireRoot fails (never skips) when the test cannot create namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("fabric tests create network namespaces: run them as root (CI does)")
	}
}

// testPrefix is a namespace prefix unique to one test, so parallel runs never collide.
func testPrefix(t testing.TB) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "fct" + hex.EncodeToString(b) + "-"
}

// pinger sends ICMP echo requests from inside a namespace with a raw socket, in Go: no ping
// binary needed.
type pinger struct {
	mu  sync.Mutex
	c   *net.IPConn
	id  uint16
	seq uint16
	buf []byte
}

func newPinger(t testing.TB, ns string) *pinger {
	t.Helper()
	var c net.PacketConn
	err := netns.Do(ns, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		t.Fatalf("icmp socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return &pinger{c: c.(*net.IPConn), id: binary.BigEndian.Uint16(b), buf: make([]byte, 1500)}
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ping reports whether dst answers one echo request within timeout.
func (p *pinger) ping(dst netip.Addr, timeout time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	msg := make([]byte, 16)
	msg[0] = 8 // echo request
	binary.BigEndian.PutUint16(msg[4:], p.id)
	binary.BigEndian.PutUint16(msg[6:], p.seq)
	binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	if _, err := p.c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return false
	}
	deadline := time.Now().Add(timeout)
	for {
		_ = p.c.SetReadDeadline(deadline)
		n, from, err := p.c.ReadFrom(p.buf)
		if err != nil {
			return false
		}
		b := p.buf[:n]
		if n >= 8 && b[0] == 0 && binary.BigEndian.Uint16(b[4:]) == p.id &&
			binary.BigEndian.Uint16(b[6:]) == p.seq && from.(*net.IPAddr).IP.Equal(dst.AsSlice()) {
			return true
		}
	}
}

// pingSoon reports whether dst answers within total, retrying every few milliseconds (the first
// packets may wait for ARP).
func (p *pinger) pingSoon(dst netip.Addr, total time.Duration) bool {
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		if p.ping(dst, 50*time.Millisecond) {
			return true
		}
	}
	return false
}

// dialerIn returns a DialContext that opens its sockets inside a namespace.
func dialerIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// httpClientIn is an HTTP client whose connections start inside a namespace.
func httpClientIn(ns string) *http.Client {
	return &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{DialContext: dialerIn(ns), DisableKeepAlives: true},
	}
}

// udpListen opens a UDP socket inside a namespace.
func udpListen(t testing.TB, ns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	err := netns.Do(ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("udp listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// eventually polls cond every 2ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
