package lab

import (
	"context"
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkLabUpKubernetes (issue 7, acceptance 5): the time from nothing to a 3-node lab whose
// Nodes are all Ready with pod capacity (fakecloud, VPC, instances, control plane, ipamd and a
// node agent per node), and the teardown time. Each iteration is a full up and down.
func BenchmarkLabUpKubernetes(b *testing.B) {
	dir := os.Getenv(K8sBinDirEnv)
	if dir == "" {
		b.Fatalf("%s is not set: run make k8s-bins (make bench exports it)", K8sBinDirEnv)
	}
	cfg := benchConfig(b, "flbk-", 7486)
	cfg.Kubernetes, cfg.K8sBinDir = true, dir
	cfg.APIServerListen = benchConfig(b, "flbk-", 6447).Listen
	var up, down time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		start := time.Now()
		if _, err := Up(ctx, cfg); err != nil {
			cancel()
			b.Fatal(err)
		}
		up += time.Since(start)
		start = time.Now()
		if err := Down(cfg.Dir, cfg.Prefix, io.Discard); err != nil {
			cancel()
			b.Fatal(err)
		}
		down += time.Since(start)
		cancel()
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "s-to-ready/op")
	b.ReportMetric(down.Seconds()/float64(b.N), "s-down/op")
}
