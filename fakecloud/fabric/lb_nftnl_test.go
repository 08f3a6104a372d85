package fabric

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/netns"
)

// goldenSnap has the load balancer of the golden files: internet-facing, two source ranges, a
// TCP and a UDP listener on two healthy targets (a draining one gets nothing).
func goldenSnap() *api.Snapshot {
	return lbSnap(api.SchemeInternetFacing, []string{"203.0.113.0/24", "10.0.0.0/16"},
		tgt("10.0.1.101", 8080, "healthy"), tgt("10.0.1.102", 8080, "healthy"), tgt("10.0.2.103", 8080, "draining"))
}

func goldenLB(t *testing.T) *LB { return desiredLBOf(t, goldenSnap()) }

// TestLBRulesetGolden compares the netlink form of the golden program, what programLB sends,
// with testdata/lb-program.netlink (-update rewrites it). It reads like `nft --debug=netlink`
// on testdata/lb-program.nft, which TestLBRulesetMatchesNft checks in the kernel.
func TestLBRulesetGolden(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the golden file holds a little-endian host's words (ct bits, map keys)")
	}
	rs := lbRulesetOf(goldenLB(t).Program)
	got := rs.view().String()
	golden := filepath.Join("testdata", "lb-program.netlink")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestLBRulesetGolden -update ./fakecloud/fabric/ to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("netlink program (-golden +got):\n%s", diff)
	}
	// Every set is looked up by exactly one rule: set IDs are what ties them in the batch.
	uses := map[uint32]int{}
	for _, r := range rs.rules {
		for _, e := range r.Exprs {
			if l, ok := e.(*expr.Lookup); ok {
				uses[l.SetID]++
			}
		}
	}
	for _, s := range rs.sets {
		if uses[s.set.ID] != 1 {
			t.Errorf("set %d (%s) is looked up %d times, want once", s.set.ID, s.set.Name, uses[s.set.ID])
		}
	}
	if len(uses) != len(rs.sets) {
		t.Errorf("rules look up %d sets, the batch adds %d", len(uses), len(rs.sets))
	}
}

func TestIntervalElements(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ranges []string
		want   string
	}{
		{"one", []string{"10.0.0.0/16"}, "0.0.0.0 (end), 10.0.0.0, 10.1.0.0 (end)"},
		{"sorted", []string{"203.0.113.0/24", "10.0.0.0/16"}, "0.0.0.0 (end), 10.0.0.0, 10.1.0.0 (end), 203.0.113.0, 203.0.114.0 (end)"},
		{"nested merge", []string{"10.0.0.0/8", "10.1.0.0/16"}, "0.0.0.0 (end), 10.0.0.0, 11.0.0.0 (end)"},
		{"adjacent merge", []string{"10.0.0.128/25", "10.0.0.0/25"}, "0.0.0.0 (end), 10.0.0.0, 10.0.1.0 (end)"},
		{"unmasked", []string{"10.0.0.5/16"}, "0.0.0.0 (end), 10.0.0.0, 10.1.0.0 (end)"},
		{"from zero: no leading end", []string{"0.0.0.0/32"}, "0.0.0.0, 0.0.0.1 (end)"},
		{"to the top: no trailing end", []string{"255.255.255.0/24"}, "0.0.0.0 (end), 255.255.255.0"},
		{"everything", []string{"0.0.0.0/0", "10.0.0.0/8"}, "0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, r := range tc.ranges {
				ps = append(ps, netip.MustParsePrefix(r))
			}
			got := renderElems(lbSet{&nftables.Set{Interval: true}, intervalElements(ps)})
			if got != tc.want {
				t.Errorf("elements of %v:\n got %s\nwant %s", tc.ranges, got, tc.want)
			}
		})
	}
}

// lbNetns makes an empty load balancer namespace for a test and removes it after.
func lbNetns(t *testing.T, k *kernel, id string) {
	t.Helper()
	ns := LBNetns(k.prefix, id)
	if err := netns.EnsureDir(); err != nil {
		t.Fatal(err)
	}
	if err := k.ensureNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.closeHandle(ns)
		if err := netns.Delete(ns); err != nil {
			t.Errorf("delete %s: %v", ns, err)
		}
	})
}

// readLB reads the load balancer's table back and counts its sets.
func readLB(t *testing.T, k *kernel, id string) (view string, sets int) {
	t.Helper()
	err := k.withLBConn(id, func(c *nftables.Conn) error {
		view = readNftView(t, c).String()
		if view == "" {
			return nil
		}
		ss, err := c.GetSets(newLBNftTable().table)
		sets = len(ss)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return view, sets
}

// TestProgramLBNetlink programs a load balancer's namespace over netlink and reads it back: the
// kernel holds exactly the ruleset sent, with the program's hash; a second program replaces
// the rules (and their anonymous sets) instead of adding to them; a namespace without the
// table reads as no program, and a missing namespace is an error naming the load balancer.
func TestProgramLBNetlink(t *testing.T) {
	requireRoot(t)
	watchRootNetns(t)
	k := newKernel(testPrefix(t), 1500)
	defer k.close()
	lb := goldenLB(t)
	lbNetns(t, k, lb.ID)
	if h, err := k.programHashIn(lb.ID); h != "" || err != nil {
		t.Errorf("a namespace without the table reads hash %q, err %v; want none, no error", h, err)
	}
	bare := *lb
	bare.Program.Allowed, bare.Program.Listeners = nil, nil
	_, bare.Program.Hash = RenderLBProgram(bare.Program)
	for i, want := range []*LB{lb, lb, &bare, lb} {
		if err := k.programLB(want); err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
		rs := lbRulesetOf(want.Program)
		got, sets := readLB(t, k, lb.ID)
		if diff := cmp.Diff(rs.view().String(), got); diff != "" {
			t.Errorf("program %d: the kernel holds (-sent +read back):\n%s", i, diff)
		}
		if sets != len(rs.sets) {
			t.Errorf("program %d: the table has %d sets, want %d (the old rules' sets must go with them)", i, sets, len(rs.sets))
		}
		if h, err := k.programHashIn(lb.ID); h != want.Program.Hash || err != nil {
			t.Errorf("program %d: hash read back %q, err %v; want %q", i, h, err, want.Program.Hash)
		}
	}
	// An application load balancer's program over a network one's (as an older fabric wrote
	// it): the NAT chains go, and the hash is read from chain program.
	app := desiredLBOf(t, albSnap())
	app.ID = lb.ID
	for i := range 2 {
		if err := k.programLB(app); err != nil {
			t.Fatalf("application program %d: %v", i, err)
		}
		got, sets := readLB(t, k, lb.ID)
		rs := lbRulesetOf(app.Program)
		if diff := cmp.Diff(rs.view().String(), got); diff != "" {
			t.Errorf("application program %d: the kernel holds (-sent +read back):\n%s", i, diff)
		}
		if sets != len(rs.sets) {
			t.Errorf("application program %d: the table has %d sets, want %d", i, sets, len(rs.sets))
		}
		if h, err := k.programHashIn(lb.ID); h != app.Program.Hash || err != nil {
			t.Errorf("application program %d: hash read back %q, err %v; want %q", i, h, err, app.Program.Hash)
		}
	}
	gone := &LB{ID: "lb-missing", Program: lb.Program}
	if err := k.programLB(gone); err == nil || !strings.Contains(err.Error(), gone.ID) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("programming a load balancer without a namespace: %v; want a not-exist error naming it", err)
	}
	if _, err := k.programHashIn(gone.ID); err == nil || !strings.Contains(err.Error(), gone.ID) {
		t.Errorf("reading a load balancer without a namespace: %v; want an error naming it", err)
	}
}
