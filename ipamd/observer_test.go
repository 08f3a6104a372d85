package ipamd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// recorder is an Observer that keeps what it heard.
type recorder struct {
	mu       sync.Mutex
	capacity int
	reports  []ipamd.PoolReport
	failed   []wire.PodRef
}

func (r *recorder) Serving(c int) { r.mu.Lock(); r.capacity = c; r.mu.Unlock() }
func (r *recorder) PoolChanged(p ipamd.PoolReport) {
	r.mu.Lock()
	r.reports = append(r.reports, p)
	r.mu.Unlock()
}
func (r *recorder) AllocationFailed(p wire.PodRef, _ error) {
	r.mu.Lock()
	r.failed = append(r.failed, p)
	r.mu.Unlock()
}

// TestConflistOnlyOnceServing: the runtime must not find a conflist (and report the node's
// network ready) while ipamd cannot serve; once it serves, the conflist is valid and points
// the plugin at this ipamd.
func TestConflistOnlyOnceServing(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "m5.large")
	dir := t.TempDir()
	cfg := n.config(dir)
	cfg.CNIConfDir = filepath.Join(dir, "net.d")
	cfg.CNILogFile = filepath.Join(dir, "cni.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := ipamd.New(ctx, cfg, ipamd.Deps{Clouds: clouds})
	if err != nil {
		t.Fatal(err)
	}
	// The cloud fails every call: the start-up reconcile cannot finish.
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: "*", ErrorRate: 1, ErrorCode: "InternalError"}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	time.Sleep(time.Second)
	path := filepath.Join(cfg.CNIConfDir, ipamd.ConflistName)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("conflist present (or unreadable: %v) while ipamd cannot reconcile", err)
	}
	if _, err := env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no conflist 30 s after the cloud recovered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	conf, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatalf("the conflist does not parse: %v", err)
	}
	if conf.Name != ipamd.NetworkName || conf.CNIVersion != "1.1.0" || len(conf.Plugins) != 1 || conf.Plugins[0].Network.Type != "flatnet" {
		t.Fatalf("conflist %s", conf.Bytes)
	}
	if _, err := wire.Call(ctx, cfg.SocketPath, &wire.Request{Op: wire.OpStatus}); err != nil {
		t.Fatalf("conflist written but ipamd does not answer: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the conflist must stay when ipamd stops (a restart must not flap the node): %v", err)
	}
}

// TestObserverHearsCapacityExhaustionAndFailures: the Kubernetes side learns the capacity, that
// the node ran out, and which pod's ADD failed; STATUS stays ready on a full node.
func TestObserverHearsCapacityExhaustionAndFailures(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "m5.large")
	cfg := n.config(t.TempDir())
	cfg.Pool.MaxAddresses, cfg.Pool.WarmLow, cfg.Pool.WarmHigh = 2, 1, 2
	cfg.AllocWait = 2 * time.Second
	rec := &recorder{}
	startWith(t, cfg, ipamd.Deps{Clouds: clouds, Observer: rec})
	ctx := context.Background()
	for i := range 2 {
		if _, err := allocate(ctx, cfg.SocketPath, owner(i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := allocate(ctx, cfg.SocketPath, owner(2))
	if !isCode(err, wire.CodeFull) {
		t.Fatalf("third allocation: %v, want %s", err, wire.CodeFull)
	}
	rec.mu.Lock()
	capacity, failed := rec.capacity, append([]wire.PodRef(nil), rec.failed...)
	rec.mu.Unlock()
	if capacity != 2 {
		t.Errorf("capacity %d, want 2", capacity)
	}
	if len(failed) != 1 || failed[0].Name != owner(2).ContainerID {
		t.Errorf("failed allocations %+v, want the third pod's", failed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		var last ipamd.PoolReport
		if len(rec.reports) > 0 {
			last = rec.reports[len(rec.reports)-1]
		}
		rec.mu.Unlock()
		if last.Exhausted() && last.Assigned == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exhausted pool report; last %+v", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := wire.Call(ctx, cfg.SocketPath, &wire.Request{Op: wire.OpStatus})
	if err != nil || resp.Status == nil || !resp.Status.Ready {
		t.Fatalf("STATUS on a full node: %+v, %v; want ready (capacity is not availability)", resp, err)
	}
}
