package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestGateway is issue 16's acceptance 2 and 3 in the lab, with the chart-installed controller:
// a request through a Gateway reaches a pod straight from the internet (the pod sees the load
// balancer's address as its peer; no proxy pod exists in the cluster); a weight change from
// 100/0 to 0/100 and a rolling update behind the HTTPRoute, each under continuous load, fail no
// request. The backends' pods get the readiness gate from the chart's webhook, and it turns True
// once they are healthy in the Gateway's target group.
func TestGateway(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l, kc := upLBLab(ctx, t, "fgw-", 7495, 6456)
	gc, err := l.GatewayClient()
	if err != nil {
		t.Fatal(err)
	}
	// The namespace asks for readiness gates (the chart's webhook); the Services and the route
	// exist before the pods, so the webhook sees the pods as Gateway backends.
	if _, err := kc.CoreV1().Namespaces().Patch(ctx, demoNamespace, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"flatnet.io/readiness-gate-injection":"enabled"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"blue", "green"} {
		if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoService(demoNamespace, app), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := gc.Create(ctx, HTTPGateway(demoNamespace, "web")); err != nil {
		t.Fatal(err)
	}
	route := WeightedRoute(demoNamespace, "web", "web", map[string]int32{"blue": 100, "green": 0})
	if err := gc.Create(ctx, route); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"blue", "green"} {
		d := EchoDeployment(demoNamespace, app, 3)
		if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, app := range []string{"blue", "green"} {
		pods, err := WaitPodsReady(ctx, kc, demoNamespace, "app="+app, 3, 3*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// The webhook gave each pod the gate, and the controller turned it True once the pod
		// was healthy in the Gateway's target group.
		for _, p := range pods {
			gated := false
			for _, g := range p.Spec.ReadinessGates {
				gated = gated || g.ConditionType == gateCondition
			}
			if !gated {
				t.Errorf("pod %s has no readiness gate %s: the webhook did not inject it (gates %v)", p.Name, gateCondition, p.Spec.ReadinessGates)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == gateCondition && (c.Status != "True" || c.Reason != "TargetsHealthy") {
					t.Errorf("pod %s is Ready with its gate %s/%s: %s", p.Name, c.Status, c.Reason, c.Message)
				}
			}
		}
	}
	addr, err := WaitGatewayProgrammed(ctx, gc, demoNamespace, "web", 2*time.Minute)
	if err != nil {
		t.Fatalf("%v\nlbcontroller log:\n%s", err, l.LBControllerLog(40))
	}
	alb := albByVIP(ctx, t, l, addr)
	if alb.Type != "application" {
		t.Fatalf("the Gateway's address %s is a %q load balancer", addr, alb.Type)
	}

	// 2. Straight to the pod: its peer is the load balancer's own address, never a node or a pod.
	nodeIPs := map[string]bool{}
	for _, n := range l.State().Nodes {
		nodeIPs[n.PrimaryIP] = true
	}
	which := func(n int) map[string]int {
		t.Helper()
		apps := map[string]int{}
		if err := poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, string) {
			_, err := EchoFrom(ctx, l.InternetNetns(), addr, LBPort)
			return err == nil, fmt.Sprint(err)
		}); err != nil {
			t.Fatalf("no answer through the Gateway at %s: %v", addr, err)
		}
		for range n {
			e, err := EchoFrom(ctx, l.InternetNetns(), addr, LBPort)
			if err != nil {
				t.Fatalf("through the Gateway: %v", err)
			}
			peer, _, _ := net.SplitHostPort(e.Peer)
			if peer != alb.PrivateIPAddress || nodeIPs[peer] {
				t.Errorf("pod %s saw peer %s, want the load balancer's %s", e.Pod, peer, alb.PrivateIPAddress)
			}
			apps[strings.SplitN(e.Pod, "-", 2)[0]]++
		}
		return apps
	}
	if got := which(20); got["blue"] != 20 {
		t.Fatalf("with weights 100/0 the answers came from %v, want all from blue", got)
	}
	pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		app := p.Labels["app"]
		comp := p.Labels["app.kubernetes.io/component"]
		if app != "blue" && app != "green" && comp != "ipamd" && comp != "lbcontroller" {
			t.Errorf("pod %s/%s (labels %v) is neither a backend nor flatnet's: a proxy in the path?", p.Namespace, p.Name, p.Labels)
		}
	}

	// 3a. Weights 100/0 -> 0/100 under load: nothing fails, and green takes everything.
	load := startVIPLoad(ctx, l, addr)
	time.Sleep(time.Second)
	if err := setRouteWeights(ctx, gc, map[string]int32{"blue": 0, "green": 100}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, time.Minute, 100*time.Millisecond, func() (bool, string) {
		e, err := EchoFrom(ctx, l.InternetNetns(), addr, LBPort)
		return err == nil && strings.HasPrefix(e.Pod, "green-"), fmt.Sprint(e, err)
	}); err != nil {
		t.Fatalf("the weight change was not served: %v", err)
	}
	time.Sleep(2 * time.Second)
	close(load.stop)
	load.wg.Wait()
	t.Logf("weights 100/0 -> 0/100: %d requests through the Gateway, %d failed", load.ok.Load()+load.failed.Load(), load.failed.Load())
	if load.failed.Load() != 0 {
		t.Errorf("%d requests failed during the weight change; first ones:\n%s", load.failed.Load(), strings.Join(load.firstFailures(), "\n"))
	}
	if got := which(20); got["green"] != 20 {
		t.Errorf("with weights 0/100 the answers came from %v, want all from green", got)
	}

	// 3b. A rolling update of green under load: nothing fails.
	load = startVIPLoad(ctx, l, addr)
	time.Sleep(time.Second)
	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"flatnet.io/rolled":%q}}}}}`, start.Format(time.RFC3339Nano))
	d, err := kc.AppsV1().Deployments(demoNamespace).Patch(ctx, "green", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 5*time.Minute, 250*time.Millisecond, func() (bool, string) {
		cur, err := kc.AppsV1().Deployments(demoNamespace).Get(ctx, "green", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := cur.Status
		return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == 3 && st.Replicas == 3 && st.AvailableReplicas == 3, fmt.Sprintf("%+v", st)
	}); err != nil {
		t.Fatalf("the rollout did not finish: %v", err)
	}
	// Keep the load on while the last old pods terminate and drain.
	time.Sleep(10 * time.Second)
	close(load.stop)
	load.wg.Wait()
	t.Logf("rolling update of 3 pods behind the HTTPRoute took %s; %d requests through the Gateway, %d failed",
		time.Since(start).Round(time.Second), load.ok.Load()+load.failed.Load(), load.failed.Load())
	if load.failed.Load() != 0 {
		t.Errorf("%d requests failed during the rolling update; first ones:\n%s", load.failed.Load(), strings.Join(load.firstFailures(), "\n"))
	}
	if load.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load was too light to show anything", load.ok.Load())
	}

	// Deleting the Gateway deletes its load balancer.
	if err := gc.Delete(ctx, HTTPGateway(demoNamespace, "web")); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, time.Minute, 200*time.Millisecond, func() (bool, string) {
		lbs, err := l.Cloud().DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, lb := range lbs.LoadBalancers {
			if lb.VIP == addr {
				return false, "still there: " + lb.LoadBalancerID
			}
		}
		return true, ""
	}); err != nil {
		t.Errorf("the deleted Gateway's load balancer: %v", err)
	}
}

// albByVIP returns the cloud's load balancer at vip.
func albByVIP(ctx context.Context, t *testing.T, l *Lab, vip string) api.LoadBalancer {
	t.Helper()
	lbs, err := l.Cloud().DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lb := range lbs.LoadBalancers {
		if lb.VIP == vip {
			return lb
		}
	}
	t.Fatalf("no load balancer in the cloud has the Gateway's address %s", vip)
	return api.LoadBalancer{}
}

// setRouteWeights sets the demo route's backend weights.
func setRouteWeights(ctx context.Context, c client.Client, weights map[string]int32) error {
	return updateRoute(ctx, c, "web", func(r *gwv1.HTTPRoute) { SetWeights(r, weights) })
}

// updateRoute applies change to the latest version of the demo namespace's route name and
// writes it, again on a conflict (the controller writes the route's status, which moves its
// resourceVersion).
func updateRoute(ctx context.Context, c client.Client, name string, change func(*gwv1.HTTPRoute)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var r gwv1.HTTPRoute
		if err := c.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: name}, &r); err != nil {
			return err
		}
		change(&r)
		return c.Update(ctx, &r)
	})
}
