package ipamd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestAllocateUntilFullThenReuseAfterCooldown: a t3.small holds 3 x (4-1) = 9 pod addresses;
// the tenth allocation is refused as full with the reason; released addresses come back only
// after their cooldown, least recently released first.
func TestAllocateUntilFullThenReuseAfterCooldown(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	// Long enough that a loaded machine's stall between the release and the next allocation
	// does not end it; the check below says so when one did anyway.
	// Long enough that no stall of a loaded machine between the release and the allocation
	// below can outlast it.
	cfg.Cooldown = 12 * time.Second
	cfg.AllocWait = 500 * time.Millisecond
	start(t, cfg)
	ctx := context.Background()
	held := map[string]bool{}
	ips := map[int]string{}
	for i := range 9 {
		a, err := allocate(ctx, cfg.SocketPath, owner(i))
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if held[a.IP.String()] {
			t.Fatalf("%s handed out twice", a.IP)
		}
		held[a.IP.String()] = true
		ips[i] = a.IP.String()
		if again, err := allocate(ctx, cfg.SocketPath, owner(i)); err != nil || again.IP != a.IP {
			t.Fatalf("repeated allocation of %d: %v %v; want %s", i, again, err, a.IP)
		}
	}
	_, err := allocate(ctx, cfg.SocketPath, owner(100))
	if !isCode(err, wire.CodeFull) || !strings.Contains(err.Error(), "9 of the 9 pod addresses") {
		t.Fatalf("tenth allocation: %v; want full with the reason", err)
	}
	if got := cloudAssigned(t, n); len(got) != 9 {
		t.Fatalf("cloud assigns %d addresses; want 9", len(got))
	}
	// Release 3 then 5: 3 is the least recently released.
	released := time.Now()
	for _, i := range []int{3, 5} {
		if r, err := release(ctx, cfg.SocketPath, owner(i)); err != nil || !r.Released {
			t.Fatalf("release %d: %v %v", i, r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := allocate(ctx, cfg.SocketPath, owner(101)); !isCode(err, wire.CodeFull) {
		t.Fatalf("allocation %v after the releases, during their %v cooldown: %v; want full (the released addresses are cooling)",
			time.Since(released).Round(time.Millisecond), cfg.Cooldown, err)
	}
	time.Sleep(time.Until(released.Add(cfg.Cooldown + 200*time.Millisecond))) // both releases have cooled
	a, err := allocate(ctx, cfg.SocketPath, owner(102))
	if err != nil || a.IP.String() != ips[3] {
		t.Fatalf("after the cooldown got %v (%v); want %s, the least recently released", a, err, ips[3])
	}
	b, err := allocate(ctx, cfg.SocketPath, owner(103))
	if err != nil || b.IP.String() != ips[5] {
		t.Fatalf("then got %v (%v); want %s", b, err, ips[5])
	}
	if r, err := release(ctx, cfg.SocketPath, owner(999)); err != nil || r.Released {
		t.Fatalf("release of an unknown owner: %v %v; want success with released=false", r, err)
	}
}
