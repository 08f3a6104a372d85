package fabric

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/internal/netns"
)

func admin() state.Call { return state.Call{Principal: state.Principal{Admin: true}, Now: time.Now()} }

// lab is a VPC of the real in-process store with two subnets and three instances, and a fabric
// converging it into namespaces under a prefix unique to the test.
type lab struct {
	t      testing.TB
	st     *state.Store
	prefix string
	api    http.Handler
	reg    *prometheus.Registry
	f      *Fabric
	stop   func()
	// faults fails data-plane operations on the test's demand.
	faults *testFaults
	// attach is the attachments the next start gives the fabric.
	attach []Attachment
	// tune, when set, changes the fabric's configuration at each start.
	tune func(*Config)

	vpc        string
	subA, subB api.Subnet
	n1, n2, n3 api.Instance
}

// must panics on err; the testing package still runs the cleanups, so nothing leaks.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newLab(t testing.TB, apiHandler http.Handler) *lab {
	t.Helper()
	return newLabWith(t, apiHandler, state.Config{DataPlane: true})
}

// newLabWith is newLab on a store opened with cfg (limits, say).
func newLabWith(t testing.TB, apiHandler http.Handler, cfg state.Config) *lab {
	t.Helper()
	return newLabTuned(t, apiHandler, cfg, nil)
}

// newLabTuned is newLabWith on a fabric whose configuration tune changes.
func newLabTuned(t testing.TB, apiHandler http.Handler, cfg state.Config, tune func(*Config)) *lab {
	t.Helper()
	requireRoot(t)
	st := must(state.Open(cfg))
	t.Cleanup(func() { _ = st.Close() })
	l := &lab{t: t, st: st, prefix: testPrefix(t), api: apiHandler, reg: prometheus.NewRegistry(), faults: &testFaults{}, tune: tune}
	watchRootNetns(t)
	t.Cleanup(func() { l.teardown() })
	l.vpc = must(st.CreateVpc(admin(), &api.CreateVpcRequest{CidrBlock: "10.0.0.0/16"})).Vpc.VpcID
	l.subA = must(st.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: l.vpc, CidrBlock: "10.0.1.0/24"})).Subnet
	l.subB = must(st.CreateSubnet(admin(), &api.CreateSubnetRequest{VpcID: l.vpc, CidrBlock: "10.0.2.0/24"})).Subnet
	a := must(st.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: l.subA.SubnetID, InstanceType: "m5.large", Count: 2}))
	b := must(st.RunInstances(admin(), &api.RunInstancesRequest{SubnetID: l.subB.SubnetID, InstanceType: "m5.large"}))
	l.n1, l.n2, l.n3 = a.Instances[0], a.Instances[1], b.Instances[0]
	l.start()
	return l
}

// start runs a fabric over the store until stop (which leaves the namespaces, like kill -9).
func (l *lab) start() {
	l.t.Helper()
	level := slog.LevelDebug
	if _, bench := l.t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	cfg := Config{Source: l.st, APIHandler: l.api, Prefix: l.prefix, RetryInterval: 50 * time.Millisecond,
		Registerer: l.reg, Health: l.st, LBStates: l.st, Faults: l.faults, Certificates: l.st, Attach: l.attach, AttachCheckInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(tWriter{l.t}, &slog.HandlerOptions{Level: level}))}
	if l.tune != nil {
		l.tune(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	l.f = f
	l.stop = func() {
		cancel()
		if err := <-done; err != nil {
			l.t.Errorf("fabric run: %v", err)
		}
		l.stop = nil
		l.reg = prometheus.NewRegistry()
	}
	l.converge()
}

// converge waits until the fabric has applied everything the store committed so far.
func (l *lab) converge() {
	l.t.Helper()
	seq := l.st.Seq()
	eventually(l.t, 10*time.Second, "the fabric to converge", func() bool { return l.f.AppliedSeq() >= seq })
}

func (l *lab) teardown() {
	if l.stop != nil {
		l.stop()
	}
	if err := Down(l.prefix); err != nil {
		l.t.Errorf("down: %v", err)
	}
	left, err := netns.List(l.prefix)
	if err != nil || len(left) > 0 {
		l.t.Errorf("namespaces left after down: %v (err %v)", left, err)
	}
}

func (l *lab) node(in api.Instance) string { return NodeNetns(l.prefix, in.InstanceID) }

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// watchRootNetns fails the test if the root namespace's links, addresses or routes change.
func watchRootNetns(t testing.TB) {
	t.Helper()
	before := rootState(t)
	t.Cleanup(func() {
		if diff := cmp.Diff(before, rootState(t)); diff != "" {
			t.Errorf("root network namespace changed (-before +after):\n%s", diff)
		}
	})
}

func rootState(t testing.TB) []string {
	t.Helper()
	var out []string
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("root links: %v", err)
	}
	for _, l := range links {
		out = append(out, "link "+l.Attrs().Name)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("root addresses: %v", err)
	}
	for _, a := range addrs {
		out = append(out, "addr "+a.IPNet.String())
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("root routes: %v", err)
	}
	for _, r := range routes {
		out = append(out, "route "+r.String())
	}
	slices.Sort(out)
	return out
}

// nodeHandle is a netlink handle inside a node, for the test's own node-side configuration.
func nodeHandle(t testing.TB, ns string) *netlink.Handle {
	t.Helper()
	k := newKernel("", 0)
	h, err := k.handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// tWriter sends log lines to the test's log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// testFaults is a FaultInjector the test sets: every call of a faulted operation fails, except
// on the objects the test spares.
type testFaults struct {
	mu     sync.Mutex
	errs   map[string]error
	calls  map[string]int
	spared map[string]bool
}

func (f *testFaults) DataPlaneFault(op, object string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	if f.spared[object] {
		return nil
	}
	return f.errs[op]
}

// spare exempts object from every fault.
func (f *testFaults) spare(object string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.spared == nil {
		f.spared = map[string]bool{}
	}
	f.spared[object] = true
}

func (f *testFaults) set(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	if err == nil {
		delete(f.errs, op)
		return
	}
	f.errs[op] = err
}
