package cni_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// fakeIpamd serves ipamd/wire on a unix socket, handing out addresses from a range, until the
// real ipamd lands. Failures are switchable: stop the server (unreachable), answer allocate with
// an error code, report not ready.
type fakeIpamd struct {
	t    testing.TB
	path string

	mu       sync.Mutex
	ln       net.Listener
	next     netip.Addr
	allocs   map[wire.Owner]wire.Allocation
	free     []netip.Addr
	tableFor func(netip.Addr) int // route table of an address; nil: main
	mtu      int
	allocErr *wire.Error
	status   wire.StatusResponse
	requests map[string]int
	hangUp   map[string]bool // ops answered by closing the connection, as a crashing ipamd would
	// answerAs, when set, makes allocate and check answer with that owner's allocation, as an
	// ipamd whose owner key collided did.
	answerAs *wire.Owner
	wg       sync.WaitGroup
	up       bool
}

func newFakeIpamd(t testing.TB, first string) *fakeIpamd {
	t.Helper()
	f := &fakeIpamd{
		t:        t,
		path:     filepath.Join(t.TempDir(), "ipamd.sock"),
		next:     netip.MustParseAddr(first),
		allocs:   map[wire.Owner]wire.Allocation{},
		mtu:      9001,
		status:   wire.StatusResponse{Ready: true, Free: 10, Capacity: 30},
		requests: map[string]int{},
	}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeIpamd) start() {
	f.t.Helper()
	_ = os.Remove(f.path)
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		f.t.Fatalf("fake ipamd: listen on %s: %v", f.path, err)
	}
	f.mu.Lock()
	f.ln, f.up = ln, true
	f.mu.Unlock()
	f.wg.Add(1)
	go f.serve(ln)
}

func (f *fakeIpamd) listening() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up
}

// stop closes the socket: the plugin then finds ipamd unreachable.
func (f *fakeIpamd) stop() {
	f.mu.Lock()
	ln, was := f.ln, f.up
	f.up = false
	f.mu.Unlock()
	if was {
		_ = ln.Close()
		f.wg.Wait()
		_ = os.Remove(f.path)
	}
}

func (f *fakeIpamd) serve(ln net.Listener) {
	defer f.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			body, err := io.ReadAll(io.LimitReader(conn, wire.MaxMessage))
			if err != nil {
				return
			}
			if resp := f.handle(body); resp != nil {
				_ = json.NewEncoder(conn).Encode(resp)
			}
		}()
	}
}

func (f *fakeIpamd) handle(body []byte) *wire.Response {
	resp := &wire.Response{Version: wire.Version}
	req, err := wire.DecodeRequest(body)
	if err != nil {
		var we *wire.Error
		errors.As(err, &we)
		resp.Error = we
		return resp
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[req.Op]++
	if f.hangUp[req.Op] {
		return nil
	}
	switch req.Op {
	case wire.OpAllocate:
		f.allocate(req.Allocate, resp)
	case wire.OpRelease:
		a, ok := f.allocs[req.Release.Owner]
		resp.Release = &wire.ReleaseResponse{Released: ok}
		if ok {
			resp.Release.IP, resp.Release.Owner = a.IP, a.Owner
			delete(f.allocs, req.Release.Owner)
			f.free = append(f.free, a.IP)
		}
	case wire.OpCheck:
		if f.answerAs != nil {
			req.Check.Owner = *f.answerAs
		}
		if a, ok := f.allocs[req.Check.Owner]; ok {
			resp.Allocation = &a
		} else {
			resp.Error = &wire.Error{Code: wire.CodeNotFound, Message: "no allocation for " + req.Check.Owner.Key()}
		}
	case wire.OpStatus:
		st := f.status
		resp.Status = &st
	case wire.OpGC:
		resp.GC = f.gc(req.GC)
	}
	return resp
}

func (f *fakeIpamd) allocate(req *wire.AllocateRequest, resp *wire.Response) {
	if f.allocErr != nil {
		e := *f.allocErr
		resp.Error = &e
		return
	}
	if f.answerAs != nil {
		if a, ok := f.allocs[*f.answerAs]; ok {
			resp.Allocation = &a
			return
		}
	}
	if a, ok := f.allocs[req.Owner]; ok {
		resp.Allocation = &a
		return
	}
	var ip netip.Addr
	if n := len(f.free); n > 0 {
		ip, f.free = f.free[n-1], f.free[:n-1]
	} else {
		ip, f.next = f.next, f.next.Next()
	}
	a := wire.Allocation{Owner: req.Owner, Pod: req.Pod, IP: ip, MTU: f.mtu}
	if f.tableFor != nil {
		a.RouteTable = f.tableFor(ip)
		if a.RouteTable != 0 {
			a.DeviceIndex = 1
		}
	}
	f.allocs[req.Owner] = a
	resp.Allocation = &a
}

func (f *fakeIpamd) gc(req *wire.GCRequest) *wire.GCResponse {
	valid := map[wire.Owner]bool{}
	for _, o := range req.Valid {
		valid[o] = true
	}
	out := &wire.GCResponse{Released: []wire.Allocation{}}
	for o, a := range f.allocs {
		if o.Network == req.Network && !valid[o] {
			out.Released = append(out.Released, a)
			delete(f.allocs, o)
			f.free = append(f.free, a.IP)
		}
	}
	return out
}

// allocations returns a copy of what the fake holds.
func (f *fakeIpamd) allocations() map[wire.Owner]wire.Allocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[wire.Owner]wire.Allocation, len(f.allocs))
	for k, v := range f.allocs {
		out[k] = v
	}
	return out
}

func (f *fakeIpamd) set(fn func(f *fakeIpamd)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}
