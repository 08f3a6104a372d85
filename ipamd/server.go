package ipamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// requestTimeout bounds reading a request; answering an allocation may take AllocWait more.
const requestTimeout = 5 * time.Second

// listenSocket makes the plugin's socket, mode 0600 from the start: it is bound in a private
// (0700) directory next to path, chmod'ed there, then renamed over path, which also replaces a
// stale socket of an earlier run atomically. The parent directory is created 0700; an existing
// one must not be writable by others (they could replace the socket with their own).
func listenSocket(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := checkSocketDir(dir); err != nil {
		return nil, err
	}
	private, err := os.MkdirTemp(dir, ".sock")
	if err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	defer os.RemoveAll(private)
	bound := filepath.Join(private, "s")
	ln, err := net.Listen("unix", bound)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // the path it was bound at will not exist
	if err := os.Chmod(bound, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod the socket: %w", err)
	}
	if err := os.Rename(bound, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("put the socket at %s: %w", path, err)
	}
	return &unlinkOnClose{Listener: ln, path: path}, nil
}

// checkSocketDir refuses a socket directory another user owns or may write to (unless it is
// sticky, as /tmp is: then others cannot replace what is ours).
func checkSocketDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("socket directory %s is not a directory", dir)
	case ok && st.Uid != uint32(os.Geteuid()) && st.Uid != 0:
		return fmt.Errorf("socket directory %s belongs to uid %d: use a directory of ipamd's user or root (--socket)", dir, st.Uid)
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
		return fmt.Errorf("socket directory %s has mode %v: others could replace the socket; chmod go-w it or choose another --socket", dir, fi.Mode().Perm())
	}
	return nil
}

// unlinkOnClose removes the socket at path when the listener closes.
type unlinkOnClose struct {
	net.Listener
	path string
	once sync.Once
}

func (l *unlinkOnClose) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

func (d *Daemon) serveSocket(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				d.log.Warn("accept on the plugin socket", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			d.serveConn(ctx, conn)
		}()
	}
}

// serveConn answers one request. The request is one JSON value; the client need not close its
// side first. While it is served the connection is watched: when the plugin hangs up (its
// timeout passed) a waiting allocation gives up, and one made meanwhile is given back.
func (d *Daemon) serveConn(ctx context.Context, conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	var raw json.RawMessage
	if err := json.NewDecoder(io.LimitReader(conn, wire.MaxMessage)).Decode(&raw); err != nil {
		d.m.allocs.WithLabelValues("unknown", wire.CodeInvalid).Inc()
		d.answer(conn, &wire.Response{Version: wire.Version, Error: wireErr(wire.CodeInvalid, "request is not one JSON value: %v", err)})
		return
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watch := watchHangup(conn, cancel)
	resp, fresh := d.handle(ctx, raw)
	answered := !watch.Gone() && d.answer(conn, resp)
	watch.Stop() // after the answer: the plugin does not wait for it
	if !answered && fresh {
		d.giveBack(resp.Allocation)
	}
}

// answer writes resp; false when the plugin could not be told.
func (d *Daemon) answer(conn net.Conn, resp *wire.Response) bool {
	_ = conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		d.log.Debug("answer the plugin", "err", err)
		return false
	}
	return true
}

// Handle decodes and serves one request body; every failure is an answer with a wire error.
func (d *Daemon) Handle(ctx context.Context, body []byte) *wire.Response {
	resp, _ := d.handle(ctx, body)
	return resp
}

// handle is Handle that also says whether the answer is an allocation this request made.
func (d *Daemon) handle(ctx context.Context, body []byte) (*wire.Response, bool) {
	resp := &wire.Response{Version: wire.Version}
	req, err := wire.DecodeRequest(body)
	op, fresh := "unknown", false
	if err == nil {
		op = req.Op
		fresh, err = d.dispatch(ctx, req, resp)
	}
	code := "ok"
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wireErr(wire.CodeInternal, "%v", err)
		}
		resp, fresh = &wire.Response{Version: wire.Version, Error: we}, false
		code = we.Code
	}
	d.m.allocs.WithLabelValues(op, code).Inc()
	return resp, fresh
}

func (d *Daemon) dispatch(ctx context.Context, req *wire.Request, resp *wire.Response) (fresh bool, err error) {
	switch req.Op {
	case wire.OpAllocate:
		resp.Allocation, fresh, err = d.allocateObserved(ctx, req.Allocate)
	case wire.OpRelease:
		resp.Release, err = d.Release(req.Release.Owner)
	case wire.OpCheck:
		resp.Allocation, err = d.Check(req.Check.Owner)
	case wire.OpStatus:
		resp.Status = d.Status()
	case wire.OpGC:
		resp.GC, err = d.GC(req.GC)
	default:
		err = wireErr(wire.CodeInvalid, "op %q is not served", req.Op)
	}
	return fresh, err
}
