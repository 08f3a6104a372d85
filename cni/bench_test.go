package cni_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
)

// benchPods is how many pods one round wires up (ADD all, then DEL all).
const benchPods = 500

// BenchmarkCNI (acceptance 5) puts flatnet side by side with the reference ptp + host-local,
// built from the containernetworking/plugins version go.mod pins, in one run on one machine:
// ADD and DEL latency through libcni, p50 and p99 over 500 pods one after another and over 500
// pods with 20 at a time, then the binaries' sizes and the exec time of VERSION. flatnet is the
// release build (no fault hook); its ipamd is the in-process test ipamd on a unix socket, ptp's
// IPAM is host-local on a temp dir. Each round takes longer than the default benchtime, so
// `make bench` runs it once.
func BenchmarkCNI(b *testing.B) {
	requirePrivileges(b)
	dir := b.TempDir()
	releasePlugin(b, dir)
	referencePlugins(b, "main/ptp", "ipam/host-local")
	for _, name := range []string{"ptp", "host-local"} {
		if err := copyFile(filepath.Join(binDir, name), filepath.Join(dir, name)); err != nil {
			b.Fatal(err)
		}
	}
	n := newNode(b, "10.1.0.10")
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{dir}, b.TempDir(), nil)
	flatnet := benchList(b, map[string]any{"type": "flatnet", "ipamdSocket": n.socket, "spoolDir": n.spool})
	ptp := benchList(b, map[string]any{"type": "ptp", "ipMasq": false, "mtu": 9001,
		"ipam": map[string]any{"type": "host-local", "dataDir": b.TempDir(),
			"ranges": []any{[]any{map[string]any{"subnet": "10.2.0.0/16"}}}}})
	for _, c := range []struct {
		name string
		list *libcni.NetworkConfigList
	}{{"flatnet", flatnet}, {"ptp+host-local", ptp}} {
		b.Run(c.name+"/sequential", func(b *testing.B) { benchRounds(b, n, c.list, 1) })
		b.Run(c.name+"/concurrent-20", func(b *testing.B) { benchRounds(b, n, c.list, 20) })
	}
	for _, name := range []string{"flatnet", "ptp", "host-local"} {
		b.Run("version/"+name, func(b *testing.B) { benchVersion(b, filepath.Join(dir, name)) })
	}
}

// benchList is a one-plugin conflist; no log file, as ptp keeps none.
func benchList(b *testing.B, plugin map[string]any) *libcni.NetworkConfigList {
	b.Helper()
	body, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "bench-" + plugin["type"].(string), "plugins": []any{plugin}})
	list, err := libcni.ConfListFromBytes(body)
	if err != nil {
		b.Fatal(err)
	}
	return list
}

func copyFile(from, to string) error {
	body, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, body, 0o755)
}

// benchRounds wires up benchPods pods with the given concurrency, then removes them, timing each
// ADD and DEL; it reports p50/p99 of both and the binary's size.
func benchRounds(b *testing.B, n *node, list *libcni.NetworkConfigList, workers int) {
	var adds, dels []time.Duration
	for range b.N {
		pods := make([]*pod, benchPods)
		for i := range pods {
			pods[i] = benchPod(b, i)
		}
		adds = append(adds, timeEach(b, n, pods, workers, func(p *pod) error { _, err := n.add(b, list, p); return err })...)
		dels = append(dels, timeEach(b, n, pods, workers, func(p *pod) error { return n.del(b, list, p) })...)
		for _, p := range pods {
			_ = p.ns.Close()
			_ = testutils.UnmountNS(p.ns)
		}
	}
	if left := n.leftovers(b); len(left) > 0 {
		b.Fatalf("left behind: %v", left)
	}
	report(b, "add", adds)
	report(b, "del", dels)
}

func benchPod(b *testing.B, i int) *pod {
	p, err := testutils.NewNS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(); _ = testutils.UnmountNS(p) })
	return &pod{ns: p, rt: &libcni.RuntimeConf{ContainerID: fmt.Sprintf("bench-%04d", i), NetNS: p.Path(), IfName: "eth0"}}
}

// timeEach runs op for every pod, workers at a time, each from the node netns, and returns
// every operation's duration.
func timeEach(b *testing.B, n *node, pods []*pod, workers int, op func(*pod) error) []time.Duration {
	out := make([]time.Duration, len(pods))
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				err := n.ns.Do(func(ns.NetNS) error { return op(pods[i]) })
				out[i] = time.Since(start)
				if err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for i := range pods {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return out
}

func report(b *testing.B, what string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(q float64) float64 {
		i := int(q*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return float64(d[i].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), what+"-p50-ms")
	b.ReportMetric(ms(0.99), what+"-p99-ms")
}

// benchVersion execs the binary with CNI_COMMAND=VERSION, reporting the exec time and its size.
func benchVersion(b *testing.B, path string) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var d []time.Duration
	for range max(b.N, 200) {
		cmd := exec.Command(path)
		cmd.Env = []string{"CNI_COMMAND=VERSION"}
		start := time.Now()
		if out, err := cmd.Output(); err != nil || len(out) == 0 {
			b.Fatalf("VERSION: %v %s", err, out)
		}
		d = append(d, time.Since(start))
	}
	report(b, "version", d)
	b.ReportMetric(float64(st.Size())/1e6, "binary-MB")
}
