package store

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// TestConcurrentWritersShareSyncs: concurrent assignments, fresh and repeated, are
// group-committed (fewer syncs than writes), every owner gets a distinct address, and all
// survive a reopen.
func TestConcurrentWritersShareSyncs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, 400)
	s.mu.Lock()
	before := s.syncs
	s.mu.Unlock()
	const writers, each = 8, 50
	got := make([][]netip.Addr, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				a, fresh, err := s.Assign(owner(w*each+i), wire.PodRef{}, t0, 0)
				if err != nil || !fresh {
					t.Errorf("assign: fresh %v, %v", fresh, err)
					return
				}
				got[w] = append(got[w], a.IP)
				// A repeat changes nothing, yet waits for durability among the others.
				if again, fresh, err := s.Assign(owner(w*each+i), wire.PodRef{}, t0, 0); err != nil || fresh || again.IP != a.IP {
					t.Errorf("repeated assign: %s fresh %v, %v; want %s", again.IP, fresh, err, a.IP)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	syncs := s.syncs - before
	s.mu.Unlock()
	if syncs >= writers*each {
		t.Errorf("%d syncs for %d concurrent fresh assignments: no group commit", syncs, writers*each)
	}
	t.Logf("%d syncs for %d fresh assignments and as many repeats", syncs, writers*each)
	s.Close()
	r := open(t, dir)
	seen := map[netip.Addr]bool{}
	for w := range writers {
		for i, ip := range got[w] {
			if seen[ip] {
				t.Fatalf("%s handed out twice", ip)
			}
			seen[ip] = true
			if a, ok := r.ByOwner(owner(w*each + i)); !ok || a.IP != ip {
				t.Fatalf("owner %d: want %s after reopen, store has %v %v", w*each+i, ip, a.IP, ok)
			}
		}
	}
}

// TestCrashLeavesPreallocatedTail: after a crash the log is followed by its zeroed space, maybe
// with a torn record in it; reopening keeps every record and cuts the rest.
func TestCrashLeavesPreallocatedTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, 3)
	a, _, err := s.Assign(owner(1), wire.PodRef{}, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := s.wal.Size()
	// A crash: no Close, so no trim. A torn record (its first sector lost) sits after the last.
	if _, err := s.wal.File().WriteAt([]byte("\x00\x00\x00\x00 \"op\":\"assign\"}\n"), off); err != nil {
		t.Fatal(err)
	}
	s.wal.File().Close()
	s.lock.Close()
	if st, _ := os.Stat(filepath.Join(dir, "wal.log")); st.Size() <= off {
		t.Fatalf("wal is %d bytes, want zeroed space after the %d bytes of records", st.Size(), off)
	}
	r := open(t, dir)
	if got, ok := r.ByOwner(owner(1)); !ok || got.IP != a.IP {
		t.Fatalf("acknowledged assignment lost: %v %v", got.IP, ok)
	}
	if _, _, err := r.Assign(owner(2), wire.PodRef{}, t0, 0); err != nil {
		t.Fatalf("assign after reopen: %v", err)
	}
}

// TestKillNineConcurrentWriters is the kill -9 test with several writers sharing writes and
// syncs, in every sync mode.
func TestKillNineConcurrentWriters(t *testing.T) {
	if arg := os.Getenv("STORE_CRASH_GROUP"); arg != "" {
		crashGroupWriter(arg)
		return
	}
	for _, mode := range syncModes {
		t.Run(mode.name, func(t *testing.T) {
			for round := range 3 {
				dir := t.TempDir()
				cmd, sc := crashChild(t, "TestKillNineConcurrentWriters", "STORE_CRASH_GROUP", dir, mode.interval)
				acked := map[int]string{}
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) == 2 {
						i, _ := strconv.Atoi(f[0])
						acked[i] = f[1]
					}
					if len(acked) == 60+round*90 {
						cmd.Process.Kill()
						break
					}
				}
				cmd.Wait()
				s := open(t, dir)
				held := map[netip.Addr]bool{}
				for _, a := range s.Addresses() {
					if !a.Free() {
						if held[a.IP] {
							t.Fatalf("%s held twice", a.IP)
						}
						held[a.IP] = true
					}
				}
				for i, ip := range acked {
					if a, ok := s.ByOwner(owner(i)); !ok || a.IP.String() != ip {
						t.Fatalf("round %d: acknowledged %d -> %s lost after kill -9 (store has %v %v)", round, i, ip, a.IP, ok)
					}
				}
				s.Close()
			}
		})
	}
}

func crashGroupWriter(arg string) {
	s := openChild(arg)
	s.PutInterface(Interface{ID: "eni-0", AddedAt: t0})
	s.AddAddresses("eni-0", netip.Prefix{}, addrs("10.0.0.10", 2000), t0)
	var out sync.Mutex
	for w := range 6 {
		go func() {
			for i := w; ; i += 6 {
				a, _, err := s.Assign(owner(i), wire.PodRef{}, t0, 0)
				if err != nil {
					os.Exit(3)
				}
				out.Lock()
				fmt.Printf("%d %s\n", i, a.IP)
				out.Unlock()
			}
		}()
	}
	select {}
}
