package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/lbcontroller"
)

// TestLoadBalancerDataPlaneFailure: when fakecloud's data plane cannot program a Service's load
// balancer (a fault injected into its programming step, the way a kernel refusal would look),
// nothing claims it works: the cloud shows the load balancer failed with the reason (API and
// `fakecloud lb list`), its targets are not healthy, the Service has no address and says
// LoadBalancerFailed in its condition and in a Warning event, and its pods' readiness gates stay
// closed. Once the fault is cleared everything recovers by itself: the load balancer turns
// active, the Service gets its address back with a true condition and a LoadBalancerRecovered
// event, the targets turn healthy and requests through the VIP reach the pods.
func TestLoadBalancerDataPlaneFailure(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, kc := upLBLab(ctx, t, "flf-", 7491, 6452)
	if _, err := l.Cloud().SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: api.DataPlaneProgramLoadBalancer, ErrorRate: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, gatedDeployment("frail", 2), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoLBService(demoNamespace, "frail"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Failed, and said so everywhere; the lab's helpers give up at once, with the reason.
	waitServiceCondition(ctx, t, kc, "frail", "False", "LoadBalancerFailed")
	if _, err := WaitLBIngress(ctx, kc, demoNamespace, "frail", time.Minute); err == nil || !strings.Contains(err.Error(), api.DataPlaneProgramLoadBalancer) {
		t.Errorf("waiting for the address of a Service whose load balancer failed: %v, want an error naming %s", err, api.DataPlaneProgramLoadBalancer)
	}
	waitEvent(ctx, t, kc, "Service", "frail", "LoadBalancerFailed", api.DataPlaneProgramLoadBalancer)
	lb := oneLB(ctx, t, l, "frail")
	if lb.State != api.LoadBalancerStateFailed || !strings.Contains(lb.StateReason, api.DataPlaneProgramLoadBalancer) {
		t.Errorf("the cloud shows load balancer %s as %s (%q), want failed naming %s", lb.LoadBalancerID, lb.State, lb.StateReason, api.DataPlaneProgramLoadBalancer)
	}
	table := fakecloudCLI(ctx, t, l, "lb", "list")
	t.Logf("fakecloud lb list:\n%s", table)
	for _, want := range []string{lb.LoadBalancerID, "failed", api.DataPlaneProgramLoadBalancer} {
		if !strings.Contains(table, want) {
			t.Errorf("fakecloud lb list does not show %q", want)
		}
	}
	svc, err := kc.CoreV1().Services(demoNamespace).Get(ctx, "frail", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("the Service publishes %v although its load balancer failed", svc.Status.LoadBalancer.Ingress)
	}
	// The failure can come before the pods have addresses: wait for both to be registered,
	// then give health checks (5 s apart, two to turn healthy) time to run, were they running.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ts, err := l.TargetsOf(ctx, lb.LoadBalancerID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d targets registered after 2 minutes, want the 2 pods", len(ts))
		}
	}
	time.Sleep(12 * time.Second)
	ts, err := l.TargetsOf(ctx, lb.LoadBalancerID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Errorf("%d targets registered, want the 2 pods", len(ts))
	}
	for _, th := range ts {
		if th.TargetHealth.State == api.TargetHealthHealthy {
			t.Errorf("target %s is healthy behind a failed load balancer", th.Target.IP)
		}
		t.Logf("target %s: %s %s %s", th.Target.IP, th.TargetHealth.State, th.TargetHealth.Reason, th.TargetHealth.Description)
	}
	pods, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=frail"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == gateCondition && c.Status == "True" {
				t.Errorf("pod %s's readiness gate is open behind a failed load balancer", p.Name)
			}
		}
	}

	// The cause goes; nothing else is done.
	if _, err := l.Cloud().ClearFaults(ctx, &api.ClearFaultsRequest{Action: api.DataPlaneProgramLoadBalancer}); err != nil {
		t.Fatal(err)
	}
	waitServiceCondition(ctx, t, kc, "frail", "True", "Provisioned")
	vip, err := WaitLBIngress(ctx, kc, demoNamespace, "frail", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The event names the load balancer as the driver does: its ID with fakecloud's driver, its
	// ARN (ending in the ID's hex) with the AWS driver.
	waitEvent(ctx, t, kc, "Service", "frail", "LoadBalancerRecovered", strings.TrimPrefix(lb.LoadBalancerID, "lb-"))
	if lb := oneLB(ctx, t, l, "frail"); lb.State != api.LoadBalancerStateActive || lb.StateReason != "" {
		t.Errorf("after recovery the cloud shows %s (%q), want active", lb.State, lb.StateReason)
	}
	ready, err := WaitPodsReady(ctx, kc, demoNamespace, "app=frail", 2, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitTargetsHealthy(ctx, lb.LoadBalancerID, podIPs(ready), nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	byPod, _, err := l.ThroughVIP(ctx, "", vip, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(byPod) != 2 {
		t.Errorf("through the recovered VIP %d pods answered, want 2: %v", len(byPod), byPod)
	}
}

// fakecloudCLI runs the fakecloud command against the lab's cloud and returns its output.
func fakecloudCLI(ctx context.Context, t *testing.T, l *Lab, args ...string) string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(l.State().Config.Dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(l.State().Config.BinDir, "fakecloud"), args...)
	cmd.Env = append(os.Environ(), "FAKECLOUD_ENDPOINT="+l.State().Endpoint, "FAKECLOUD_TOKEN="+strings.TrimSpace(string(tok)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fakecloud %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLBConditionNames: the lab's copies of lbcontroller's condition and reasons (the lab does
// not link the controller) match the controller's.
func TestLBConditionNames(t *testing.T) {
	for got, want := range map[string]string{
		lbConditionReady: lbcontroller.ConditionReady, lbReasonFailed: lbcontroller.ReasonLBFailed, lbReasonInvalid: lbcontroller.ReasonInvalid,
	} {
		if got != want {
			t.Errorf("the lab says %q where lbcontroller says %q", got, want)
		}
	}
}
