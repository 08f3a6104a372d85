package ipamd

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// errClientGone is a request's cancel cause when the plugin hangs up before its answer: its own
// timeout passed, so nobody will wire what the request would be given.
var errClientGone = errors.New("the plugin hung up before the answer (its timeout passed)")

// watchHangup cancels a request with errClientGone when the plugin closes its connection. The
// plugin half-closes after sending its request, so the end of input means nothing; only a full
// hang-up (POLLHUP) counts. The wait sits in the runtime's netpoller, not on a thread.
func watchHangup(conn net.Conn, cancel context.CancelCauseFunc) *hangupWatch {
	w := &hangupWatch{conn: conn}
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return w
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return w
	}
	w.done = make(chan struct{})
	_ = conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(w.done)
		_ = rc.Read(func(fd uintptr) bool {
			if hungUp(fd) {
				w.gone.Store(true)
				cancel(errClientGone)
				return true
			}
			return false // readable (the half-close) but still there: wait for the next event
		})
	}()
	return w
}

// hangupWatch is one connection's watch.
type hangupWatch struct {
	conn net.Conn
	gone atomic.Bool
	done chan struct{} // nil: nothing watched
}

// Gone says whether the plugin has hung up so far. It does not wait: the answer need not wait
// for the watch to end (a write to a socket whose peer is gone fails, which says the same).
func (w *hangupWatch) Gone() bool { return w.gone.Load() }

// Stop ends the watch and waits for it.
func (w *hangupWatch) Stop() {
	if w.done == nil {
		return
	}
	_ = w.conn.SetReadDeadline(time.Now()) // ends the wait
	<-w.done
}

// hungUp says whether the peer of the socket fd has closed it.
func hungUp(fd uintptr) bool {
	fds := []unix.PollFd{{Fd: int32(fd)}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
}

// giveBack releases an allocation made for a plugin that hung up before it got the answer; it
// would otherwise stay held until the runtime's DEL or CNI GC.
func (d *Daemon) giveBack(a *wire.Allocation) {
	cur, ok := d.store.ByOwner(a.Owner)
	if !ok || cur.IP != a.IP {
		return
	}
	if _, released, err := d.store.Release(a.Owner, time.Now()); err != nil {
		d.log.Warn("give back the address of a plugin that hung up", "owner", a.Owner.Key(), "ip", a.IP, "err", err)
	} else if released {
		d.log.Info("gave back an address: the plugin hung up before the answer", "owner", a.Owner.Key(), "ip", a.IP)
		d.poke()
	}
}
