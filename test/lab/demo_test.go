package lab

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Acceptance 1 and 3 of the lab issue: the demo's proofs pass twice in a row, leave nothing
// behind, and never touch the root namespace.
func TestDemoTwiceLeavesNothing(t *testing.T) {
	guardRootNet(t)
	cfg := testConfig(t, "fld-", 7481)
	cfg.Kubernetes, cfg.K8sBinDir, cfg.APIServerListen = true, k8sBinDir(t), freeAddr(t, 6446)
	for round := 1; round <= 2; round++ {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := demoWith(ctx, cfg, &out)
		cancel()
		t.Logf("demo round %d output:\n%s", round, out.String())
		if err != nil {
			t.Fatalf("demo round %d: %v", round, err)
		}
		for _, want := range []string{"saw", "seen as", "no answer (dropped", "interfaces (had 1)",
			"3 nodes Ready", "ready endpoints 10.0.", "assigned by the node's ipamd", "addresses are free or cooling down"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("round %d: the demo did not show %q", round, want)
			}
		}
		if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
			t.Fatalf("round %d left behind:\n%s", round, strings.Join(left, "\n"))
		}
	}
}

func demoWith(ctx context.Context, cfg Config, out *bytes.Buffer) error {
	return demoRun(ctx, cfg, DemoOptions{Dir: cfg.Dir, BinDir: cfg.BinDir, Out: out, Kubernetes: cfg.Kubernetes})
}
