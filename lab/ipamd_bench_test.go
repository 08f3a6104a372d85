package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// BenchmarkRSS250Lab is issue 4's memory figure for the binary as shipped: the flatnet-ipamd
// process of a lab node (datapath and fast path on) holding 250 allocations on an m5.16xlarge,
// read from /proc once they are all served. VmRSS counts the executable's pages the process has
// mapped (shared with every other process running it, clean, dropped under memory pressure) as
// well as its own memory; both are reported. "standalone" runs ipamd without a kubeconfig;
// "kubernetes" in a lab with a control plane, where ipamd also publishes its Node's capacity and
// condition and records events (250 addresses are far from the node's capacity).
func BenchmarkRSS250Lab(b *testing.B) {
	b.Run("standalone", func(b *testing.B) { benchRSS250(b, false) })
	b.Run("kubernetes", func(b *testing.B) { benchRSS250(b, true) })
}

func benchRSS250(b *testing.B, kubernetes bool) {
	var rss, anon, file float64
	for range b.N {
		cfg := benchConfig(b, "flr-", 7487)
		cfg.Nodes, cfg.InstanceType = 1, "m5.16xlarge"
		if cfg.Kubernetes = kubernetes; kubernetes {
			cfg.K8sBinDir = k8sBinDir(b)
		}
		ctx := context.Background()
		l, err := Up(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		n := l.State().Nodes[0]
		var wg sync.WaitGroup
		for w := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 250; i += 10 {
					o := wire.Owner{Network: NetworkName, ContainerID: fmt.Sprintf("rss-%d", i), IfName: "eth0"}
					if _, err := wire.Call(ctx, n.Socket(), &wire.Request{Op: wire.OpAllocate, Allocate: &wire.AllocateRequest{Owner: o}}); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		time.Sleep(500 * time.Millisecond)
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.IpamdPID))
		if err != nil {
			b.Fatal(err)
		}
		rss, anon, file = statusKiB(st, "VmRSS")/1024, statusKiB(st, "RssAnon")/1024, statusKiB(st, "RssFile")/1024
		if err := Down(cfg.Dir, cfg.Prefix, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(anon, "anon-MiB")
	b.ReportMetric(file, "file-MiB")
}

// statusKiB reads a "Key:   N kB" line of /proc/<pid>/status.
func statusKiB(status []byte, key string) float64 {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return v
		}
	}
	return 0
}
