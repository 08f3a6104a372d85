package store

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/ipamd/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func owner(i int) wire.Owner {
	return wire.Owner{Network: "flatnet", ContainerID: fmt.Sprintf("c%04d", i), IfName: "eth0"}
}

func addrs(base string, n int) []netip.Addr {
	a := netip.MustParseAddr(base)
	out := make([]netip.Addr, n)
	for i := range n {
		out[i] = a
		a = a.Next()
	}
	return out
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func seed(t *testing.T, s *Store, n int) {
	t.Helper()
	if err := s.PutInterface(Interface{ID: "eni-0", DeviceIndex: 0, PrimaryIP: netip.MustParseAddr("10.0.0.5"), AddedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddAddresses("eni-0", netip.Prefix{}, addrs("10.0.0.10", n), t0); err != nil {
		t.Fatal(err)
	}
}

func TestSchemaValidates(t *testing.T) {
	if err := schema().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAssignIsIdempotentPerOwner(t *testing.T) {
	s := open(t, t.TempDir())
	seed(t, s, 3)
	a, fresh, err := s.Assign(owner(1), wire.PodRef{Namespace: "ns", Name: "p"}, t0, 0)
	if err != nil || !fresh {
		t.Fatalf("first assign: %v fresh=%v", err, fresh)
	}
	b, fresh, err := s.Assign(owner(1), wire.PodRef{}, t0, 0)
	if err != nil || fresh || b.IP != a.IP || b.Pod.Name != "p" {
		t.Fatalf("repeat assign gave %v fresh=%v err=%v; want %v again", b.IP, fresh, err, a.IP)
	}
	if _, ok, err := s.Release(owner(9), t0); ok || err != nil {
		t.Fatalf("release of an unknown owner: ok=%v err=%v", ok, err)
	}
}

func TestReuseIsLeastRecentlyReleasedAndRespectsCooldown(t *testing.T) {
	s := open(t, t.TempDir())
	seed(t, s, 3)
	const cool = 30 * time.Second
	got := map[int]netip.Addr{}
	for i := range 3 {
		a, _, err := s.Assign(owner(i), wire.PodRef{}, t0, cool)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = a.IP
	}
	// Release 2 then 0: 2 is the least recently released.
	s.Release(owner(2), t0.Add(time.Second))
	s.Release(owner(0), t0.Add(2*time.Second))
	if _, _, err := s.Assign(owner(10), wire.PodRef{}, t0.Add(10*time.Second), cool); !errors.Is(err, ErrNoneAvailable) {
		t.Fatalf("assign during cooldown: %v; want ErrNoneAvailable", err)
	}
	a, _, err := s.Assign(owner(10), wire.PodRef{}, t0.Add(31*time.Second), cool)
	if err != nil || a.IP != got[2] {
		t.Fatalf("after 2's cooldown got %v (%v); want %v, the least recently released", a.IP, err, got[2])
	}
	if _, _, err := s.Assign(owner(11), wire.PodRef{}, t0.Add(31*time.Second), cool); !errors.Is(err, ErrNoneAvailable) {
		t.Fatalf("0 is still cooling: %v", err)
	}
	a, _, _ = s.Assign(owner(11), wire.PodRef{}, t0.Add(33*time.Second), cool)
	if a.IP != got[0] {
		t.Fatalf("got %v, want %v", a.IP, got[0])
	}
}

func TestRemoveRefusesAssigned(t *testing.T) {
	s := open(t, t.TempDir())
	seed(t, s, 2)
	a, _, _ := s.Assign(owner(1), wire.PodRef{}, t0, 0)
	if err := s.RemoveAddresses([]netip.Addr{a.IP}); !errors.Is(err, ErrAssigned) {
		t.Fatalf("remove of an assigned address: %v", err)
	}
	if err := s.RemoveInterface("eni-0", false); !errors.Is(err, ErrAssigned) {
		t.Fatalf("remove of an interface with an assigned address: %v", err)
	}
	if err := s.RemoveInterface("eni-0", true); err != nil || len(s.Addresses()) != 0 {
		t.Fatalf("forced remove: %v, %d addresses left", err, len(s.Addresses()))
	}
}

func TestReopenRestoresEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, 5)
	for i := range 4 {
		s.Assign(owner(i), wire.PodRef{Namespace: "ns", Name: fmt.Sprint(i)}, t0, time.Second)
	}
	s.Release(owner(1), t0.Add(time.Minute))
	want := s.View()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
	s.Close()
	r := open(t, dir)
	if d := cmp.Diff(want, r.View(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Fatalf("state after reopen (-want +got):\n%s", d)
	}
}

func TestCompactionKeepsState(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	seed(t, s, 20)
	for i := range compactAfter + 10 {
		if _, _, err := s.Assign(owner(i%20), wire.PodRef{}, t0.Add(time.Duration(i)*time.Millisecond), time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			s.Release(owner(i%20), t0.Add(time.Duration(i)*time.Millisecond))
		}
	}
	want := s.View()
	s.Close()
	if st, _ := os.Stat(filepath.Join(dir, "state.json")); st == nil {
		t.Fatal("no snapshot written")
	}
	r := open(t, dir)
	if d := cmp.Diff(want, r.View(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Fatalf("state after compaction and reopen (-want +got):\n%s", d)
	}
}

func TestTornTailIsCutCorruptionRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	seed(t, s, 3)
	s.Assign(owner(1), wire.PodRef{}, t0, 0)
	s.Close()
	walPath := filepath.Join(dir, "wal.log")
	good, _ := os.ReadFile(walPath)
	os.WriteFile(walPath, append(append([]byte{}, good...), []byte(`1234abcd {"seq":9,"op":"ass`)...), 0o600)
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("torn tail: %v", err)
	}
	if _, ok := r.ByOwner(owner(1)); !ok {
		t.Fatal("acknowledged assignment lost")
	}
	r.Close()
	lines := strings.SplitAfter(string(good), "\n")
	bad := lines[0] + "deadbeef {}\n" + strings.Join(lines[1:], "")
	os.WriteFile(walPath, []byte(bad), 0o600)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt middle: %v; want a refusal", err)
	}
}

// syncModes are the durability settings the kill -9 tests run under: every record synced
// before its answer, ipamd's default, and a sync so rare that none happens during the test
// (what survives then is what write(2) handed to the kernel).
var syncModes = []struct {
	name     string
	interval time.Duration
}{{"sync-each", 0}, {"sync-100ms", 100 * time.Millisecond}, {"sync-never", time.Hour}}

// crashChild starts this test binary again as a writer (test name, env var = "dir interval").
func crashChild(t *testing.T, test, env, dir string, interval time.Duration) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+dir+" "+interval.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// openChild is the child's side of crashChild: the store in the directory it was given.
func openChild(arg string) *Store {
	dir, iv, _ := strings.Cut(arg, " ")
	interval, err := time.ParseDuration(iv)
	if err != nil {
		os.Exit(4)
	}
	s, err := Open(dir, Options{SyncInterval: interval})
	if err != nil {
		os.Exit(2)
	}
	return s
}

// TestKillNineLosesNoAcknowledgedAssignment runs a writer process that prints every assignment
// once Assign returned, kills it with SIGKILL mid-stream, and checks the reopened store, in
// every sync mode.
func TestKillNineLosesNoAcknowledgedAssignment(t *testing.T) {
	if arg := os.Getenv("STORE_CRASH_WRITER"); arg != "" {
		crashWriter(arg)
		return
	}
	for _, mode := range syncModes {
		t.Run(mode.name, func(t *testing.T) {
			for round := range 3 {
				dir := t.TempDir()
				cmd, sc := crashChild(t, "TestKillNineLosesNoAcknowledgedAssignment", "STORE_CRASH_WRITER", dir, mode.interval)
				acked := map[string]string{}
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) == 4 {
						acked[f[0]+" "+f[1]+" "+f[2]] = f[3]
					}
					if len(acked) == 50+round*70 {
						cmd.Process.Kill()
						break
					}
				}
				cmd.Wait()
				s := open(t, dir)
				held := map[string]bool{}
				for _, a := range s.Addresses() {
					if !a.Free() {
						if held[a.IP.String()] {
							t.Fatalf("%s held twice", a.IP)
						}
						held[a.IP.String()] = true
					}
				}
				for key, ip := range acked {
					parts := strings.Fields(key)
					a, ok := s.ByOwner(wire.Owner{Network: parts[0], ContainerID: parts[1], IfName: parts[2]})
					if !ok || a.IP.String() != ip {
						t.Fatalf("round %d: acknowledged %s -> %s lost after kill -9 (store has %v %v)", round, key, ip, a.IP, ok)
					}
				}
				s.Close()
			}
		})
	}
}

func crashWriter(arg string) {
	s := openChild(arg)
	s.PutInterface(Interface{ID: "eni-0", AddedAt: t0})
	s.AddAddresses("eni-0", netip.Prefix{}, addrs("10.0.0.10", 1000), t0)
	for i := 0; ; i++ {
		a, _, err := s.Assign(owner(i), wire.PodRef{}, t0, 0)
		if err != nil {
			os.Exit(3)
		}
		o := owner(i)
		fmt.Printf("%s %s %s %s\n", o.Network, o.ContainerID, o.IfName, a.IP)
	}
}

// TestLoadsAStateDirOfTheOldFormat: a state directory written by ipamd before the log moved to
// internal/wal (testdata/legacy-v1: a snapshot of four free addresses, then an assign and a
// removal in the log, no boot ID) loads with everything it held.
func TestLoadsAStateDirOfTheOldFormat(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"state.json", "wal.log"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "legacy-v1", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dir)
	if got := len(s.Addresses()); got != 3 {
		t.Fatalf("%d addresses; want 3 (four added, one removed)", got)
	}
	a, ok := s.ByOwner(owner(1))
	if !ok || a.IP != netip.MustParseAddr("10.0.0.10") || a.Pod.Name != "legacy" {
		t.Fatalf("owner 1 holds %v (%v); want 10.0.0.10 for pod legacy", a, ok)
	}
	if _, ok := s.Interface("eni-0"); !ok {
		t.Fatal("interface eni-0 lost")
	}
	// It keeps working: a new record after the old ones, and a reopen.
	if _, _, err := s.Assign(owner(2), wire.PodRef{}, t0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	if _, ok := r.ByOwner(owner(2)); !ok {
		t.Fatal("assignment after the old records lost on reopen")
	}
}
