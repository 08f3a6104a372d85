package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// crashedLog leaves in dir the log of a store that assigned owners 0..n-1 with lazy sync and
// then died without Close (no trim: the zeroed space follows), and returns the log's bytes and
// the offset at which each owner's assign record starts.
func crashedLog(t *testing.T, dir string, n int) ([]byte, []int64) {
	t.Helper()
	s, err := Open(dir, Options{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, n)
	starts := make([]int64, n)
	for i := range n {
		starts[i] = s.wal.Size()
		if _, _, err := s.Assign(owner(i), wire.PodRef{}, t0, 0); err != nil {
			t.Fatal(err)
		}
	}
	s.wal.File().Close()
	s.lock.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "wal.log"))
	if err != nil {
		t.Fatal(err)
	}
	return raw, starts
}

// logBuffer collects a store's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func currentBootID(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(bootIDPath)
	if err != nil {
		t.Fatalf("read %s (%v): these tests need /proc mounted", bootIDPath, err)
	}
	return strings.TrimSpace(string(raw))
}

// powerLoss is the damage a machine crash can leave in a log whose tail was not synced: blocks
// of it reach the disk in any order. keep is how many owners' assignments stay readable
// before the damage; later is how many valid assign records still follow it.
var powerLoss = []struct {
	name   string
	damage func(raw []byte, starts []int64) []byte
	keep   int
	later  int
}{
	{"hole of zeros before later records", func(raw []byte, st []int64) []byte {
		clear(raw[st[5]:st[8]]) // a block that never reached the disk; 8.. did
		return raw
	}, 5, 11},
	{"hole in the middle of a record", func(raw []byte, st []int64) []byte {
		clear(raw[st[5]+7 : st[7]+20])
		return raw
	}, 5, 12},
	{"torn block of garbage before later records", func(raw []byte, st []int64) []byte {
		for i := st[3]; i < st[4]; i++ {
			raw[i] = 0xa5
		}
		return raw
	}, 3, 15},
	{"the first block lost", func(raw []byte, st []int64) []byte {
		clear(raw[:st[2]+3]) // the interface and its addresses too
		return raw
	}, 0, 17},
}

// TestPowerLossWithNewBootCutsTheLog: after a reboot, a log damaged before its last record is
// cut at the damage; the records before it are replayed, none after it, the cut is reported,
// and the store works on (and reopens cleanly in the new boot).
func TestPowerLossWithNewBootCutsTheLog(t *testing.T) {
	for _, tc := range powerLoss {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			raw, starts := crashedLog(t, dir, 20)
			if err := os.WriteFile(filepath.Join(dir, "wal.log"), tc.damage(raw, starts), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, bootIDFile), []byte("00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			s, err := Open(dir, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), SyncInterval: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("open after a power loss in an earlier boot: %v; want the log cut at the damage", err)
			}
			for i := range 20 {
				if _, ok := s.ByOwner(owner(i)); ok != (i < tc.keep) {
					t.Errorf("owner %d held: %v; want %v (only the %d assignments before the damage)", i, ok, i < tc.keep, tc.keep)
				}
			}
			msg := logs.String()
			for _, want := range []string{"cutting the log at the damage", "discardedRecords=" + strconv.Itoa(tc.later), "discardedBytes="} {
				if !strings.Contains(msg, want) {
					t.Errorf("log does not report %q:\n%s", want, msg)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(dir, bootIDFile)); strings.TrimSpace(string(got)) != currentBootID(t) {
				t.Errorf("boot ID file holds %q after open; want this boot's", got)
			}
			if tc.keep > 0 {
				if _, _, err := s.Assign(owner(100), wire.PodRef{}, t0, 0); err != nil {
					t.Fatalf("assign after the cut: %v", err)
				}
			}
			want := s.View()
			s.Close()
			r := open(t, dir) // same boot now, and a clean log
			if len(r.View().Addresses) != len(want.Addresses) {
				t.Fatalf("reopen in the same boot: %d addresses, want %d", len(r.View().Addresses), len(want.Addresses))
			}
		})
	}
}

// TestDamageInTheSameBootIsRefused: the same damage without a reboot between (only the process
// can have died, and the page cache kept the log whole) is corruption, refused with the message
// that says what to do; also when no boot ID was recorded (a log of an older ipamd, which
// synced every record). The log is left as it was.
func TestDamageInTheSameBootIsRefused(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		for _, tc := range powerLoss {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				raw, starts := crashedLog(t, dir, 20)
				damaged := tc.damage(raw, starts)
				walPath := filepath.Join(dir, "wal.log")
				if err := os.WriteFile(walPath, damaged, 0o600); err != nil {
					t.Fatal(err)
				}
				if !recorded {
					os.Remove(filepath.Join(dir, bootIDFile))
				}
				_, err := Open(dir, Options{SyncInterval: 100 * time.Millisecond})
				if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "move it aside") {
					t.Fatalf("open of a damaged log in the same boot (boot ID recorded: %v): %v; want it refused as corrupt", recorded, err)
				}
				if got, _ := os.ReadFile(walPath); !bytes.Equal(got, damaged) {
					t.Fatal("the refused log was changed")
				}
			})
		}
	}
}

// TestZeroedTailOpensInAnyBoot: a tail lost from some offset on, with nothing valid after it,
// is a write cut short: every record before it is kept, rebooted or not.
func TestZeroedTailOpensInAnyBoot(t *testing.T) {
	for _, rebooted := range []bool{false, true} {
		dir := t.TempDir()
		raw, starts := crashedLog(t, dir, 10)
		clear(raw[starts[6]+11:])
		if err := os.WriteFile(filepath.Join(dir, "wal.log"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if rebooted {
			os.WriteFile(filepath.Join(dir, bootIDFile), []byte("another-boot\n"), 0o600)
		}
		s := open(t, dir)
		for i := range 10 {
			if _, ok := s.ByOwner(owner(i)); ok != (i < 6) {
				t.Fatalf("rebooted %v: owner %d held %v; want only 0-5", rebooted, i, ok)
			}
		}
	}
}

// TestSyncModes: with a zero interval a write returns synced (the old semantics, one sync per
// lone write); with an interval it returns written and a background flush syncs it, once for
// many writes; Close syncs what is left.
func TestSyncModes(t *testing.T) {
	state := func(s *Store) (committed, synced uint64, syncs int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.committedSeq, s.syncedSeq, s.syncs
	}
	t.Run("zero syncs every write", func(t *testing.T) {
		s := open(t, t.TempDir())
		seed(t, s, 10)
		for i := range 10 {
			_, _, before := state(s)
			if _, _, err := s.Assign(owner(i), wire.PodRef{}, t0, 0); err != nil {
				t.Fatal(err)
			}
			committed, synced, after := state(s)
			if synced != committed || after != before+1 {
				t.Fatalf("after assign %d: committed %d, synced %d, %d syncs (was %d); want synced and one sync", i, committed, synced, after, before)
			}
		}
	})
	t.Run("interval flushes in the background", func(t *testing.T) {
		s, err := Open(t.TempDir(), Options{SyncInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		seed(t, s, 20)
		for i := range 20 {
			if _, _, err := s.Assign(owner(i), wire.PodRef{}, t0, 0); err != nil {
				t.Fatal(err)
			}
		}
		committed, _, _ := state(s)
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, synced, syncs := state(s)
			if synced >= committed {
				if c != committed || syncs < 1 {
					t.Fatalf("synced %d with %d syncs; committed %d then %d", synced, syncs, committed, c)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("record %d written 30s ago is still not synced (synced %d)", committed, synced)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("close syncs", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, Options{SyncInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		seed(t, s, 3)
		a, _, _ := s.Assign(owner(1), wire.PodRef{}, t0, 0)
		if committed, synced, _ := state(s); synced == committed {
			t.Fatal("with an hour's interval the assignment was synced at once")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r := open(t, dir)
		if got, ok := r.ByOwner(owner(1)); !ok || got.IP != a.IP {
			t.Fatalf("after Close and reopen: %v %v; want %s", got.IP, ok, a.IP)
		}
	})
}

// TestFailedBackgroundSyncStopsTheStore: a failed background fdatasync is logged as an error and
// stops every later write, like a failed write.
func TestFailedBackgroundSyncStopsTheStore(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	s, err := Open(dir, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, 3)
	if _, _, err := s.Assign(owner(0), wire.PodRef{}, t0, 0); err != nil {
		t.Fatal(err)
	}
	s.wal.File().Close() // the disk goes away under the store
	s.flushNow()
	if !errors.Is(s.Err(), ErrFailed) {
		t.Fatalf("Err() after a failed background sync = %v; want ErrFailed", s.Err())
	}
	if _, _, err := s.Assign(owner(1), wire.PodRef{}, t0, 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failed background sync: %v; want ErrFailed", err)
	}
	if msg := logs.String(); !strings.Contains(msg, "level=ERROR") || !strings.Contains(msg, "may not be on disk") {
		t.Fatalf("the failed sync was not logged as an error that says what it risks:\n%s", msg)
	}
	s.lock.Close()
	r := open(t, dir) // the process lives on: the page cache still has the record
	if _, ok := r.ByOwner(owner(0)); !ok {
		t.Fatal("the assignment acknowledged before the failed sync is gone")
	}
}
