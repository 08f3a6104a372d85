package ipamd_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// goneChecker says every pod is gone (no link carries the plugin's tag, as while the plugin is
// still wiring) and records when it was asked about whom.
type goneChecker struct {
	mu    sync.Mutex
	asked map[wire.Owner]time.Time
}

func (g *goneChecker) Alive(_ context.Context, owners []wire.Owner) (map[wire.Owner]bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range owners {
		if _, ok := g.asked[o]; !ok {
			g.asked[o] = time.Now()
		}
	}
	return map[wire.Owner]bool{}, nil
}

func (g *goneChecker) firstAsked(o wire.Owner) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.asked[o]
	return at, ok
}

func check(ctx context.Context, socket string, o wire.Owner) (*wire.Allocation, error) {
	resp, err := wire.Call(ctx, socket, &wire.Request{Op: wire.OpCheck, Check: &wire.CheckRequest{Owner: o}})
	if err != nil {
		return nil, err
	}
	return resp.Allocation, nil
}

// TestStartPodCheckSparesAllocationsBeingWired: ipamd restarts right after answering an
// allocate, before the plugin tagged the pod's link. The start-up pod check must not release
// that address (the plugin is wiring a pod with it); it judges it once PodCheckGrace passed.
// With no grace the same allocation is released at start, as for a pod that is really gone.
func TestStartPodCheckSparesAllocationsBeingWired(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	ctx := context.Background()
	_, stop := startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	young, err := allocate(ctx, cfg.SocketPath, owner(1))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	allocatedAt := time.Now()

	cfg.PodCheckGrace = 3 * time.Second
	pods := &goneChecker{asked: map[wire.Owner]time.Time{}}
	_, stop = startWith(t, cfg, ipamd.Deps{Clouds: clouds, Pods: pods})
	if a, err := check(ctx, cfg.SocketPath, owner(1)); err != nil || a.IP != young.IP {
		t.Fatalf("after restart, check of the allocation being wired: %v %v; want %s still held", a, err, young.IP)
	}
	deadline := time.Now().Add(cfg.PodCheckGrace + 10*time.Second)
	for {
		_, err := check(ctx, cfg.SocketPath, owner(1))
		if isCode(err, wire.CodeNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("allocation of a gone pod still held %v after the grace: %v", cfg.PodCheckGrace, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	at, ok := pods.firstAsked(owner(1))
	if !ok || at.Sub(allocatedAt) < cfg.PodCheckGrace {
		t.Fatalf("checker asked about the allocation %v after it was made (asked: %v); want >= %v", at.Sub(allocatedAt), ok, cfg.PodCheckGrace)
	}
	stop()

	// A zero grace judges at start: the checker still releases gone pods before ipamd serves.
	_, stop = startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	if _, err := allocate(ctx, cfg.SocketPath, owner(2)); err != nil {
		t.Fatal(err)
	}
	stop()
	cfg.PodCheckGrace = 0
	startWith(t, cfg, ipamd.Deps{Clouds: clouds, Pods: &goneChecker{asked: map[wire.Owner]time.Time{}}})
	if a, err := check(ctx, cfg.SocketPath, owner(2)); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("with no grace, check after restart: %v %v; want not found (released at start)", a, err)
	}
}
