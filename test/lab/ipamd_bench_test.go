package lab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// BenchmarkWarmAllocateLab measures allocation from a warm pool as deployed: a real ipamd process
// in its node's namespace, its state on the machine's disk, fakecloud a process of its own, the
// caller another process speaking ipamd/wire on the unix socket as the CNI plugin does. One
// operation is an allocate (timed, p50/p99) followed by the release of the same owner (in
// ns/op only: stopping the benchmark timer around it would read memory statistics, a
// stop-the-world pause of the caller, twice per iteration).
func BenchmarkWarmAllocateLab(b *testing.B) {
	cfg := benchConfig(b, "flw-", 7486)
	cfg.Nodes, cfg.InstanceType = 1, "m5.4xlarge"
	cfg.IpamdArgs = []string{"--warm-low", "20", "--warm-high", "40", "--cooldown", "0s"}
	ctx := context.Background()
	l, err := Up(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = Down(cfg.Dir, cfg.Prefix, io.Discard) })
	n := l.State().Nodes[0]
	for {
		s, err := l.Status(ctx, n.Name)
		if err == nil && s.Free >= 20 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	owner := func(i int) wire.Owner {
		return wire.Owner{Network: NetworkName, ContainerID: fmt.Sprintf("bench-%d", i), IfName: "eth0"}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := wire.Call(ctx, n.Socket(), &wire.Request{Op: wire.OpAllocate, Allocate: &wire.AllocateRequest{Owner: owner(i)}}); err != nil {
			b.Fatalf("allocate %d: %v", i, err)
		}
		lat = append(lat, time.Since(t0))
		if _, err := wire.Call(ctx, n.Socket(), &wire.Request{Op: wire.OpRelease, Release: &wire.ReleaseRequest{Owner: owner(i)}}); err != nil {
			b.Fatalf("release %d: %v", i, err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
