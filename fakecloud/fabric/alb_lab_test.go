package fabric

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/internal/state"
	"github.com/flatnet/flatnet/internal/netns"
)

// podWebPort is where the application load balancer tests' pods serve HTTP: GET /healthz
// answers the pod's health code, anything else "name peer path".
const podWebPort = 8081

// servePodWeb starts a pod's web server and returns its /healthz code (200 at first).
func servePodWeb(t *testing.T, p *pod) *atomic.Int64 {
	t.Helper()
	code := &atomic.Int64{}
	code.Store(http.StatusOK)
	ln := listenTCPIn(t, p.ns, netip.AddrPortFrom(p.ip, podWebPort))
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(int(code.Load()))
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "%s %s %s", p.name, host, r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return code
}

// albLab is the lab with an internet-facing application load balancer: HTTP 80 answers 404
// unless rule 10 (path prefix /a: group A, pods a and b) or rule 20 (header x-pool: b: group
// B, pod c) matches. The groups check GET /healthz every 5 s.
type albLab struct {
	*lbLab
	codes        []*atomic.Int64 // /healthz code of each pod
	tgA, tgB     string
	listener     string
	ruleA, ruleB string
	client       *http.Client // from the internet namespace
	accessLogs   string       // the fabric's AccessLogDir (made by the fabric when needed)
}

func newALBLab(t *testing.T) *albLab {
	t.Helper()
	logs := filepath.Join(t.TempDir(), "access")
	l := &albLab{lbLab: &lbLab{lab: newLabTuned(t, nil, state.Config{DataPlane: true}, func(c *Config) { c.AccessLogDir = logs })}, accessLogs: logs}
	l.internet = InternetNetns(l.prefix, l.vpc)
	l.pods = []*pod{
		newPod(t, l.lab, l.n1, "pod-a", "10.0.1.101"),
		newPod(t, l.lab, l.n1, "pod-b", "10.0.1.102"),
		newPod(t, l.lab, l.n2, "pod-c", "10.0.1.103"),
	}
	for _, p := range l.pods {
		l.codes = append(l.codes, servePodWeb(t, p))
	}
	l.lb = must(l.st.CreateLoadBalancer(admin(), &api.CreateLoadBalancerRequest{Name: "alb", SubnetID: l.subA.SubnetID,
		Type: api.LoadBalancerTypeApplication})).LoadBalancer
	hc := api.HealthCheck{Protocol: api.ProtocolHTTP, Path: "/healthz", IntervalSeconds: 5, TimeoutSeconds: 2,
		HealthyThresholdCount: 2, UnhealthyThresholdCount: 2}
	for _, g := range []struct {
		name string
		id   *string
		pods []*pod
	}{{"alb-a", &l.tgA, l.pods[:2]}, {"alb-b", &l.tgB, l.pods[2:]}} {
		*g.id = must(l.st.CreateTargetGroup(admin(), &api.CreateTargetGroupRequest{Name: g.name, Protocol: api.ProtocolHTTP,
			Port: podWebPort, VpcID: l.vpc, HealthCheck: hc})).TargetGroup.TargetGroupID
		var targets []api.Target
		for _, p := range g.pods {
			targets = append(targets, api.Target{IP: p.ip.String(), Port: podWebPort})
		}
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: *g.id, Targets: targets}))
		must(l.st.ModifyTargetGroupAttributes(admin(), &api.ModifyTargetGroupAttributesRequest{TargetGroupID: *g.id,
			Attributes: []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: "2"}}}))
	}
	l.listener = must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolHTTP, Port: 80, DefaultActions: []api.Action{fixedAction(404, "no route")}})).Listener.ListenerID
	l.ruleA = must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: l.listener, Priority: 10,
		Conditions: []api.RuleCondition{{Field: api.ConditionPathPattern, PathPatternConfig: &api.PathPatternConditionConfig{
			Values: []string{"/a"}, MatchType: api.MatchTypePrefix}}},
		Actions: []api.Action{forwardAction(l.tgA)}})).Rule.RuleID
	l.ruleB = must(l.st.CreateRule(admin(), &api.CreateRuleRequest{ListenerID: l.listener, Priority: 20,
		Conditions: []api.RuleCondition{{Field: api.ConditionHTTPHeader, HTTPHeaderConfig: &api.HTTPHeaderConditionConfig{
			HTTPHeaderName: "X-Pool", Values: []string{"b"}}}},
		Actions: []api.Action{forwardAction(l.tgB)}})).Rule.RuleID
	l.client = nsClient(l.internet)
	l.converge()
	return l
}

func fixedAction(code int, body string) api.Action {
	return api.Action{Type: api.ActionTypeFixedResponse, FixedResponseConfig: &api.FixedResponseActionConfig{
		StatusCode: fmt.Sprint(code), ContentType: "text/plain", MessageBody: body}}
}

func forwardAction(tg string) api.Action {
	return api.Action{Type: api.ActionTypeForward, TargetGroupID: tg}
}

// weighted forwards to groups with weights (group, weight, group, weight, ...).
func weighted(gw ...any) api.Action {
	fc := &api.ForwardActionConfig{}
	for i := 0; i+1 < len(gw); i += 2 {
		w := gw[i+1].(int)
		fc.TargetGroups = append(fc.TargetGroups, api.TargetGroupTuple{TargetGroupID: gw[i].(string), Weight: &w})
	}
	return api.Action{Type: api.ActionTypeForward, ForwardConfig: fc}
}

// nsClient is an HTTP client whose connections are made inside a namespace.
func nsClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test reads the served certificate itself
}

// get sends a request and returns the status and body.
func (l *albLab) get(url string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// spreadHTTP sends n requests and counts the answering pods; every answer must be a 200 from a
// pod that saw the load balancer's private address.
func (l *albLab) spreadHTTP(t *testing.T, url string, n int, header ...string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		code, body, err := l.get(url, header...)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s %v: %d %q, err %v", url, header, code, body, err)
		}
		f := strings.Fields(body)
		if len(f) < 2 || f[1] != l.lb.PrivateIPAddress {
			t.Errorf("answer %q: want a pod that saw the load balancer's %s", body, l.lb.PrivateIPAddress)
			continue
		}
		got[f[0]]++
	}
	return got
}

func (l *albLab) waitState(t *testing.T, want string) string {
	t.Helper()
	var reason string
	eventually(t, 20*time.Second, "the load balancer to be "+want, func() bool {
		var st string
		st, reason = l.lbState(t, l.lb.LoadBalancerID)
		return st == want
	})
	return reason
}

func (l *albLab) setRuleA(t *testing.T, a api.Action) {
	t.Helper()
	must(l.st.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: l.ruleA, Actions: []api.Action{a}}))
	l.converge()
}

// TestALB runs the application load balancer's data plane through its behaviours, in order, on
// one lab.
func TestALB(t *testing.T) {
	l := newALBLab(t)
	a, b, c := l.pods[0], l.pods[1], l.pods[2]
	base := "http://" + l.lb.PublicIPAddress

	t.Run("rules reach the right pods, which see the load balancer", func(t *testing.T) {
		if reason := l.waitState(t, api.LoadBalancerStateActive); reason != "" {
			t.Errorf("active with reason %q", reason)
		}
		if got := l.spreadHTTP(t, base+"/a/x", 30); !slices.Equal(sortedNames(got), podNames(a, b)) {
			t.Errorf("/a answers by pod %v, want pod-a and pod-b", got)
		}
		if got := l.spreadHTTP(t, base+"/other", 5, "X-Pool", "b"); !slices.Equal(sortedNames(got), podNames(c)) {
			t.Errorf("x-pool: b answers by pod %v, want pod-c", got)
		}
		if code, body, err := l.get(base + "/other"); err != nil || code != http.StatusNotFound || body != "no route" {
			t.Errorf("no rule: %d %q, err %v; want the default 404 %q", code, body, err, "no route")
		}
		// The convergence built every rule through its memory (ruleRevisions), which now
		// holds each of them.
		rules := 0
		for _, r := range l.st.Snapshot().Rules {
			if !r.IsDefault {
				rules++
			}
		}
		l.f.mu.Lock()
		kept := len(l.f.ruleRevs.byID)
		l.f.mu.Unlock()
		if rules == 0 || kept != rules {
			t.Errorf("the fabric remembers %d rules' engine rules, want the snapshot's %d", kept, rules)
		}
		var show strings.Builder
		if err := Show(&show, l.prefix, l.st.Snapshot()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(show.String(), "HTTP/80(l7)") {
			t.Errorf("fabric show lacks the application listener:\n%s", show.String())
		}
		// The private address answers too (from inside the VPC).
		vpc := nsClient(l.node(l.n3))
		resp, err := vpc.Get("http://" + l.lb.PrivateIPAddress + "/a")
		if err != nil {
			t.Fatalf("from the VPC to the private address: %v", err)
		}
		_ = resp.Body.Close()
	})

	t.Run("targets turn healthy; an unhealthy one gets no requests", func(t *testing.T) {
		l.waitHealth(t, l.tgA, api.TargetHealthHealthy, a, b)
		l.waitHealth(t, l.tgB, api.TargetHealthHealthy, c)
		l.codes[0].Store(http.StatusServiceUnavailable)
		l.waitHealth(t, l.tgA, api.TargetHealthUnhealthy, a)
		if _, reason := l.health(l.tgA, a.ip); reason != api.ReasonResponseCodeMismatch {
			t.Errorf("503: reason %q, want %s", reason, api.ReasonResponseCodeMismatch)
		}
		if got := l.spreadHTTP(t, base+"/a", 20); !slices.Equal(sortedNames(got), podNames(b)) {
			t.Errorf("answers by pod %v, want only the healthy pod-b", got)
		}
		l.codes[0].Store(http.StatusOK)
		l.waitHealth(t, l.tgA, api.TargetHealthHealthy, a)
	})

	t.Run("weighted forward", func(t *testing.T) {
		l.setRuleA(t, weighted(l.tgA, 1, l.tgB, 1))
		if got := l.spreadHTTP(t, base+"/a", 60); !slices.Equal(sortedNames(got), podNames(a, b, c)) {
			t.Errorf("1:1 answers by pod %v, want all three", got)
		}
		l.setRuleA(t, weighted(l.tgA, 0, l.tgB, 1))
		if got := l.spreadHTTP(t, base+"/a", 20); !slices.Equal(sortedNames(got), podNames(c)) {
			t.Errorf("0:1 answers by pod %v, want only pod-c", got)
		}
	})

	t.Run("rule changes under load fail no request", func(t *testing.T) {
		testALBChangesUnderLoad(t, l, base+"/a")
	})

	t.Run("https picks the certificate by SNI", func(t *testing.T) {
		testALBHTTPS(t, l)
	})

	t.Run("TLS passthrough routes by SNI, TCP forwards", func(t *testing.T) {
		testALBPassthrough(t, l)
	})

	t.Run("a terminating TLS listener begins TLS again to a TLS group, verified", func(t *testing.T) {
		testALBTLSOrigination(t, l)
	})

	t.Run("source ranges", func(t *testing.T) {
		setRanges := func(v string) {
			must(l.st.ModifyLoadBalancerAttributes(admin(), &api.ModifyLoadBalancerAttributesRequest{
				LoadBalancerID: l.lb.LoadBalancerID, Attributes: []api.Attribute{{Key: api.AttributeSourceRanges, Value: v}}}))
			l.converge()
		}
		setRanges("10.0.0.0/16")
		l.client.CloseIdleConnections() // the range applies to new connections
		if code, _, err := l.get(base + "/a"); err == nil {
			t.Errorf("the internet got %d from outside the source ranges", code)
		}
		if _, err := nsClient(l.node(l.n3)).Get(base + "/a"); err != nil {
			t.Errorf("a VPC node inside the source ranges: %v", err)
		}
		setRanges("")
		if _, _, err := l.get(base + "/a"); err != nil {
			t.Errorf("ranges cleared, the internet still cannot connect: %v", err)
		}
	})

	t.Run("access log", func(t *testing.T) {
		file := filepath.Join(l.accessLogs, l.lb.LoadBalancerID+".log")
		setLog := func(on bool) {
			must(l.st.ModifyLoadBalancerAttributes(admin(), &api.ModifyLoadBalancerAttributesRequest{
				LoadBalancerID: l.lb.LoadBalancerID, Attributes: []api.Attribute{{Key: api.AttributeAccessLogs, Value: strconv.FormatBool(on)}}}))
		}
		type line struct {
			LB, Path, Target, TargetGroup, Client string
			Status                                int
		}
		lines := func() []line {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var out []line
			for s := range strings.Lines(string(b)) {
				var ln line
				if err := json.Unmarshal([]byte(s), &ln); err != nil {
					t.Fatalf("access log line %q: %v", s, err)
				}
				out = append(out, ln)
			}
			return out
		}
		// A file the fabric cannot open leaves the load balancer routing traffic, but
		// active_impaired with the reason, until it can.
		if err := os.MkdirAll(file, 0o750); err != nil {
			t.Fatal(err)
		}
		setLog(true)
		if reason := l.waitState(t, api.LoadBalancerStateActiveImpaired); !strings.Contains(reason, "access log") || !strings.Contains(reason, "is a directory") {
			t.Errorf("impaired with reason %q; want the access log that could not be opened", reason)
		}
		l.spreadHTTP(t, base+"/a/impaired", 3) // traffic flows all the same
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		l.waitState(t, api.LoadBalancerStateActive)
		l.converge()
		l.spreadHTTP(t, base+"/a/logged", 3)
		code, _, err := l.get(base + "/nowhere")
		if err != nil || code != http.StatusNotFound {
			t.Fatalf("GET /nowhere: %d, %v", code, err)
		}
		var got []line
		eventually(t, 5*time.Second, "4 access log lines", func() bool { got = lines(); return len(got) >= 4 })
		if len(got) != 4 {
			t.Fatalf("%d access log lines, want 4: %+v", len(got), got)
		}
		for _, ln := range got[:3] {
			if ln.LB != l.lb.LoadBalancerID || ln.Path != "/a/logged" || ln.Status != 200 || ln.TargetGroup != l.tgA ||
				!strings.HasPrefix(ln.Target, "10.0.1.10") || ln.Client == "" {
				t.Errorf("access log line %+v; want a 200 for /a/logged from group %s's pods", ln, l.tgA)
			}
		}
		if ln := got[3]; ln.Path != "/nowhere" || ln.Status != 404 || ln.Target != "" {
			t.Errorf("access log line %+v; want the default 404 for /nowhere, no target", ln)
		}
		// An outside rotation moves the file away; ReopenAccessLogs (fakecloud serve's SIGHUP)
		// starts a new one at the path, the moved one keeping its lines.
		if err := os.Rename(file, file+".moved"); err != nil {
			t.Fatal(err)
		}
		if err := l.f.ReopenAccessLogs(); err != nil {
			t.Fatal(err)
		}
		l.spreadHTTP(t, base+"/a/reopened", 2)
		eventually(t, 5*time.Second, "2 lines in the reopened file", func() bool {
			_, err := os.Stat(file)
			return err == nil && len(lines()) >= 2
		})
		if got := lines(); len(got) != 2 || got[0].Path != "/a/reopened" || got[1].Path != "/a/reopened" {
			t.Errorf("reopened access log: %+v; want the 2 requests since", got)
		}
		if b, err := os.ReadFile(file + ".moved"); err != nil || strings.Count(string(b), "\n") != 4 {
			t.Errorf("the moved access log: %d lines, %v; want its 4", strings.Count(string(b), "\n"), err)
		}
		// A file that cannot be written (its directory gone) leaves the load balancer
		// active_impaired, traffic flowing and the lost lines counted, until it can again.
		if err := os.RemoveAll(l.accessLogs); err != nil {
			t.Fatal(err)
		}
		if err := l.f.ReopenAccessLogs(); err == nil {
			t.Error("reopening an access log in a removed directory succeeded")
		}
		l.spreadHTTP(t, base+"/a/lost", 2)
		if reason := l.waitState(t, api.LoadBalancerStateActiveImpaired); !strings.Contains(reason, "no such file or directory") || !strings.Contains(reason, "lines lost") {
			t.Errorf("impaired with reason %q; want the missing directory and the lines lost", reason)
		}
		if err := os.MkdirAll(l.accessLogs, 0o750); err != nil {
			t.Fatal(err)
		}
		l.waitState(t, api.LoadBalancerStateActive)
		l.spreadHTTP(t, base+"/a/back", 1)
		eventually(t, 5*time.Second, "a line in the file opened again", func() bool {
			_, err := os.Stat(file)
			return err == nil && len(lines()) >= 1
		})
		if got := lines(); len(got) != 1 || got[0].Path != "/a/back" {
			t.Errorf("access log once it works again: %+v; want the one request since", got)
		}
		setLog(false)
		l.converge()
		l.spreadHTTP(t, base+"/a/unlogged", 3)
		time.Sleep(100 * time.Millisecond) // lines are written in the background: give any a chance
		if got := lines(); len(got) != 1 {
			t.Errorf("%d access log lines after the access log was switched off, want still 1", len(got))
		}
	})

	t.Run("a listener the engine cannot open fails the load balancer until it can", func(t *testing.T) {
		taken, err := listenIn(LBNetns(l.prefix, l.lb.LoadBalancerID), "0.0.0.0:8088")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
			Protocol: api.ProtocolHTTP, Port: 8088, DefaultActions: []api.Action{fixedAction(200, "on 8088")}}))
		reason := l.waitState(t, api.LoadBalancerStateFailed)
		if !strings.Contains(reason, "8088") || !strings.Contains(reason, "address already in use") {
			t.Errorf("failed with reason %q; want the listener that could not open and why", reason)
		}
		if got := l.spreadHTTP(t, base+"/a", 5); len(got) == 0 {
			t.Errorf("the configuration that was running stopped serving")
		}
		_ = taken.Close()
		l.waitState(t, api.LoadBalancerStateActive)
		if code, body, err := l.get(base + ":8088/"); err != nil || code != http.StatusOK || body != "on 8088" {
			t.Errorf("new listener: %d %q, err %v", code, body, err)
		}
	})

	t.Run("a data-plane fault fails the load balancer honestly", func(t *testing.T) {
		l.faults.set(api.DataPlaneProgramLoadBalancer, errors.New("injected: the L7 engine is out of order"))
		defer l.faults.set(api.DataPlaneProgramLoadBalancer, nil)
		// A change, which the engine is asked to apply (the fabric cannot converge meanwhile).
		must(l.st.ModifyRule(admin(), &api.ModifyRuleRequest{RuleID: l.ruleA, Actions: []api.Action{weighted(l.tgA, 1, l.tgB, 0)}}))
		reason := l.waitState(t, api.LoadBalancerStateFailed)
		if !strings.Contains(reason, "injected") {
			t.Errorf("failed with reason %q, want the injected fault", reason)
		}
		eventually(t, 10*time.Second, "the failed load balancer's targets to be unavailable", func() bool {
			st, _ := l.health(l.tgA, a.ip)
			return st == api.TargetHealthUnavailable
		})
		l.faults.set(api.DataPlaneProgramLoadBalancer, nil)
		l.waitState(t, api.LoadBalancerStateActive)
		l.waitHealth(t, l.tgA, api.TargetHealthHealthy, a, b)
		if got := l.spreadHTTP(t, base+"/a", 20); !slices.Equal(sortedNames(got), podNames(a, b)) {
			t.Errorf("after recovery answers by pod %v, want pod-a and pod-b", got)
		}
	})

	t.Run("a draining target gets no new requests, then leaves", func(t *testing.T) {
		target := []api.Target{{IP: b.ip.String(), Port: podWebPort}}
		must(l.st.DeregisterTargets(admin(), &api.DeregisterTargetsRequest{TargetGroupID: l.tgA, Targets: target}))
		l.converge()
		if st, _ := l.health(l.tgA, b.ip); st != api.TargetHealthDraining {
			t.Errorf("deregistered target is %s, want draining", st)
		}
		if got := l.spreadHTTP(t, base+"/a", 10); !slices.Equal(sortedNames(got), podNames(a)) {
			t.Errorf("answers by pod %v while pod-b drains, want pod-a", got)
		}
		eventually(t, 15*time.Second, "pod-b to finish draining", func() bool {
			st, _ := l.health(l.tgA, b.ip)
			return st == "gone"
		})
		must(l.st.RegisterTargets(admin(), &api.RegisterTargetsRequest{TargetGroupID: l.tgA, Targets: target}))
		l.converge()
	})

	t.Run("a restarted fabric serves again", func(t *testing.T) {
		l.stop()
		l.start()
		l.waitState(t, api.LoadBalancerStateActive)
		l.client.CloseIdleConnections()
		eventually(t, 10*time.Second, "the restarted engine to answer", func() bool {
			code, _, err := l.get(base + "/a")
			return err == nil && code == http.StatusOK
		})
	})

	t.Run("delete closes the engine and the namespace", func(t *testing.T) {
		must(l.st.DeleteLoadBalancer(admin(), &api.DeleteLoadBalancerRequest{LoadBalancerID: l.lb.LoadBalancerID}))
		l.converge()
		if left, _ := netns.List(l.prefix + "l-"); len(left) > 0 {
			t.Errorf("load balancer namespaces left: %v", left)
		}
		if len(l.f.albs) != 0 {
			t.Errorf("engines left: %d", len(l.f.albs))
		}
		l.client.CloseIdleConnections()
		if code, _, err := l.get(base + "/a"); err == nil {
			t.Errorf("the deleted load balancer's VIP still answers %d", code)
		}
	})
}

// testALBChangesUnderLoad switches rule A between the groups while clients keep requesting:
// every request must succeed, and both groups must have answered.
func testALBChangesUnderLoad(t *testing.T, l *albLab, url string) {
	var stop atomic.Bool
	var failed, served atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				code, body, err := l.get(url)
				if err != nil || code != http.StatusOK {
					failed.Add(1)
					t.Logf("failed request: %d %q %v", code, body, err)
					continue
				}
				served.Add(1)
				mu.Lock()
				seen[strings.Fields(body)[0]] = true
				mu.Unlock()
			}
		})
	}
	for i := range 10 {
		if i%2 == 0 {
			l.setRuleA(t, forwardAction(l.tgA))
		} else {
			l.setRuleA(t, forwardAction(l.tgB))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	l.setRuleA(t, forwardAction(l.tgA))
	if failed.Load() != 0 || served.Load() == 0 {
		t.Errorf("%d requests failed, %d served across 10 rule changes; want none failed", failed.Load(), served.Load())
	}
	if !seen["pod-c"] || (!seen["pod-a"] && !seen["pod-b"]) {
		t.Errorf("answered by %v: both groups should have served", seen)
	}
	t.Logf("%d requests served across 10 rule changes", served.Load())
}

// testALBHTTPS serves HTTPS 443 with two imported certificates: the client's SNI name picks
// one, an unknown name gets the default.
func testALBHTTPS(t *testing.T, l *albLab) {
	var certs []string
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certPEM, keyPEM := selfSigned(t, name)
		certs = append(certs, must(l.st.ImportCertificate(admin(), &api.ImportCertificateRequest{
			Certificate: certPEM, PrivateKey: keyPEM})).Certificate.CertificateID)
	}
	ls := must(l.st.CreateListener(admin(), &api.CreateListenerRequest{LoadBalancerID: l.lb.LoadBalancerID,
		Protocol: api.ProtocolHTTPS, Port: 443, DefaultActions: []api.Action{forwardAction(l.tgA)},
		Certificates: []api.ListenerCertificate{{CertificateID: certs[0]}}})).Listener
	must(l.st.AddListenerCertificates(admin(), &api.AddListenerCertificatesRequest{ListenerID: ls.ListenerID,
		Certificates: []api.ListenerCertificate{{CertificateID: certs[1]}}}))
	l.converge()
	l.waitState(t, api.LoadBalancerStateActive)
	for _, tc := range []struct{ sni, want string }{
		{"b.example.com", "b.example.com"}, {"a.example.com", "a.example.com"}, {"other.example.org", "a.example.com"},
	} {
		req, err := http.NewRequest(http.MethodGet, "https://"+l.lb.PublicIPAddress+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.sni
		tr := l.client.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true} //nolint:gosec // checked below
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("https with SNI %s: %v", tc.sni, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
		if got := resp.TLS.PeerCertificates[0].DNSNames; !slices.Equal(got, []string{tc.want}) {
			t.Errorf("SNI %s: served the certificate of %v, want %s", tc.sni, got, tc.want)
		}
		if f := strings.Fields(string(body)); resp.StatusCode != http.StatusOK || len(f) < 2 || f[1] != l.lb.PrivateIPAddress {
			t.Errorf("SNI %s: %d %q, want a pod's answer that saw %s", tc.sni, resp.StatusCode, body, l.lb.PrivateIPAddress)
		}
	}

	// Hostname scopes through the API: a request for b.example.com on a connection opened for
	// a.example.com is misdirected (421); on its own connection it is served.
	scopes := []string{"b.example.com"}
	must(l.st.ModifyListener(admin(), &api.ModifyListenerRequest{ListenerID: ls.ListenerID, HostnameScopes: &scopes}))
	l.converge()
	l.waitState(t, api.LoadBalancerStateActive)
	for _, tc := range []struct {
		sni  string
		want int
	}{{"a.example.com", http.StatusMisdirectedRequest}, {"b.example.com", http.StatusOK}} {
		req, err := http.NewRequest(http.MethodGet, "https://"+l.lb.PublicIPAddress+"/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "b.example.com"
		tr := l.client.Transport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true} //nolint:gosec // test certificates
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("https with SNI %s: %v", tc.sni, err)
		}
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("Host b.example.com on a connection for %s: %d, want %d", tc.sni, resp.StatusCode, tc.want)
		}
	}
}

// selfSigned makes a P-256 certificate for name, valid for a day, as PEM.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}
