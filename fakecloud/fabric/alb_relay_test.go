package fabric

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// The two relays are BenchmarkALBVersusDirect's references for what any proxy costs in the
// load balancer's place: a proxy of any kind, on the load balancer's CPU in the load
// balancer's namespace, relaying through the kernel's sockets. Neither parses HTTP; each
// relays the bytes of a client's connection to a connection of its own to the pod and back.
//
//   - relay: a goroutine per direction (io.Copy), sleeping in Go's network poller when there
//     is nothing to read, as the load balancer's engine does;
//   - polling-relay: one goroutine that never sleeps while its path is loaded: it polls its
//     own epoll set without waiting (epoll_wait with timeout 0) and relays what is readable,
//     as a data plane that busy-polls its CPU does. Nothing on the client's and the pod's CPU
//     then has to wake it.

// startRelay serves a bare TCP relay on port in namespace ns (every address) to target until
// the benchmark ends.
func startRelay(b *testing.B, ns string, port int, target netip.AddrPort) {
	b.Helper()
	ln, err := listenIn(ns, fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil {
			return false
		}
		for _, c := range cs {
			conns[c] = struct{}{}
		}
		return true
	}
	relay := func(c net.Conn) {
		defer c.Close()
		d, err := dialIn(ns, "tcp", target.String(), 2*time.Second)
		if err != nil {
			return
		}
		defer d.Close()
		if !track(c, d) {
			return
		}
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(d, c)
			_ = d.Close() // ends the other direction too
			close(done)
		}()
		_, _ = io.Copy(c, d)
		_ = c.Close()
		<-done
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { relay(c) })
		}
	})
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
}

// pollingRelay is a bare TCP relay that busy-polls while active.
type pollingRelay struct {
	active atomic.Bool
}

// pollingRelaySockets is how many sockets to the target the polling relay makes ready (in
// the load balancer's namespace) before it starts: one per client connection it will take.
const pollingRelaySockets = 4 * albBenchWorkers

// startPollingRelay serves a busy-polling TCP relay on port in namespace ns to target until
// the benchmark ends. It polls without waiting only while active (set by its path's rounds);
// otherwise it waits up to 10 ms a poll, so it does not take the CPU from the other paths.
func startPollingRelay(b *testing.B, ns string, port int, target netip.AddrPort) *pollingRelay {
	b.Helper()
	ln, err := listenIn(ns, fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	// The relay's fds are its own: a duplicate of the listener's, and sockets made in ns
	// (a socket stays in the namespace it was made in), connected when a client comes.
	lf, err := ln.(*net.TCPListener).File()
	_ = ln.Close()
	if err != nil {
		b.Fatal(err)
	}
	lfd := int(lf.Fd())
	var spare []int
	closeAll := func(fds []int) {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	if err := netns.Do(ns, func() error {
		for range pollingRelaySockets {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			spare = append(spare, fd)
		}
		return nil
	}); err != nil {
		closeAll(spare)
		_ = lf.Close()
		b.Fatalf("sockets for the polling relay in %s: %v", ns, err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		closeAll(spare)
		_ = lf.Close()
		b.Fatal(err)
	}
	if err = unix.SetNonblock(lfd, true); err == nil {
		err = unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)})
	}
	if err != nil {
		closeAll(append(spare, ep))
		_ = lf.Close()
		b.Fatal(err)
	}
	r := &pollingRelay{}
	stop, done := make(chan struct{}), make(chan struct{})
	peer := map[int]int{}
	hangUp := func(fd int) {
		p, ok := peer[fd]
		if !ok {
			return
		}
		delete(peer, fd)
		delete(peer, p)
		closeAll([]int{fd, p}) // closing removes them from the epoll set
	}
	add := func(fd int) error {
		return unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)})
	}
	accept := func() {
		for {
			c, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			if len(spare) == 0 {
				_ = unix.Close(c)
				continue
			}
			d := spare[0]
			spare = spare[1:]
			a := target.Addr().As4()
			if err := unix.Connect(d, &unix.SockaddrInet4{Port: int(target.Port()), Addr: a}); err != nil {
				closeAll([]int{c, d})
				continue
			}
			for _, fd := range []int{c, d} {
				_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			}
			_ = unix.SetNonblock(d, true)
			peer[c], peer[d] = d, c
			if add(c) != nil || add(d) != nil {
				hangUp(c)
			}
		}
	}
	// write writes all of p to fd, polling while its send buffer is full (the answers here
	// are a few hundred bytes: it never is in practice) until the relay stops.
	write := func(fd int, p []byte) error {
		for len(p) > 0 {
			select {
			case <-stop:
				return net.ErrClosed
			default:
			}
			n, err := unix.Write(fd, p)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	}
	go func() {
		defer close(done)
		evs := make([]unix.EpollEvent, 64)
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			wait := 10
			if r.active.Load() {
				wait = 0
			}
			n, err := unix.EpollWait(ep, evs, wait)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			for _, ev := range evs[:max(n, 0)] {
				fd := int(ev.Fd)
				if fd == lfd {
					accept()
					continue
				}
				p, ok := peer[fd]
				if !ok {
					continue
				}
				for {
					m, err := unix.Read(fd, buf)
					if errors.Is(err, unix.EAGAIN) {
						break
					}
					if m <= 0 || err != nil || write(p, buf[:m]) != nil {
						hangUp(fd)
						break
					}
				}
			}
		}
	}()
	b.Cleanup(func() {
		close(stop)
		<-done
		for fd := range peer {
			_ = unix.Close(fd)
		}
		closeAll(spare)
		_ = unix.Close(ep)
		_ = lf.Close()
	})
	return r
}
