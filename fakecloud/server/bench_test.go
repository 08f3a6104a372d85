package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// Bench shape (acceptance 7 of the fakecloud issue): a /16 VPC, two /17 subnets, 1,000 m5.large
// instances with 3 interfaces each, then AssignPrivateIpAddresses + UnassignPrivateIpAddresses
// over HTTP on loopback from concurrent callers.
const (
	benchInstances   = 1000
	benchENIsPerNode = 3
	benchSetupBatch  = 100
)

// benchWorkers is how many callers run at once: FAKECLOUD_BENCH_WORKERS, default one per CPU
// (more only queue on the machine's cores and stretch the tail).
func benchWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("FAKECLOUD_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// BenchmarkAssignUnassignHTTP reports ops/s and p50/p99 latency of single assign and unassign
// calls; one iteration is one assign followed by one unassign, so two operations.
func BenchmarkAssignUnassignHTTP(b *testing.B) {
	f := benchFixture(b)
	workers := benchWorkers()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2}}
	c := client.New(f.url, servertest.AdminToken, client.WithHTTPClient(hc))
	ctx := context.Background()

	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(max(1, workers/runtime.GOMAXPROCS(0))) // times GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine starts at its own interface and strides, so two callers rarely share one.
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			eni := f.enis[int(next.Add(1))%len(f.enis)]
			t0 := time.Now()
			resp, err := c.AssignPrivateIPAddresses(ctx, &api.AssignPrivateIPAddressesRequest{NetworkInterfaceID: eni, SecondaryPrivateIPAddressCount: 1})
			t1 := time.Now()
			if err != nil {
				b.Errorf("assign on %s: %v", eni, err)
				return
			}
			_, err = c.UnassignPrivateIPAddresses(ctx, &api.UnassignPrivateIPAddressesRequest{NetworkInterfaceID: eni, PrivateIPAddresses: resp.AssignedPrivateIPAddresses})
			t2 := time.Now()
			if err != nil {
				b.Errorf("unassign on %s: %v", eni, err)
				return
			}
			lat = append(lat, t1.Sub(t0), t2.Sub(t1))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(workers), "callers")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(ms(all[len(all)*50/100]), "p50-ms")
	b.ReportMetric(ms(all[min(len(all)-1, len(all)*99/100)]), "p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type benchEnv struct {
	url  string
	enis []string
}

var (
	benchOnce sync.Once
	benchVal  *benchEnv
	benchErr  error
)

// benchFixture builds the 1,000-instance VPC once per test binary: the benchmark function runs
// several times while the framework sizes b.N.
func benchFixture(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		// The environment must outlive this first b; servertest cleans up with it, so run the
		// server under a long-lived test-like owner instead.
		env := servertest.Start(&keepAlive{TB: b}, servertest.Options{})
		benchVal, benchErr = buildBenchVPC(env)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchVal
}

// keepAlive makes servertest's cleanups never run: the fixture lives until the process exits.
type keepAlive struct{ testing.TB }

func (keepAlive) Cleanup(func()) {}

func buildBenchVPC(env *servertest.Env) (*benchEnv, error) {
	ctx := context.Background()
	c := env.Admin
	vpc, err := c.CreateVpc(ctx, &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})
	if err != nil {
		return nil, err
	}
	var subnets []string
	for _, cidr := range []string{"10.0.0.0/17", "10.0.128.0/17"} {
		sn, err := c.CreateSubnet(ctx, &api.CreateSubnetRequest{VpcID: vpc.Vpc.VpcID, CidrBlock: cidr})
		if err != nil {
			return nil, err
		}
		subnets = append(subnets, sn.Subnet.SubnetID)
	}
	out := &benchEnv{url: env.URL}
	for i := 0; i < benchInstances; i += benchSetupBatch {
		subnet := subnets[(i/benchSetupBatch)%len(subnets)]
		run, err := c.RunInstances(ctx, &api.RunInstancesRequest{SubnetID: subnet, InstanceType: "m5.large", Count: benchSetupBatch})
		if err != nil {
			return nil, fmt.Errorf("run instances: %w", err)
		}
		for _, inst := range run.Instances {
			enis, err := addInterfaces(ctx, c, inst, subnet)
			if err != nil {
				return nil, err
			}
			out.enis = append(out.enis, enis...)
		}
	}
	return out, nil
}

// addInterfaces attaches interfaces to inst until it has benchENIsPerNode, returning them all.
func addInterfaces(ctx context.Context, c *client.Client, inst api.Instance, subnet string) ([]string, error) {
	enis := []string{inst.NetworkInterfaces[0].NetworkInterfaceID}
	for idx := 1; idx < benchENIsPerNode; idx++ {
		eni, err := c.CreateNetworkInterface(ctx, &api.CreateNetworkInterfaceRequest{SubnetID: subnet})
		if err != nil {
			return nil, fmt.Errorf("create interface: %w", err)
		}
		id := eni.NetworkInterface.NetworkInterfaceID
		if _, err := c.AttachNetworkInterface(ctx, &api.AttachNetworkInterfaceRequest{NetworkInterfaceID: id, InstanceID: inst.InstanceID, DeviceIndex: idx}); err != nil {
			return nil, fmt.Errorf("attach interface: %w", err)
		}
		enis = append(enis, id)
	}
	return enis, nil
}
