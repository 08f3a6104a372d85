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
// hang-up (POLLHUP) counts. The wait sits in the runtime's netpoller, not on a thread. stop ends
// the watch and says whether the plugin hung up.
func watchHangup(conn net.Conn, cancel context.CancelCauseFunc) (stop func() bool) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return func() bool { return false }
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return func() bool { return false }
	}
	var gone atomic.Bool
	done := make(chan struct{})
	_ = conn.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		_ = rc.Read(func(fd uintptr) bool {
			if hungUp(fd) {
				gone.Store(true)
				cancel(errClientGone)
				return true
			}
			return false // readable (the half-close) but still there: wait for the next event
		})
	}()
	return func() bool {
		_ = conn.SetReadDeadline(time.Now()) // ends the wait
		<-done
		return gone.Load()
	}
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
