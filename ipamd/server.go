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
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// requestTimeout bounds reading a request; answering an allocation may take AllocWait more.
const requestTimeout = 5 * time.Second

// listenSocket makes the plugin's socket: parent directory 0700, socket 0600, any stale socket
// of an earlier run replaced.
func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return ln, nil
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
// side first.
func (d *Daemon) serveConn(ctx context.Context, conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(requestTimeout))
	var raw json.RawMessage
	var resp *wire.Response
	if err := json.NewDecoder(io.LimitReader(conn, wire.MaxMessage)).Decode(&raw); err != nil {
		resp = &wire.Response{Version: wire.Version, Error: wireErr(wire.CodeInvalid, "request is not one JSON value: %v", err)}
		d.m.allocs.WithLabelValues("unknown", wire.CodeInvalid).Inc()
	} else {
		resp = d.Handle(ctx, raw)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		d.log.Debug("answer the plugin", "err", err)
	}
}

// Handle decodes and serves one request body; every failure is an answer with a wire error.
func (d *Daemon) Handle(ctx context.Context, body []byte) *wire.Response {
	resp := &wire.Response{Version: wire.Version}
	req, err := wire.DecodeRequest(body)
	op := "unknown"
	if err == nil {
		op = req.Op
		err = d.dispatch(ctx, req, resp)
	}
	code := "ok"
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wireErr(wire.CodeInternal, "%v", err)
		}
		resp = &wire.Response{Version: wire.Version, Error: we}
		code = we.Code
	}
	d.m.allocs.WithLabelValues(op, code).Inc()
	return resp
}

func (d *Daemon) dispatch(ctx context.Context, req *wire.Request, resp *wire.Response) error {
	var err error
	switch req.Op {
	case wire.OpAllocate:
		resp.Allocation, err = d.Allocate(ctx, req.Allocate)
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
	return err
}
