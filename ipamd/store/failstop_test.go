package store

import (
	"errors"
	"testing"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestFailedWriteStopsTheStore: once a write of the log fails, that write and every later one
// is refused (nothing is acknowledged that might not be durable), and a reopen replays exactly
// the acknowledged writes; writes work again after it, with no sequence reused.
func TestFailedWriteStopsTheStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, 5)
	a0, _, err := s.Assign(owner(0), wire.PodRef{}, t0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.wal.File().Close() // the disk goes away under the store
	if _, _, err := s.Assign(owner(1), wire.PodRef{}, t0, time.Second); !errors.Is(err, ErrFailed) {
		t.Fatalf("write on a failing log: %v; want ErrFailed", err)
	}
	if _, _, err := s.Release(owner(0), t0); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failed one: %v; want it refused with ErrFailed", err)
	}
	if !errors.Is(s.Err(), ErrFailed) {
		t.Fatalf("Err() = %v; want ErrFailed", s.Err())
	}
	if _, ok := s.ByOwner(owner(1)); ok {
		t.Fatal("readers see the refused assignment")
	}
	s.lock.Close() // the process ends

	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after a failed write: %v", err)
	}
	if a, ok := r.ByOwner(owner(0)); !ok || a.IP != a0.IP {
		t.Fatalf("acknowledged assignment after reopen: %v %v; want %s", a, ok, a0.IP)
	}
	if _, ok := r.ByOwner(owner(1)); ok {
		t.Fatal("the refused assignment came back on reopen")
	}
	a2, _, err := r.Assign(owner(2), wire.PodRef{}, t0, time.Second)
	if err != nil {
		t.Fatalf("write after reopen: %v", err)
	}
	r.Close()
	r = open(t, dir)
	for o, ip := range map[wire.Owner]any{owner(0): a0.IP, owner(2): a2.IP} {
		if a, ok := r.ByOwner(o); !ok || a.IP != ip {
			t.Fatalf("after the second reopen %s holds %v (%v); want %v", o.Key(), a.IP, ok, ip)
		}
	}
}
