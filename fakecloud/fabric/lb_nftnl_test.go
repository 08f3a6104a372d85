package fabric

import (
	"testing"

	"github.com/google/nftables"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestProgramLBNetlink programs a load balancer's namespace over netlink: the rules land in
// their chains with the program's hash readable back, a second program replaces the rules
// instead of adding to them, and a namespace without the table reads as no program.
func TestProgramLBNetlink(t *testing.T) {
	requireRoot(t)
	watchRootNetns(t)
	k := newKernel(testPrefix(t), 1500)
	defer k.close()
	lb := desiredLBOf(t, lbSnap(api.SchemeInternetFacing, []string{"203.0.113.0/24", "10.0.0.0/16"},
		tgt("10.0.1.101", 8080, "healthy"), tgt("10.0.1.102", 8080, "healthy")))
	ns := LBNetns(k.prefix, lb.ID)
	if err := ensureNetnsDir(); err != nil {
		t.Fatal(err)
	}
	if err := k.ensureNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := deleteNetns(ns); err != nil {
			t.Errorf("delete %s: %v", ns, err)
		}
	})
	if h := k.programHashIn(lb.ID); h != "" {
		t.Errorf("a namespace without the table reads hash %q, want none", h)
	}
	counts := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		err := k.withLBConn(lb.ID, func(c *nftables.Conn) error {
			tab, chains := lbTables()
			for _, ch := range chains {
				rules, err := c.GetRules(tab, ch)
				if err != nil {
					return err
				}
				out[ch.Name] = len(rules)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := map[string]int{lbChainGuard: 1, lbChainDNAT: len(lb.Program.Listeners), lbChainSNAT: 1}
	for range 2 {
		if err := k.programLB(lb); err != nil {
			t.Fatal(err)
		}
		if got := counts(); got[lbChainGuard] != want[lbChainGuard] || got[lbChainDNAT] != want[lbChainDNAT] || got[lbChainSNAT] != want[lbChainSNAT] {
			t.Errorf("rules by chain %v, want %v", got, want)
		}
		if h := k.programHashIn(lb.ID); h != lb.Program.Hash {
			t.Errorf("hash read back %q, want %q", h, lb.Program.Hash)
		}
	}
	// A program without source ranges or targets: the guard and the listeners' rules go.
	bare := *lb
	bare.Program.Allowed, bare.Program.Listeners = nil, nil
	_, bare.Program.Hash = RenderLBProgram(bare.Program)
	if err := k.programLB(&bare); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got[lbChainGuard] != 0 || got[lbChainDNAT] != 0 || got[lbChainSNAT] != 1 {
		t.Errorf("after a bare program, rules by chain %v, want only the SNAT rule", got)
	}
	if h := k.programHashIn(lb.ID); h != bare.Program.Hash {
		t.Errorf("hash read back %q, want the bare program's %q", h, bare.Program.Hash)
	}
}
