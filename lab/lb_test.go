package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/nodeagent"
)

// gateCondition is lbcontroller's readiness gate.
const gateCondition = "flatnet.io/load-balancer-ready"

// gatedDeployment is EchoDeployment with the load balancer's readiness gate and a rolling
// update that never drops below the desired count.
func gatedDeployment(name string, replicas int32) *appsv1.Deployment {
	d := EchoDeployment(demoNamespace, name, replicas)
	d.Spec.Template.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gateCondition}}
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(2))}}
	return d
}

// TestLoadBalancer is issue 8's acceptance in the lab: a LoadBalancer Service gets a VIP that
// reaches every pod straight from the internet (each pod sees the load balancer as its peer);
// scaling shows in the target group; a rolling update under continuous load loses no request;
// deleting the Service removes the load balancer, also when the controller died mid-way and the
// Service vanished meanwhile (garbage collection); another class is ignored; bad input is
// reported and builds nothing.
func TestLoadBalancer(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l, kc := upLBLab(ctx, t, "flb-", 7487, 6448)
	nodeIPs := map[string]bool{}
	for _, n := range l.State().Nodes {
		nodeIPs[n.PrimaryIP] = true
	}

	// 1. VIP in status; every pod answers through it and sees the load balancer as its peer.
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, gatedDeployment("web", 6), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoLBService(demoNamespace, "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vip, err := WaitLBIngress(ctx, kc, demoNamespace, "web", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := WaitPodsReady(ctx, kc, demoNamespace, "app=web", 6, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	lb := oneLB(ctx, t, l, "web")
	if lb.VIP != vip || lb.PublicIPAddress != vip {
		t.Errorf("status VIP %s, cloud VIP %s public %s", vip, lb.VIP, lb.PublicIPAddress)
	}
	byPod, peers, err := l.ThroughVIP(ctx, "", vip, 36)
	if err != nil {
		t.Fatal(err)
	}
	if len(byPod) != 6 {
		t.Errorf("through the VIP %d pods answered, want 6: %v", len(byPod), byPod)
	}
	for p := range peers {
		if p != lb.PrivateIPAddress || nodeIPs[p] {
			t.Errorf("a pod saw peer %s, want only the load balancer's %s", p, lb.PrivateIPAddress)
		}
	}
	if err := l.WaitTargetsHealthy(ctx, lb.LoadBalancerID, podIPs(pods), nil, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Scaling down and up shows in the target group: removed pods drain, new ones register.
	scale(ctx, t, kc, "web", 3)
	pods, err = WaitPodsReady(ctx, kc, demoNamespace, "app=web", 3, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitTargetsHealthy(ctx, lb.LoadBalancerID, podIPs(pods), []string{api.TargetHealthDraining}, time.Minute); err != nil {
		t.Fatal(err)
	}
	scale(ctx, t, kc, "web", 6)
	pods, err = WaitPodsReady(ctx, kc, demoNamespace, "app=web", 6, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitTargetsHealthy(ctx, lb.LoadBalancerID, podIPs(pods), []string{api.TargetHealthDraining}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// 2. A rolling update under continuous load loses nothing.
	rollUnderLoad(ctx, t, l, kc, vip)

	// 3a. Another class is ignored.
	other := EchoLBService(demoNamespace, "other")
	other.Spec.LoadBalancerClass = ptr.To("example.com/other")
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// 4. Bad input: an Event and a condition say what is wrong; nothing reaches the cloud.
	bad := map[string]func(*corev1.Service){
		"bad-scheme": func(s *corev1.Service) { s.Annotations[model.AnnotationScheme] = "public" },
		// Valid for the API server, not for an IPv4 load balancer.
		"bad-range":   func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"2001:db8::/64"} },
		"bad-sctp":    func(s *corev1.Service) { s.Spec.Ports[0].Protocol = corev1.ProtocolSCTP },
		"bad-timeout": func(s *corev1.Service) { s.Annotations[model.AnnotationHCTimeout] = "soon" },
	}
	for name, mut := range bad {
		s := EchoLBService(demoNamespace, name)
		mut(s)
		if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name := range bad {
		waitEvent(ctx, t, kc, "Service", name, "InvalidConfiguration", "")
		waitServiceCondition(ctx, t, kc, name, "False", "InvalidConfiguration")
		if lbs, err := l.LoadBalancersOf(ctx, demoNamespace, name); err != nil || len(lbs) != 0 {
			t.Errorf("%s: %d load balancers in the cloud (%v), want none", name, len(lbs), err)
		}
	}
	if lbs, _ := l.LoadBalancersOf(ctx, demoNamespace, "other"); len(lbs) != 0 {
		t.Errorf("a Service of another class got a load balancer")
	}
	if s, err := kc.CoreV1().Services(demoNamespace).Get(ctx, "other", metav1.GetOptions{}); err != nil || len(s.Finalizers) != 0 || len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("a Service of another class was touched: %v", s)
	}

	// 3b. The controller dies right after creating a load balancer; the Service vanishes while
	// it is down (its finalizer removed by hand): the restarted controller's garbage
	// collection removes the orphan.
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoLBService(demoNamespace, "orphan"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Catch the controller right after the create: poll fast.
	if err := poll(ctx, time.Minute, 20*time.Millisecond, func() (bool, string) {
		lbs, err := l.LoadBalancersOf(ctx, demoNamespace, "orphan")
		return err == nil && len(lbs) > 0, fmt.Sprint(err)
	}); err != nil {
		t.Fatalf("no load balancer for orphan: %v", err)
	}
	if err := l.StopLBController(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Patch(ctx, "orphan", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := kc.CoreV1().Services(demoNamespace).Delete(ctx, "orphan", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartLBController(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNoLoadBalancer(ctx, demoNamespace, "orphan", 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	// 3c. Deleting the Service removes its load balancer (the finalizer's path).
	if err := kc.CoreV1().Services(demoNamespace).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNoLoadBalancer(ctx, demoNamespace, "web", time.Minute); err != nil {
		t.Fatal(err)
	}
	// The controller deletes the target groups after the load balancer and only then lifts
	// its finalizer: once the Service is gone, none may be left.
	if err := poll(ctx, time.Minute, 200*time.Millisecond, func() (bool, string) {
		_, err := kc.CoreV1().Services(demoNamespace).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("Service web: %v", err)
	}); err != nil {
		t.Fatalf("the deleted Service outlived its finalizer's path: %v", err)
	}
	if tgs, err := l.Cloud().DescribeTargetGroups(ctx, &api.DescribeTargetGroupsRequest{}); err != nil || len(tgs.TargetGroups) != 0 {
		t.Errorf("target groups left in the cloud: %+v (%v)", tgs, err)
	}
}

func oneLB(ctx context.Context, t *testing.T, l *Lab, svc string) api.LoadBalancer {
	t.Helper()
	lbs, err := l.LoadBalancersOf(ctx, demoNamespace, svc)
	if err != nil || len(lbs) != 1 {
		t.Fatalf("load balancers of %s: %d (%v), want 1", svc, len(lbs), err)
	}
	return lbs[0]
}

func scale(ctx context.Context, t *testing.T, kc kubernetes.Interface, name string, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := kc.AppsV1().Deployments(demoNamespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitServiceCondition(ctx context.Context, t *testing.T, kc kubernetes.Interface, name, status, reason string) {
	t.Helper()
	err := poll(ctx, time.Minute, 250*time.Millisecond, func() (bool, string) {
		s, err := kc.CoreV1().Services(demoNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range s.Status.Conditions {
			if c.Type == "flatnet.io/LoadBalancerReady" && string(c.Status) == status && c.Reason == reason {
				t.Logf("Service %s: %s=%s %s: %s", name, c.Type, c.Status, c.Reason, c.Message)
				return true, ""
			}
		}
		return false, fmt.Sprintf("conditions %+v", s.Status.Conditions)
	})
	if err != nil {
		t.Errorf("Service %s: no LoadBalancerReady=%s %s condition: %v", name, status, reason, err)
	}
}

// rollUnderLoad restarts the Deployment's pods (a new template) while a client sends requests
// through the VIP, each on a new connection, and requires every one of them to succeed.
func rollUnderLoad(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface, vip string) {
	t.Helper()
	load := startVIPLoad(ctx, l, vip)
	stop, wg := load.stop, &load.wg
	ok, failed := &load.ok, &load.failed
	// How long the cloud takes to stop sending new connections to a terminating pod: from the
	// moment its deletion is seen to its target's draining state.
	lbID := oneLB(ctx, t, l, "web").LoadBalancerID
	var deregMax atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[string]time.Time{} // pod IP -> deletion first seen
		done := map[string]bool{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			list, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				continue
			}
			for _, p := range list.Items {
				if p.DeletionTimestamp != nil && p.Status.PodIP != "" && seen[p.Status.PodIP].IsZero() {
					seen[p.Status.PodIP] = time.Now()
				}
			}
			ts, err := l.TargetsOf(ctx, lbID)
			if err != nil {
				continue
			}
			live := map[string]bool{}
			for _, th := range ts {
				if th.TargetHealth.State != "draining" {
					live[th.Target.IP] = true
				}
			}
			for ip, at := range seen {
				if !done[ip] && !live[ip] {
					done[ip] = true
					if d := time.Since(at); int64(d) > deregMax.Load() {
						deregMax.Store(int64(d))
					}
				}
			}
		}
	}()
	time.Sleep(time.Second)
	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"flatnet.io/rolled":%q}}}}}`, start.Format(time.RFC3339Nano))
	d, err := kc.AppsV1().Deployments(demoNamespace).Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 5*time.Minute, 250*time.Millisecond, func() (bool, string) {
		cur, err := kc.AppsV1().Deployments(demoNamespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := cur.Status
		return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == 6 && st.Replicas == 6 &&
			st.AvailableReplicas == 6 && st.ReadyReplicas == 6, fmt.Sprintf("%+v", st)
	}); err != nil {
		t.Fatalf("the rollout did not finish: %v", err)
	}
	// Keep the load on while the last old pods terminate and drain.
	time.Sleep(12 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("rolling update of 6 pods took %s; %d requests through the VIP during it, %d failed; a terminating pod's target drained at most %s after its deletion was seen (the echo server keeps accepting for 3 s after SIGTERM)",
		time.Since(start).Round(time.Second), ok.Load()+failed.Load(), failed.Load(), time.Duration(deregMax.Load()).Round(time.Millisecond))
	if failed.Load() != 0 {
		// A refused connection usually means a pod stopped listening before its target left
		// the load balancer: say how long that took.
		t.Errorf("%d requests failed during the rolling update (a terminating pod's target drained at most %s after its deletion was seen; the echo server keeps accepting for 3 s after SIGTERM); first ones:\n%s",
			failed.Load(), time.Duration(deregMax.Load()).Round(time.Millisecond), strings.Join(load.firstFailures(), "\n"))
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load was too light to show anything", ok.Load())
	}
}

// upLBLab brings up a lab with Kubernetes and the load balancer controller for one test, and
// tears it down (logging the control plane and the controller when the test failed) at its end.
func upLBLab(ctx context.Context, t *testing.T, prefix string, port, apiPort int) (*Lab, kubernetes.Interface) {
	t.Helper()
	cfg := testConfig(t, prefix, port)
	cfg.Kubernetes, cfg.K8sBinDir, cfg.APIServerListen = true, k8sBinDir(t), freeAddr(t, apiPort)
	return upKubeLab(ctx, t, cfg, func(l *Lab) {
		logControlPlane(t, l)
		t.Logf("lbcontroller log:\n%s", l.LBControllerLog(60))
	})
}

// upKubeLab brings up the lab cfg describes (with Kubernetes) for one test and returns it with a
// client; at the test's end it runs onFail if the test failed, tears the lab down and fails the
// test if anything was left behind.
func upKubeLab(ctx context.Context, t *testing.T, cfg Config, onFail func(*Lab)) (*Lab, kubernetes.Interface) {
	t.Helper()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && onFail != nil {
			onFail(l)
		}
		if err := Down(cfg.Dir, cfg.Prefix, testWriter{t}); err != nil {
			t.Errorf("down: %v", err)
		}
		if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
			t.Errorf("down left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	kc, err := l.Kube()
	if err != nil {
		t.Fatal(err)
	}
	return l, kc
}

// logLabOnFailure is upKubeLab's onFail for tests of the cluster: the control plane's and the
// nodes' logs.
func logLabOnFailure(t *testing.T) func(*Lab) {
	return func(l *Lab) {
		logControlPlane(t, l)
		logNodes(t, l)
	}
}

// vipLoad is two clients sending requests through a load balancer's VIP from the lab's
// internet until stop is closed, counting answers and failures (the first ten kept).
type vipLoad struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
	mu         sync.Mutex
	failures   []string
}

func startVIPLoad(ctx context.Context, l *Lab, vip string) *vipLoad {
	v := &vipLoad{stop: make(chan struct{})}
	for range 2 {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			for {
				select {
				case <-v.stop:
					return
				default:
				}
				var dial tracedDial
				start := time.Now()
				if _, err := echoTraced(ctx, l.InternetNetns(), vip, &dial); err != nil {
					v.failed.Add(1)
					v.mu.Lock()
					slot := len(v.failures)
					if slot < 10 {
						v.failures = append(v.failures, "")
					}
					v.mu.Unlock()
					if slot >= 10 {
						continue // only the first ten are described (conntrack takes a while)
					}
					// For a connection that was made, what the load balancers' conntrack knows
					// of it: whether the target answered, and how the connection ended.
					why := fmt.Sprintf("%s (started %s, %s)", err, start.Format("15:04:05.000"), dial.String())
					if port := dial.localPort(); port != 0 {
						why += "\n" + l.lbConntrack(ctx, port)
					}
					v.mu.Lock()
					v.failures[slot] = time.Now().Format("15:04:05.000") + " " + why
					v.mu.Unlock()
				} else {
					v.ok.Add(1)
				}
			}
		}()
	}
	return v
}

// tracedDial is what one request's dial did: its local address and how long the handshake took.
// The transport dials in a goroutine of its own, which may outlive a request that timed out.
type tracedDial struct {
	mu    sync.Mutex
	local *net.TCPAddr
	took  time.Duration
	err   error
}

func (d *tracedDial) localPort() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.local == nil {
		return 0
	}
	return d.local.Port
}

func (d *tracedDial) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.err != nil:
		return fmt.Sprintf("dial failed after %s: %v", d.took.Round(time.Millisecond), d.err)
	case d.local == nil:
		return "never dialed"
	}
	return fmt.Sprintf("connected from %s in %s", d.local, d.took.Round(time.Millisecond))
}

// echoTraced is EchoFrom on LBPort, recording the dial in d.
func echoTraced(ctx context.Context, netnsName, ip string, d *tracedDial) (*nodeagent.Echo, error) {
	dial := Dialer(netnsName, nil)
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			start := time.Now()
			c, err := dial(ctx, network, addr)
			d.mu.Lock()
			defer d.mu.Unlock()
			d.took, d.err = time.Since(start), err
			if err == nil {
				d.local, _ = c.LocalAddr().(*net.TCPAddr)
			}
			return c, err
		}}}
	return echoWith(ctx, hc, ip, LBPort)
}

// lbConntrack lists the lab's load balancers' conntrack entries of connections from the given
// source port: for a failure's report.
func (l *Lab) lbConntrack(ctx context.Context, port int) string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), l.st.Config.Prefix+"l-") {
			continue
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", e.Name(), "conntrack", "-L", "-p", "tcp", "--orig-port-src", fmt.Sprint(port)).CombinedOutput()
		fmt.Fprintf(&b, "  conntrack in %s: %s %v\n", e.Name(), strings.TrimSpace(string(out)), err)
	}
	return b.String()
}

func (v *vipLoad) firstFailures() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.failures...)
}
