package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Acceptance 2 of the ipamd issue, on a node of the lab (fakecloud with its fabric, ipamd in the
// node's namespace, pods through the CNI plugin): a t3.small holds 3 interfaces x 3 secondary
// addresses; the 10th pod is refused with the reason, and released addresses come back after
// their cooldown, the least recently released first.
func TestNodeFullThenCooledReuse(t *testing.T) {
	guardRootNet(t)
	cfg := testConfig(t, "flu-", 7485)
	cfg.Nodes, cfg.InstanceType = 1, "t3.small"
	const cooldown = 6 * time.Second
	cfg.IpamdArgs = []string{"--cooldown", cooldown.String(), "--alloc-wait", "2s"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(cfg.Dir, cfg.Prefix, testWriter{t}); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	ips := map[int]string{}
	for i := range 9 {
		p, err := l.AddPod(ctx, fmt.Sprintf("p%d", i), "node-1")
		if err != nil {
			t.Fatalf("pod %d of the 9 a t3.small holds: %v", i, err)
		}
		ips[i] = p.IP
	}
	_, err = l.AddPod(ctx, "p9", "node-1")
	if err == nil || !strings.Contains(err.Error(), "9 of the 9 pod addresses") {
		t.Fatalf("10th pod: %v; want the node-full reason", err)
	}
	t.Logf("10th pod refused: %v", err)
	enis, err := (&demo{l: l, ctx: ctx}).interfaces(l.State().Nodes[0])
	if err != nil || len(enis) != 3 {
		t.Fatalf("the node has %d interfaces (%v); want the t3.small's 3", len(enis), err)
	}

	released := time.Now()
	for _, i := range []int{3, 5} {
		if err := l.DelPod(ctx, fmt.Sprintf("p%d", i)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := l.AddPod(ctx, "early", "node-1"); err == nil {
		t.Fatalf("a pod %v after the releases got an address; want none while they cool (%v)", time.Since(released), cooldown)
	}
	time.Sleep(time.Until(released.Add(cooldown + 200*time.Millisecond)))
	for k, i := range []int{3, 5} { // least recently released first
		p, err := l.AddPod(ctx, fmt.Sprintf("again%d", k), "node-1")
		if err != nil || p.IP != ips[i] {
			t.Fatalf("after the cooldown pod again%d got %q (%v); want %s, released by p%d", k, p.IP, err, ips[i], i)
		}
	}
}
