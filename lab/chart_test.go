package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/ipamd"
)

// TestChart is issue 15's acceptance in the lab: flatnet runs from its chart (installed by Up
// through the Helm SDK) with the chart's ServiceAccounts and RBAC; a SIGKILLed ipamd is
// restarted by its DaemonSet within 10 s keeping every address; helm upgrade to a new build
// under pod churn and load-balancer traffic loses no request and leaks or duplicates no
// address; helm uninstall leaves no cloud load balancer of the cluster and no CNI
// configuration on the nodes.
func TestChart(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	l, kc := upLBLab(ctx, t, "fch-", 7493, 6454)

	t.Run("runs with the chart's identities", func(t *testing.T) { chartIdentities(ctx, t, kc) })
	t.Run("ipamd killed", func(t *testing.T) { ipamdKilled(ctx, t, l, kc) })
	t.Run("upgrade under churn and traffic", func(t *testing.T) { upgradeUnderLoad(ctx, t, l, kc) })
	t.Run("uninstall", func(t *testing.T) { uninstallChart(ctx, t, l, kc) })
}

// chartIdentities: the workloads run as the chart's ServiceAccounts, which may do what their
// code needs and not more.
func chartIdentities(ctx context.Context, t *testing.T, kc kubernetes.Interface) {
	pods, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sas := map[string]bool{}
	for _, p := range pods.Items {
		sas[p.Spec.ServiceAccountName] = true
	}
	for _, sa := range []string{IpamdDaemonSet, LBControllerDeployment} {
		if !sas[sa] {
			t.Errorf("no pod runs as the chart's ServiceAccount %s (pods run as %v)", sa, sas)
		}
	}
	can := func(sa, verb, group, resource, ns string) bool {
		t.Helper()
		r, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ReleaseNamespace + ":" + sa,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ReleaseNamespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: ns},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for _, c := range []struct {
		sa, verb, group, resource, ns string
		want                          bool
	}{
		{IpamdDaemonSet, "patch", "", "nodes/status", "", true},
		{IpamdDaemonSet, "delete", "", "nodes", "", false},
		{IpamdDaemonSet, "list", "", "secrets", "", false},
		{LBControllerDeployment, "patch", "", "services/status", demoNamespace, true},
		{LBControllerDeployment, "update", "", "services", demoNamespace, false},
		{LBControllerDeployment, "list", "discovery.k8s.io", "endpointslices", demoNamespace, true},
		{LBControllerDeployment, "delete", "", "pods", demoNamespace, false},
		// Gateway listeners name certificate Secrets in any namespace (ReferenceGrant decides
		// which are allowed): the Gateway controller reads Secrets, and caches only TLS ones.
		{LBControllerDeployment, "list", "", "secrets", "", true},
		{LBControllerDeployment, "create", "", "secrets", demoNamespace, false},
		{LBControllerDeployment, "create", "coordination.k8s.io", "leases", "kube-system", false},
	} {
		if got := can(c.sa, c.verb, c.group, c.resource, c.ns); got != c.want {
			t.Errorf("%s may %s %s (namespace %q): %v, want %v", c.sa, c.verb, c.resource, c.ns, got, c.want)
		}
	}
}

// ipamdKilled: kill -9 of ipamd; the DaemonSet's pod runs it again within 10 s, the node keeps
// every address (the cloud's set is ipamd's) and new pods there get addresses.
func ipamdKilled(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	const node = "node-2"
	d := EchoDeployment(demoNamespace, "pinned", 3)
	d.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitPodsReady(ctx, kc, demoNamespace, "app=pinned", 3, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	before, err := l.Addresses(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	n := l.State().Nodes[1]
	old := ipamdPID(n)
	if old == 0 {
		t.Fatal("no ipamd process on node-2")
	}
	if err := killProcess(old); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := l.waitIpamdRestarted(ctx, node, old); err != nil {
		t.Fatal(err)
	}
	took := time.Since(killed)
	t.Logf("ipamd SIGKILLed on %s: the DaemonSet's pod ran it again and it answered after %s", node, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("ipamd took %s to come back, want at most 10s", took)
	}
	after, err := l.Addresses(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if d := setDiff(ipsOf(before), ipsOf(after)); d != "" {
		t.Errorf("ipamd's addresses changed across its restart: %s", d)
	}
	if err := poll(ctx, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		err := l.CheckAddresses(ctx, kc)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Error(err)
	}
	// The DaemonSet's pod reports the restart (the node agent's status, as the kubelet's).
	if err := poll(ctx, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
		ps, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps.Items {
			if p.Spec.ServiceAccountName == IpamdDaemonSet {
				return restarts(&p) >= 1 && PodReady(&p), PodSummary(&p)
			}
		}
		return false, "no ipamd pod on " + node
	}); err != nil {
		t.Errorf("the ipamd pod after the kill: %v", err)
	}
	scale(ctx, t, kc, "pinned", 5)
	grown, err := WaitPodsReady(ctx, kc, demoNamespace, "app=pinned", 5, 2*time.Minute)
	if err != nil {
		t.Fatalf("new pods on %s after ipamd's restart: %v", node, err)
	}
	// Each answers from another node, at its own address.
	from := l.State().Nodes[0]
	for _, p := range grown {
		e, err := EchoFrom(ctx, from.Netns, p.Status.PodIP, EchoPort)
		if err != nil {
			t.Fatalf("pod %s at %s from %s: %v", p.Name, p.Status.PodIP, from.Name, err)
		}
		if e.Pod != p.Name || e.PodIP != p.Status.PodIP {
			t.Errorf("%s answered as %s at %s", p.Status.PodIP, e.Pod, e.PodIP)
		}
	}
	if err := deleteAndWait(ctx, kc, "pinned"); err != nil {
		t.Fatal(err)
	}
}

func ipsOf(addrs []NodeAddress) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.IP)
	}
	return out
}

// upgradeUnderLoad: helm upgrade to a new build (the binaries copied, images of another tag)
// while a Deployment churns and requests flow through a LoadBalancer Service.
func upgradeUnderLoad(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, gatedDeployment("web", 4), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoLBService(demoNamespace, "web"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vip, err := WaitLBIngress(ctx, kc, demoNamespace, "web", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WaitPodsReady(ctx, kc, demoNamespace, "app=web", 4, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	lb := oneLB(ctx, t, l, "web")
	if err := poll(ctx, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		ts, err := l.TargetsOf(ctx, lb.LoadBalancerID)
		healthy := 0
		for _, th := range ts {
			if th.TargetHealth.State == "healthy" {
				healthy++
			}
		}
		return err == nil && healthy == 4, fmt.Sprintf("%d healthy, %v", healthy, err)
	}); err != nil {
		t.Fatal(err)
	}
	webPods, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	before := podIPsByUID(webPods.Items)
	churn := EchoDeployment(demoNamespace, "churn", 2)
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, churn, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A new build: the same sources, other files, images of another tag.
	newBin := t.TempDir()
	for _, b := range []string{"flatnet-ipamd", "flatnet-cni", LBControllerBinary} {
		raw, err := os.ReadFile(filepath.Join(l.State().Config.BinDir, b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(newBin, b), raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	var churned atomic.Int64
	load := startVIPLoad(ctx, l, vip)
	stop, wg := load.stop, &load.wg
	ok, failed := &load.ok, &load.failed
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Second):
			}
			n := int32(1 + i%4)
			patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
			if _, err := kc.AppsV1().Deployments(demoNamespace).Patch(ctx, "churn", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err == nil {
				churned.Add(1)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	start := time.Now()
	uerr := l.UpgradeChart(ctx, newBin, "0.1.0-next")
	took := time.Since(start)
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	if uerr != nil {
		t.Fatal(uerr)
	}
	t.Logf("helm upgrade to a new build took %s; %d requests through the VIP during it, %d failed; %d churn steps", took.Round(time.Second), ok.Load()+failed.Load(), failed.Load(), churned.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the upgrade; first ones:\n%s", failed.Load(), strings.Join(load.firstFailures(), "\n"))
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests succeeded: the load was too light to show anything", ok.Load())
	}
	// The pods that served through the upgrade kept their addresses.
	webPods, err = kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if after := podIPsByUID(webPods.Items); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the web pods' addresses changed across the upgrade:\nbefore %v\nafter  %v", before, after)
	}
	// Every ipamd and controller pod runs the new images.
	pods, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			if !strings.HasSuffix(c.Image, ":0.1.0-next") {
				t.Errorf("pod %s still runs %s after the upgrade", p.Name, c.Image)
			}
		}
	}
	if err := poll(ctx, time.Minute, time.Second, func() (bool, string) {
		err := l.CheckAddresses(ctx, kc)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Errorf("after the upgrade: %v", err)
	}
	if err := deleteAndWait(ctx, kc, "churn"); err != nil {
		t.Fatal(err)
	}
}

// uninstallChart: helm uninstall removes the release's objects, the cluster's load balancers
// (the pre-delete hook) and the CNI configuration of every node.
func uninstallChart(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	lbs, err := l.Cloud().DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})
	if err != nil || len(lbs.LoadBalancers) == 0 {
		t.Fatalf("before the uninstall the cluster should have a load balancer: %+v %v", lbs, err)
	}
	if err := l.UninstallChart(ctx); err != nil {
		t.Fatal(err)
	}
	lbs, err = l.Cloud().DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lb := range lbs.LoadBalancers {
		for _, tag := range lb.Tags {
			if tag.Value == LBClusterName {
				t.Errorf("load balancer %s of the cluster left after the uninstall", lb.LoadBalancerID)
			}
		}
	}
	svc, err := kc.CoreV1().Services(demoNamespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Finalizers) != 0 || len(svc.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("the Service still holds the controller's finalizer or address: %v %+v", svc.Finalizers, svc.Status.LoadBalancer)
	}
	if err := poll(ctx, time.Minute, 500*time.Millisecond, func() (bool, string) {
		var left []string
		for _, n := range l.State().Nodes {
			for _, f := range []string{filepath.Join(n.ConfDir(), ipamd.ConflistName), filepath.Join(n.CNIBinDir(), ipamd.PluginName)} {
				if _, err := os.Stat(f); err == nil {
					left = append(left, f)
				}
			}
		}
		return len(left) == 0, fmt.Sprintf("left: %v", left)
	}); err != nil {
		t.Errorf("CNI configuration after the uninstall: %v", err)
	}
	if _, err := kc.AppsV1().DaemonSets(ReleaseNamespace).Get(ctx, IpamdDaemonSet, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the DaemonSet is still there: %v", err)
	}
	if pods, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				t.Errorf("pod %s of the release left: %s", p.Name, PodSummary(&p))
			}
		}
	}
	crbs, err := kc.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + ReleaseName})
	if err == nil && len(crbs.Items) != 0 {
		t.Errorf("cluster role bindings of the release left: %d", len(crbs.Items))
	}
}
