package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// inNetns runs fn on a thread inside the named namespace. Processes started by fn inherit it.
func inNetns(name string, fn func() error) error {
	h, err := openNetns(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(func(ns.NetNS) error { return fn() })
}

// openNetns opens a named namespace. Whoever makes one (the fabric, ip netns add) creates its
// file a moment before mounting the namespace on it; in that moment the file is not a
// namespace yet, so this waits for the mount, briefly.
func openNetns(name string) (ns.NetNS, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		h, err := ns.GetNS(netnsPath(name))
		if err == nil {
			return h, nil
		}
		var notNS ns.NSPathNotNSErr
		if !errors.As(err, &notNS) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open namespace %s: %w", name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// createNetns makes a persistent named namespace with its loopback up. It fails if the name is
// taken.
func createNetns(name string) error {
	if _, err := os.Stat(netnsPath(name)); err == nil {
		return fmt.Errorf("namespace %s already exists", name)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("read the current namespace: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		_ = netns.Set(orig)
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	defer h.Close()
	lo, lerr := netlink.LinkByName("lo")
	if lerr == nil {
		lerr = netlink.LinkSetUp(lo)
	}
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never give it back to the scheduler.
		runtime.Goexit()
	}
	if lerr != nil {
		return fmt.Errorf("bring up lo in %s: %w", name, lerr)
	}
	return nil
}

// deleteNetns removes a named namespace; a missing one is fine.
func deleteNetns(name string) error {
	err := netns.DeleteNamed(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// listNetns returns the names of the namespaces starting with prefix.
func listNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
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
