package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/flatnet/flatnet/internal/netns"
)

// RunPortForward listens on listen (loopback) and relays every connection to target, dialed
// from inside the named namespace, until ctx ends. It is how the host reaches a server in the
// lab: the root namespace gets a loopback socket, never a route into the lab's addresses.
func RunPortForward(ctx context.Context, log *slog.Logger, netnsName, listen, target string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: a port-forward listens on a loopback address only", listen)
	}
	if _, err := os.Stat(netns.Path(netnsName)); err != nil {
		return fmt.Errorf("the namespace to forward into: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s (is another lab or program using it?): %w", listen, err)
	}
	log = log.With("listen", listen, "netns", netnsName, "target", target)
	log.Info("port-forward ready")
	dial := Dialer(netnsName, nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			log.Warn("accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			relay(ctx, log, c, dial, target)
		}()
	}
}

// relay copies between the accepted connection and a fresh one to target, each direction
// half-closing the other side when its source ends.
func relay(ctx context.Context, log *slog.Logger, c net.Conn, dial func(context.Context, string, string) (net.Conn, error), target string) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		log.Warn("dial the target", "client", c.RemoteAddr().String(), "err", err)
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
