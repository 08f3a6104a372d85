package ipamd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// daemonProc is an ipamd process that the test kills with SIGKILL and restarts.
type daemonProc struct {
	t       testing.TB
	args    []string
	socket  string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
}

func (p *daemonProc) start() {
	p.t.Helper()
	cmd := exec.Command(os.Args[0], p.args...)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	logf.Close()
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
}

// kill9 kills the process with SIGKILL, reaps it and starts a new one at once.
func (p *daemonProc) kill9() {
	p.mu.Lock()
	cmd := p.cmd
	p.restarts++
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	p.start()
}

func (p *daemonProc) stop() {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// model is what the plugin side believes: owners holding an acknowledged address.
type model struct {
	mu       sync.Mutex
	held     map[wire.Owner]netip.Addr
	byIP     map[netip.Addr]wire.Owner
	spooled  int
	acked    int
	refused  int
	codes    map[string]int
	failures []string
}

func (m *model) fail(format string, args ...any) {
	m.mu.Lock()
	m.failures = append(m.failures, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

// chaosClient plays the CNI plugin: ADD that fails gets a DEL; DEL that cannot reach ipamd is
// spooled, as the plugin does.
type chaosClient struct {
	socket, spool string
	m             *model
}

func (c *chaosClient) add(o wire.Owner) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := allocate(ctx, c.socket, o)
	if err == nil {
		c.m.mu.Lock()
		defer c.m.mu.Unlock()
		if prev, taken := c.m.byIP[a.IP]; taken {
			c.m.failures = append(c.m.failures, fmt.Sprintf("%s handed to %s while %s holds it", a.IP, o.Key(), prev.Key()))
		}
		c.m.held[o], c.m.byIP[a.IP] = a.IP, o
		c.m.acked++
		return
	}
	c.m.mu.Lock()
	c.m.refused++
	var we *wire.Error
	if errors.As(err, &we) {
		c.m.codes[we.Code]++
	} else {
		c.m.codes["unreachable"]++
	}
	c.m.mu.Unlock()
	c.del(o) // the runtime's DEL after a failed ADD
	if we == nil {
		c.waitUp() // the kubelet retries later; do not burn operations on a restarting daemon
	}
}

// waitUp waits until ipamd answers again.
func (c *chaosClient) waitUp() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := wire.Call(context.Background(), c.socket, &wire.Request{Op: wire.OpStatus}); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *chaosClient) del(o wire.Owner) {
	c.m.mu.Lock()
	ip, ok := c.m.held[o]
	delete(c.m.held, o)
	if ok {
		delete(c.m.byIP, ip)
	}
	c.m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := release(ctx, c.socket, o); err == nil {
		return
	}
	defer c.waitUp()
	body, _ := json.Marshal(wire.ReleaseRequest{Owner: o})
	tmp := filepath.Join(c.spool, ".tmp-"+o.Key())
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		c.m.fail("spool %s: %v", o.Key(), err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(c.spool, o.Key())); err != nil {
		c.m.fail("spool %s: %v", o.Key(), err)
	}
	c.m.mu.Lock()
	c.m.spooled++
	c.m.mu.Unlock()
}

// chaosSize is 2,000 operations and 20 kills (about 30 s under -race on 2 cores);
// IPAMD_CHAOS_OPS=N runs N operations and N/100 kills instead.
func chaosSize() (ops, kills int) {
	if v, err := strconv.Atoi(os.Getenv("IPAMD_CHAOS_OPS")); err == nil && v >= 100 {
		return v, v / 100
	}
	return 2000, 20
}

// TestChaosKillNineUnderCloudFaults: real ipamd processes killed -9 at random points during
// allocate/release traffic, with fakecloud throttling (its default buckets), 10%
// RequestLimitExceeded, 2% InternalError and 300 ms visibility lag: 2,000 operations from 4
// clients that behave as the plugin does (a failed ADD is followed by a DEL, a DEL that cannot
// reach ipamd is spooled), 20 kills. At the end the cloud's set equals ipamd's, no address has
// two owners, every acknowledged allocation is held by its owner and nothing else is held.
func TestChaosKillNineUnderCloudFaults(t *testing.T) {
	ops, kills := chaosSize()
	env := servertest.Start(t, servertest.Options{Throttle: &server.ThrottleConfig{}, FaultSeed: 7})
	n := newNode(t, env, "m5.large")
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	os.MkdirAll(spool, 0o700)
	introspect := freePort(t)
	tokenFile := writeToken(t, dir, n.token)
	p := &daemonProc{t: t, socket: filepath.Join(dir, "ipamd.sock"), logPath: filepath.Join(dir, "ipamd.log"), args: []string{
		"--instance-id=" + n.id, "--cloud-endpoint=" + env.URL, "--cloud-token-file=" + tokenFile,
		"--state-dir=" + filepath.Join(dir, "state"), "--socket=" + filepath.Join(dir, "ipamd.sock"), "--spool-dir=" + spool,
		"--introspect-addr=" + introspect, "--metrics-bind-address=", "--datapath=false", "--pod-check=none",
		"--cooldown=300ms", "--alloc-wait=5s", "--resync-interval=1s", "--visibility-grace=2s",
	}}
	ctx := context.Background()
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Seed: 11, Fault: api.Fault{Action: "*", VisibilityLagMillis: 300,
		Errors: []api.FaultError{{Code: api.CodeRequestLimitExceeded, Rate: 0.10}, {Code: api.CodeInternalError, Rate: 0.02}}}}); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("IPAMD_TEST_LOG") != "" {
			log, _ := os.ReadFile(p.logPath)
			if len(log) > 20000 {
				log = log[len(log)-20000:]
			}
			t.Logf("ipamd log tail:\n%s", log)
		}
	})
	waitReady(t, p.socket)
	began := time.Now()
	m := &model{held: map[wire.Owner]netip.Addr{}, byIP: map[netip.Addr]wire.Owner{}, codes: map[string]int{}}
	runChaos(t, p, &chaosClient{socket: p.socket, spool: spool, m: m}, ops, kills)
	t.Logf("%d operations, %d kill -9 in %v: %d allocations acknowledged, %d refused %v, %d releases spooled",
		ops, p.restarts, time.Since(began).Round(time.Millisecond), m.acked, m.refused, m.codes, m.spooled)
	if _, err := env.Admin.ClearFaults(ctx, &api.ClearFaultsRequest{}); err != nil {
		t.Fatal(err)
	}
	verifyChaos(t, n, introspect, spool, m)
}

// runChaos drives ops operations from 4 clients while killing the daemon kills times at random
// operation counts (and a random instant within).
func runChaos(t *testing.T, p *daemonProc, c *chaosClient, ops, kills int) {
	rng := rand.New(rand.NewPCG(42, 7))
	killAt := map[int]bool{}
	for len(killAt) < kills {
		killAt[rng.IntN(ops-ops/10)+ops/20] = true
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var killMu sync.Mutex
	var killers sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			var mine []wire.Owner
			for {
				i := int(next.Add(1)) - 1
				if i >= ops {
					return
				}
				if killAt[i] {
					delay := time.Duration(r.IntN(5000)) * time.Microsecond
					killers.Add(1)
					go func() {
						defer killers.Done()
						killMu.Lock()
						defer killMu.Unlock()
						time.Sleep(delay)
						p.kill9()
					}()
				}
				if len(mine) > 0 && (len(mine) >= 5 || r.IntN(2) == 0) {
					k := r.IntN(len(mine))
					c.del(mine[k])
					mine = append(mine[:k], mine[k+1:]...)
					continue
				}
				o := owner(w*100000 + i)
				c.add(o)
				c.m.mu.Lock()
				_, ok := c.m.held[o]
				c.m.mu.Unlock()
				if ok {
					mine = append(mine, o)
				}
			}
		}()
	}
	wg.Wait()
	killers.Wait()
	for _, f := range c.m.failures {
		t.Error(f)
	}
}

// verifyChaos waits for ipamd to settle (spool replayed, resync after the lag) and checks the
// invariants.
func verifyChaos(t *testing.T, n *node, introspect, spool string, m *model) {
	waitReady(t, filepath.Join(filepath.Dir(spool), "ipamd.sock"))
	var known map[netip.Addr]ipamd.AddressView
	var cloud map[netip.Addr]bool
	deadline := time.Now().Add(30 * time.Second)
	for {
		known = fetchAddresses(t, introspect)
		cloud = cloudAssigned(t, n)
		entries, _ := os.ReadDir(spool)
		if sameKeys(known, cloud) && len(entries) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !sameKeys(known, cloud) {
		t.Errorf("cloud assigns %d addresses, ipamd knows %d:\n only in cloud: %v\n only in ipamd: %v", len(cloud), len(known), missing(cloud, known), missing(known, cloud))
	}
	if entries, _ := os.ReadDir(spool); len(entries) != 0 {
		t.Errorf("%d spooled releases left unapplied", len(entries))
	}
	owners := map[wire.Owner]netip.Addr{}
	for ip, a := range known {
		if a.State != "assigned" {
			continue
		}
		if prev, dup := owners[a.Owner]; dup {
			t.Errorf("%s owns %s and %s", a.Owner.Key(), prev, ip)
		}
		owners[a.Owner] = ip
		if want, ok := m.held[a.Owner]; !ok {
			t.Errorf("%s holds %s but its plugin released it or never got it acknowledged (leak)", a.Owner.Key(), ip)
		} else if want != ip {
			t.Errorf("%s holds %s; it was acknowledged %s", a.Owner.Key(), ip, want)
		}
	}
	for o, ip := range m.held {
		if got, ok := owners[o]; !ok || got != ip {
			t.Errorf("acknowledged allocation %s -> %s lost (ipamd has %v)", o.Key(), ip, got)
		}
	}
	t.Logf("end state: %d addresses on the node, %d held by %d live owners", len(known), len(owners), len(m.held))
}

func fetchAddresses(t *testing.T, addr string) map[netip.Addr]ipamd.AddressView {
	resp, err := http.Get("http://" + addr + "/v1/addresses")
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	defer resp.Body.Close()
	var views []ipamd.AddressView
	if err := json.NewDecoder(resp.Body).Decode(&views); err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]ipamd.AddressView{}
	for _, v := range views {
		out[v.IP] = v
	}
	return out
}

func sameKeys[A, B any](a map[netip.Addr]A, b map[netip.Addr]B) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

func missing[A, B any](a map[netip.Addr]A, b map[netip.Addr]B) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k.String())
		}
	}
	sort.Strings(out)
	return out
}
