package ipamd_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkWarmAllocate: allocation through the socket from a warm pool, the WAL's durability
// side by side: on the state directory's filesystem (disk) with every record fdatasync'ed
// before the answer (--state-sync 0) and with ipamd's default (written before the answer,
// synced within 100ms), and on tmpfs with the default. p50/p99 time the allocate call alone;
// ns/op includes the release after it (the timer is not stopped around it: stopping it reads
// the runtime's memory statistics, two stop-the-world pauses per iteration that disturb the
// daemon's goroutines).
func BenchmarkWarmAllocate(b *testing.B) {
	modes := []struct {
		name string
		base string // where the state directory goes ("": os.TempDir)
		sync time.Duration
	}{
		{"disk/sync-each", "", 0},
		{"disk/sync-100ms", "", ipamd.DefaultConfig().StateSync},
		{"tmpfs/sync-100ms", "/dev/shm", ipamd.DefaultConfig().StateSync},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			if mode.base != "" {
				if st, err := os.Stat(mode.base); err != nil || !st.IsDir() {
					b.Fatalf("%s is not there (%v): mount a tmpfs on it to run this benchmark", mode.base, err)
				}
			}
			env := servertest.Start(b, servertest.Options{})
			n := newNode(b, env, "m5.4xlarge")
			dir, err := os.MkdirTemp(mode.base, "ipamd-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			cfg := n.config(dir)
			cfg.SocketPath = filepath.Join(b.TempDir(), "ipamd.sock")
			cfg.Cooldown = 0
			cfg.StateSync = mode.sync
			cfg.Pool.WarmLow, cfg.Pool.WarmHigh = 20, 40
			d := start(b, cfg)
			ctx := context.Background()
			for d.Status().Free < 20 {
				time.Sleep(10 * time.Millisecond)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if _, err := allocate(ctx, cfg.SocketPath, owner(i)); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				if _, err := release(ctx, cfg.SocketPath, owner(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
		})
	}
}

// countingClouds counts the cloud API calls the driver makes.
func countingClouds(calls *atomic.Int64) *providers.Registry {
	return providers.NewRegistry(providers.Driver{Name: fakecloud.Name, NewIPAM: func(ctx context.Context, s providers.Settings) (providers.IPAM, error) {
		inner := s.Observe
		s.Observe = func(action string, took time.Duration, err error) {
			calls.Add(1)
			if inner != nil {
				inner(action, took, err)
			}
		}
		return fakecloud.Driver.NewIPAM(ctx, s)
	}})
}

// BenchmarkBurst110: 110 concurrent allocations on an empty m5.4xlarge (no warm pool: warm-low
// 0) with 50 ms added to every cloud call and fakecloud's default throttling. Reports the time
// until the last is served and the cloud calls made for the burst.
func BenchmarkBurst110(b *testing.B) {
	var served []time.Duration
	var callsTotal int64
	for range b.N {
		b.StopTimer()
		env := servertest.Start(b, servertest.Options{Throttle: &server.ThrottleConfig{}})
		n := newNode(b, env, "m5.4xlarge")
		time.Sleep(50 * time.Millisecond)
		cfg := n.config(b.TempDir())
		cfg.Pool.WarmLow, cfg.Pool.WarmHigh = 0, 10
		var calls atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		d, err := ipamd.New(ctx, cfg, ipamd.Deps{Clouds: countingClouds(&calls)})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		waitReady(b, cfg.SocketPath)
		if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: "*", LatencyMillis: 50}}); err != nil {
			b.Fatal(err)
		}
		before := calls.Load()
		b.StartTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range 110 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := allocate(ctx, cfg.SocketPath, owner(i)); err != nil {
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		served = append(served, time.Since(t0))
		b.StopTimer()
		callsTotal += calls.Load() - before
		cancel()
		<-done
		if failed.Load() > 0 {
			b.Fatalf("%d of 110 allocations failed", failed.Load())
		}
	}
	b.ReportMetric(ms(percentile(served, 0.5)), "served-ms")
	b.ReportMetric(float64(callsTotal)/float64(b.N), "cloud-calls")
}

// BenchmarkSteadyChurn: 40 pods on a node with default pool settings, one pod replaced every
// 25 ms (40 ADD+DEL/s) with a 1 s cooldown, for 5 s per iteration. Reports the free
// addresses held on average (lower is more frugal) and the allocations that missed the pool
// and waited for the cloud (from ipamd's own histogram).
func BenchmarkSteadyChurn(b *testing.B) {
	var freeSum, samples, misses float64
	for range b.N {
		env := servertest.Start(b, servertest.Options{Throttle: &server.ThrottleConfig{}})
		n := newNode(b, env, "m5.4xlarge")
		cfg := n.config(b.TempDir())
		cfg.Cooldown = time.Second
		cfg.MetricsAddr = freePort(b)
		d := start(b, cfg)
		ctx := context.Background()
		var live []int
		next := 0
		for ; next < 40; next++ {
			if _, err := allocate(ctx, cfg.SocketPath, owner(next)); err != nil {
				b.Fatal(err)
			}
			live = append(live, next)
		}
		time.Sleep(2 * time.Second) // let the warm-up burst settle
		missesBefore := scrapeMisses(b, cfg.MetricsAddr)
		t := time.NewTicker(25 * time.Millisecond)
		end := time.Now().Add(5 * time.Second)
		for time.Now().Before(end) {
			<-t.C
			if _, err := release(ctx, cfg.SocketPath, owner(live[0])); err != nil {
				b.Fatal(err)
			}
			live = live[1:]
			if _, err := allocate(ctx, cfg.SocketPath, owner(next)); err != nil {
				b.Fatal(err)
			}
			live = append(live, next)
			next++
			st := d.Status()
			freeSum += float64(st.Free)
			samples++
		}
		t.Stop()
		misses += scrapeMisses(b, cfg.MetricsAddr) - missesBefore
	}
	b.ReportMetric(freeSum/samples, "free-avg")
	b.ReportMetric(misses/float64(b.N), "misses")
}

// BenchmarkRSS250: the resident memory of a real ipamd process holding 250 allocations (an
// m5.16xlarge, ip mode), read from /proc once they are all served.
func BenchmarkRSS250(b *testing.B) {
	var rss float64
	for range b.N {
		env := servertest.Start(b, servertest.Options{})
		n := newNode(b, env, "m5.16xlarge")
		dir := b.TempDir()
		socket := filepath.Join(dir, "ipamd.sock")
		tokenFile := writeToken(b, dir, n.token)
		cmd := exec.Command(os.Args[0], "--instance-id="+n.id, "--cloud-endpoint="+env.URL, "--cloud-token-file="+tokenFile,
			"--state-dir="+filepath.Join(dir, "state"), "--socket="+socket, "--spool-dir="+filepath.Join(dir, "spool"),
			"--introspect-addr=", "--metrics-bind-address=", "--datapath=false", "--pod-check=none")
		cmd.Env = append(os.Environ(), daemonEnv+"=1")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitReady(b, socket)
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < 250; i += 10 {
					if _, err := allocate(ctx, socket, owner(i)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		time.Sleep(500 * time.Millisecond)
		rss = readRSS(b, cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	b.ReportMetric(rss, "rss-MiB")
}

// scrapeMisses reads the count of allocations that missed the pool from ipamd's metrics.
func scrapeMisses(b *testing.B, addr string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, `flatnet_ipamd_allocation_seconds_count{result="miss"} `); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

func readRSS(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
