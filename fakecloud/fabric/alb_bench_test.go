package fabric

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
)

// albBenchWorkers is the number of client goroutines of the throughput benchmarks, each with a
// kept-alive connection: the same for both paths compared.
const albBenchWorkers = 8

// albBenchRound is how long each path is loaded in one round.
const albBenchRound = time.Second

// albBenchPort is where the benchmarks' pod serves HTTP (benchPod has 8080 and 8081).
const albBenchPort = 8090

// The ports of BenchmarkALBVersusDirect's relays on the load balancer's addresses.
const (
	albRelayPort        = 8081
	albPollingRelayPort = 8082
)

// albBench is a lab with one pod serving HTTP on albBenchPort ("ok" to any request) and an
// internet-facing application load balancer whose target group holds the pod; listener 80
// forwards everything to it. With rules > 0 the store takes that many rules.
type albBench struct {
	*lab
	internet string
	pod      netip.Addr
	lb       api.LoadBalancer
	tg       string
	listener string
	client   *http.Client
	// loader, when set, is the process that runs the client (and the pod): load asks it.
	loader *albLoader
	// podLoader, when set, is the process that serves the pod apart from the loader's client;
	// load adds its CPU to the loader's.
	podLoader *albLoader
}

func newALBBench(b *testing.B, rules int) *albBench {
	return newALBBenchServed(b, rules, func(l *albBench) { l.pod = benchWebPod(b, l.lab) })
}

// newALBBenchServed is newALBBench with the pod's HTTP server started by serve, which sets
// l.pod.
func newALBBenchServed(b *testing.B, rules int, serve func(l *albBench)) *albBench {
	b.Helper()
	l := &albBench{lab: newLabWith(b, nil, state.Config{DataPlane: true, ALBLimits: state.ALBLimits{RulesPerLoadBalancer: max(rules, 100)}})}
	l.internet = InternetNetns(l.prefix, l.vpc)
	serve(l)
	l.lb = must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "bench", SubnetID: l.subA.SubnetID,
		Type: api.LoadBalancerTypeApplication})).LoadBalancer
	l.tg = must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: "bench", Protocol: api.ProtocolHTTP,
		Port: albBenchPort, VpcID: l.vpc})).TargetGroup.TargetGroupID
	must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: l.tg,
		Targets: []api.Target{{IP: l.pod.String(), Port: albBenchPort}}}))
	l.listener = must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: []api.Action{forwardAction(l.tg)}})).Listener.ListenerID
	tr := &http.Transport{DialContext: nsClient(l.internet).Transport.(*http.Transport).DialContext,
		MaxIdleConnsPerHost: 4 * albBenchWorkers}
	b.Cleanup(tr.CloseIdleConnections)
	l.client = &http.Client{Timeout: 5 * time.Second, Transport: tr}
	l.converge()
	for _, u := range []string{l.viaLB(80, "/"), l.direct("/")} {
		eventually(b, 10*time.Second, "a first answer from "+u, func() bool {
			code, _, err := l.get(u)
			return err == nil && code == http.StatusOK
		})
	}
	return l
}

func (l *albBench) viaLB(port int, path string) string {
	return fmt.Sprintf("http://%s:%d%s", l.lb.PublicIPAddress, port, path)
}

func (l *albBench) direct(path string) string {
	return fmt.Sprintf("http://%s%s", netip.AddrPortFrom(l.pod, albBenchPort), path)
}

func (l *albBench) get(url string) (int, string, error) {
	resp, err := l.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// benchWebPod is one pod on n1 (10.0.1.150) whose server answers "ok" to any request.
func benchWebPod(b *testing.B, l *lab) netip.Addr {
	b.Helper()
	ip := benchPod(b, l)
	ln, err := listenIn(l.node(l.n1), netip.AddrPortFrom(ip, albBenchPort).String())
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ip
}

// pathLoad is what one path got over the rounds of a throughput benchmark.
type pathLoad struct {
	name    string
	url     string
	n       int
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time (without a loader: client, proxy and pod)
	// loaderCPU is the loader process's CPU time (client and pod), when there is one.
	loaderCPU time.Duration
	lat       []time.Duration
	rates     []float64 // requests/s of each round
	// busy, when set, is true while this path is loaded: the busy-polling relay it goes
	// through polls only then.
	busy *atomic.Bool
	// sleep are epoll instances whose busy polling (busypoll.go) is off while this path is
	// loaded, and back to the default after.
	sleep []int
}

// load sends GETs to url from albBenchWorkers goroutines for albBenchRound and adds what they
// got to p. With a loader process the loader sends them and p.cpu is this process's CPU (the
// fabric and the load balancer), p.loaderCPU the loader's (client and pod).
func (l *albBench) load(b *testing.B, p *pathLoad) {
	if p.busy != nil {
		p.busy.Store(true)
		defer p.busy.Store(false)
	}
	if p.sleep != nil {
		if err := setBusyPollOn(p.sleep, 0); err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := setBusyPollOn(p.sleep, DefaultLBBusyPoll); err != nil {
				b.Fatal(err)
			}
		}()
	}
	cpu0 := processCPU()
	var podCPU0 time.Duration
	if l.podLoader != nil {
		podCPU0 = l.podLoader.cpu(b)
	}
	var r loadResult
	if l.loader != nil {
		var err error
		if r, err = l.loader.load(p.url); err != nil {
			b.Fatal(err)
		}
	} else {
		r = loadRound(func(url string) (int, error) {
			code, _, err := l.get(url)
			return code, err
		}, p.url)
	}
	if r.Err != "" {
		b.Fatal(r.Err)
	}
	p.n, p.elapsed, p.cpu = p.n+r.N, p.elapsed+r.Elapsed, p.cpu+processCPU()-cpu0
	p.loaderCPU += r.CPU
	if l.podLoader != nil {
		p.loaderCPU += l.podLoader.cpu(b) - podCPU0
	}
	p.lat = append(p.lat, r.Lat...)
	p.rates = append(p.rates, float64(r.N)/r.Elapsed.Seconds())
}

// loadResult is one round of load on one path.
type loadResult struct {
	N       int
	Elapsed time.Duration
	Lat     []time.Duration
	CPU     time.Duration // of the loader process, when it is one
	Err     string
}

// loadRound sends GETs to url through get from albBenchWorkers goroutines for albBenchRound.
func loadRound(get func(url string) (int, error), url string) loadResult {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []string
		r    loadResult
	)
	start := time.Now()
	end := start.Add(albBenchRound)
	for range albBenchWorkers {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				code, err := get(url)
				if err != nil || code != http.StatusOK {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("GET %s: %d, %v", url, code, err))
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			r.Lat, r.N = append(r.Lat, mine...), r.N+len(mine)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	if len(errs) > 0 {
		r.Err = errs[0]
	}
	return r
}

// compare loads the paths in b.N rounds, each round starting one path further along, and
// reports each one's requests/s, p50/p99 and CPU per request, and the median over the rounds
// of each path's requests/s over the last one's: "ratio" for the first path, "<name>-ratio"
// for the others before the last.
func (l *albBench) compare(b *testing.B, paths ...*pathLoad) {
	b.ResetTimer()
	for i := range b.N {
		for j := range paths {
			l.load(b, paths[(i+j)%len(paths)])
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	base := paths[len(paths)-1]
	for k, p := range paths {
		b.ReportMetric(float64(p.n)/p.elapsed.Seconds(), p.name+"-req/s")
		b.ReportMetric(ms(pct(p.lat, 50)), p.name+"-p50-ms")
		b.ReportMetric(ms(pct(p.lat, 99)), p.name+"-p99-ms")
		if l.loader == nil {
			b.ReportMetric(float64(p.cpu.Microseconds())/float64(p.n), p.name+"-cpu-µs/req")
		} else {
			b.ReportMetric(float64(p.cpu.Microseconds())/float64(p.n), p.name+"-lbproc-cpu-µs/req")
			b.ReportMetric(float64(p.loaderCPU.Microseconds())/float64(p.n), p.name+"-clientpod-cpu-µs/req")
		}
		if p == base {
			continue
		}
		var ratios []float64
		for i := range p.rates {
			ratios = append(ratios, p.rates[i]/base.rates[i])
		}
		slices.Sort(ratios)
		name := "ratio"
		if k > 0 {
			name = p.name + "-ratio"
		}
		b.ReportMetric(ratios[len(ratios)/2], name)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkALBVersusDirect measures, side by side in one run, HTTP requests from the internet
// namespace to one pod through an application load balancer (the L7 engine in the load
// balancer's namespace, one rule: the listener's default forward) and straight to the pod's
// IP: the same client (albBenchWorkers goroutines on kept-alive connections), the same pod
// server. Each operation is one round of albBenchRound per path, each round starting with the
// next path. Reported: requests/s, p50/p99 latency and CPU per request of each path, and the
// median of the rounds' through-LB/direct requests/s ratio. Three placements:
//
//   - shared: client, pod, fabric and load balancer in this process, on every CPU;
//   - lb-own-cpu: a cloud's load balancer runs on the provider's machines, not on the node.
//     The client and the pod run in a loader process (this test binary again) pinned to CPU 0
//     with GOMAXPROCS 1; this process (fabric and load balancer) is pinned to CPU 1 with
//     GOMAXPROCS 1. Both paths are measured so, the direct one never touching CPU 1.
//   - lb-own-cpu-pod-apart: as lb-own-cpu, but the pod's server is a process of its own beside
//     the client's, both on CPU 0 with GOMAXPROCS 1, as a pod and its client are. In one Go
//     process with one P, a direct request and its answer pass between goroutines without the
//     thread ever sleeping, which no real client and pod have.
//
// The load balancer busy-polls its link as the fabric makes it by default (busypoll.go). The two
// lb-own-cpu placements also load it with this process's busy polling off during the path's
// rounds (alb-sleeping-ratio), and two bare TCP relays in the load balancer's place (its
// namespace, its CPU; alb_relay_test.go), reported as relay-ratio and polling-relay-ratio:
// what any proxy there costs the client's and the pod's CPU. The relay runs on the same Go
// runtime as the engine, busy polling included; the polling relay spins on its own epoll set.
//
// Run it with: go test -run '^$' -bench ALBVersusDirect -benchtime 6x ./fakecloud/fabric/
func BenchmarkALBVersusDirect(b *testing.B) {
	b.Run("shared", func(b *testing.B) {
		l := newALBBench(b, 0)
		l.compare(b, &pathLoad{name: "alb", url: l.viaLB(80, "/x")}, &pathLoad{name: "direct", url: l.direct("/x")})
	})
	b.Run("lb-own-cpu", func(b *testing.B) {
		if runtime.NumCPU() < 2 {
			b.Skip("needs 2 CPUs: one for the load balancer, one for client and pod")
		}
		if _, err := exec.LookPath("taskset"); err != nil {
			b.Skip("needs taskset (util-linux) to pin the loader process")
		}
		l := newALBBenchServed(b, 0, func(l *albBench) {
			l.pod = benchPod(b, l.lab)
			l.loader = startALBLoader(b, l.node(l.n1), netip.AddrPortFrom(l.pod, albBenchPort), l.internet, 0)
		})
		restore := pinProcess(b, 1)
		defer restore()
		l.compare(b, l.pinnedPaths(b)...)
	})
	b.Run("lb-own-cpu-pod-apart", func(b *testing.B) {
		if runtime.NumCPU() < 2 {
			b.Skip("needs 2 CPUs: one for the load balancer, one for client and pod")
		}
		if _, err := exec.LookPath("taskset"); err != nil {
			b.Skip("needs taskset (util-linux) to pin the loader processes")
		}
		l := newALBBenchServed(b, 0, func(l *albBench) {
			l.pod = benchPod(b, l.lab)
			l.podLoader = startALBLoader(b, l.node(l.n1), netip.AddrPortFrom(l.pod, albBenchPort), "", 0)
			l.loader = startALBLoader(b, "", netip.AddrPort{}, l.internet, 0)
		})
		restore := pinProcess(b, 1)
		defer restore()
		l.compare(b, l.pinnedPaths(b)...)
	})
}

// BenchmarkALBRuleChange measures the lag from a rule change at fakecloud's API (ModifyRule on
// the store, the call the API server makes) to the data plane serving it: the time until a
// client in the internet namespace, asking in a loop on a kept-alive connection, gets the new
// rule's answer. The rule is a fixed response whose body changes every operation; the
// listener holds 10 or 1,000 rules. The fabric converges from the store's change stream as
// `fakecloud serve` runs it. Run it with:
// go test -run '^$' -bench ALBRuleChange -benchtime 200x ./fakecloud/fabric/
func BenchmarkALBRuleChange(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			l := newALBBench(b, n)
			ids := l.createRules(b, n)
			lastURL, lastBody := l.viaLB(80, fmt.Sprint("/r", n-1)), fmt.Sprint("rule ", n-1)
			eventually(b, 60*time.Second, "the last rule to answer", func() bool {
				_, body, err := l.get(lastURL)
				return err == nil && body == lastBody
			})
			rule := ids[0] // the first by priority: /r0
			url := l.viaLB(80, "/r0")
			var lags []time.Duration
			b.ResetTimer()
			for i := range b.N {
				body := fmt.Sprint("gen-", i)
				t0 := time.Now()
				must(l.st.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: rule, Actions: []api.Action{fixedAction(200, body)}}))
				for {
					_, got, err := l.get(url)
					if err == nil && got == body {
						break
					}
					if time.Since(t0) > 10*time.Second {
						b.Fatalf("rule change %d not served after 10s (last answer %q, %v)", i, got, err)
					}
				}
				lags = append(lags, time.Since(t0))
			}
			b.StopTimer()
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(pct(lags, 50)), "p50-ms")
			b.ReportMetric(ms(pct(lags, 99)), "p99-ms")
			b.ReportMetric(ms(slices.Max(lags)), "max-ms")
		})
	}
}

// pinnedPaths are the paths the placements with the load balancer on a CPU of its own
// compare: through the load balancer (busy-polling, then sleeping), through the two relays in
// its place (alb_relay_test.go; started here, after the process was pinned, so that they run
// on its CPU), and straight to the pod, the baseline.
func (l *albBench) pinnedPaths(b *testing.B) []*pathLoad {
	ns := LBNetns(l.prefix, l.lb.LoadBalancerID)
	target := netip.AddrPortFrom(l.pod, albBenchPort)
	runtimePoller, err := epollFDs() // before the polling relay makes an instance of its own
	if err != nil {
		b.Fatal(err)
	}
	startRelay(b, ns, albRelayPort, target)
	polling := startPollingRelay(b, ns, albPollingRelayPort, target)
	return []*pathLoad{
		{name: "alb", url: l.viaLB(80, "/x")},
		{name: "alb-sleeping", url: l.viaLB(80, "/x"), sleep: runtimePoller},
		{name: "relay", url: l.viaLB(albRelayPort, "/x")},
		{name: "polling-relay", url: l.viaLB(albPollingRelayPort, "/x"), busy: &polling.active},
		{name: "direct", url: l.direct("/x")},
	}
}

// createRules gives the listener n rules, /r0 to /r<n-1> (exact paths, priorities 1 to n),
// each a fixed response, and returns their IDs by priority.
func (l *albBench) createRules(b *testing.B, n int) []string {
	b.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: l.listener, Priority: i + 1,
			Conditions: []api.RuleCondition{{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{
				Values: []string{fmt.Sprint("/r", i)}}}},
			Actions: []api.Action{fixedAction(200, fmt.Sprint("rule ", i))}})).Rule.RuleID)
	}
	return ids
}

// BenchmarkALBThousandRules measures a listener of 1,000 rules: the time from the first
// CreateRule to the last rule answering on the wire (the rules are created one call after
// another; the fabric programs what it sees as they come), then the cost of a request that
// only the last rule matches (each of the 1,000 is evaluated first), against a listener of
// 10 rules on the same load balancer, side by side as in BenchmarkALBVersusDirect: every rule
// forwards to the pod; a request no rule matches gets the listeners' default 404. Run it with:
// go test -run '^$' -bench ALBThousandRules -benchtime 6x ./fakecloud/fabric/
func BenchmarkALBThousandRules(b *testing.B) {
	l := newALBBench(b, 1010)
	listener := func(port int) string {
		return must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
			Protocol: api.ProtocolHTTP, Port: port, DefaultActions: []api.Action{fixedAction(404, "no rule")}})).Listener.ListenerID
	}
	big, small := listener(81), listener(8080)
	forwardRules := func(listener string, n int) {
		for i := range n {
			must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: listener, Priority: i + 1,
				Conditions: []api.RuleCondition{{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{
					Values: []string{fmt.Sprint("/r", i)}}}},
				Actions: []api.Action{forwardAction(l.tg)}}))
		}
	}
	forwardRules(small, 10)
	l.converge()
	t0 := time.Now()
	forwardRules(big, 1000)
	last := l.viaLB(81, "/r999")
	for {
		code, body, err := l.get(last)
		if err == nil && code == http.StatusOK && body == "ok" {
			break
		}
		if time.Since(t0) > 60*time.Second {
			b.Fatalf("rule 1,000 not served 60s after the first CreateRule (%d %q, %v)", code, body, err)
		}
	}
	program := time.Since(t0)
	l.compare(b, &pathLoad{name: "rules1000", url: last}, &pathLoad{name: "rules10", url: l.viaLB(8080, "/r9")})
	b.ReportMetric(float64(program)/float64(time.Millisecond), "program-1000-ms") // after compare, which resets the metrics
}
