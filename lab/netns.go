package lab

import (
	"context"
	"net"
	"os/exec"
	"time"

	"github.com/flatnet/flatnet/internal/netns"
)

// inNetns runs fn on a thread inside the named namespace. Processes started by fn inherit it.
// Whoever makes a namespace (the fabric, ip netns add) creates its file a moment before mounting
// the namespace on it, so this waits for the mount, briefly.
func inNetns(name string, fn func() error) error {
	if err := netns.Await(name, 3*time.Second); err != nil {
		return err
	}
	return netns.Do(name, fn)
}

// Dialer returns a dial function whose sockets live in the named namespace, for HTTP clients
// and probes run from the host process (the root namespace is never routed into the lab).
func Dialer(name string, local net.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetns(name, func() error {
			var derr error
			d := net.Dialer{LocalAddr: local}
			conn, derr = d.DialContext(ctx, network, addr)
			return derr
		})
		return conn, err
	}
}

// StartInNetns starts cmd inside the named namespace (the lab's internet, say): the process and
// everything it dials live there from its first instruction, so a program that is not the lab's
// (a test suite) reaches the lab's addresses without a route from the host.
func StartInNetns(name string, cmd *exec.Cmd) error {
	return inNetns(name, cmd.Start)
}
