package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/netns"
)

// clusterCapacity caps every node's addresses in TestCluster, so a node fills up quickly.
const clusterCapacity = 8

// TestCluster is the Kubernetes issue's acceptance, end to end in one lab: Ready nodes with
// published capacity, a spread Deployment of echo pods with VPC addresses and EndpointSlices,
// pod-to-pod echo across nodes, restarts of the node agent and ipamd that change no address,
// bad input ending in clear pod status without leaks, a full node the scheduler avoids and a
// forced pod that gets clear events, and every address back in its pool at the end.
func TestCluster(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cfg := testConfig(t, "flc-", 7485)
	cfg.Nodes = 3
	cfg.Kubernetes = true
	cfg.K8sBinDir = k8sBinDir(t)
	cfg.APIServerListen = freeAddr(t, 6445)
	cfg.IpamdArgs = []string{"--max-addresses", fmt.Sprint(clusterCapacity), "--cooldown", "1s"}
	start := time.Now()
	l, kc := upKubeLab(ctx, t, cfg, logLabOnFailure(t))
	t.Logf("lab up with 3 Ready nodes in %s", time.Since(start).Round(time.Millisecond))
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		if got := n.Status.Allocatable[corev1.ResourcePods]; got.Value() != clusterCapacity+LabHostNetworkPods {
			t.Errorf("node %s allocatable pods %s, want %d (ipamd's address capacity and room for its own host-network pod)", n.Name, got.String(), clusterCapacity+LabHostNetworkPods)
		}
		if !strings.HasPrefix(n.Spec.ProviderID, "fakecloud:///") {
			t.Errorf("node %s providerID %q", n.Name, n.Spec.ProviderID)
		}
	}

	// 1. Six echo pods spread over three nodes, addresses from their nodes, EndpointSlices.
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, EchoDeployment(demoNamespace, "echo", 6), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Services(demoNamespace).Create(ctx, EchoService(demoNamespace, "echo"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods, err := WaitPodsReady(ctx, kc, demoNamespace, "app=echo", 6, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods {
		perNode[p.Spec.NodeName]++
		if err := l.assignedOnNode(ctx, p.Spec.NodeName, p.Status.PodIP); err != nil {
			t.Errorf("pod %s: %v", p.Name, err)
		}
	}
	if len(perNode) != 3 || perNode["node-1"] != 2 || perNode["node-2"] != 2 || perNode["node-3"] != 2 {
		t.Errorf("pods per node %v, want 2 on each", perNode)
	}
	if err := WaitSliceAddresses(ctx, kc, demoNamespace, "echo", podIPs(pods), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := echoAcross(ctx, l, pods, t.Logf); err != nil {
		t.Fatal(err)
	}

	// 2. Restarting a node agent and an ipamd while pods run changes no address and breaks
	// nothing.
	before := podIPsByUID(pods)
	if err := l.RestartNodeAgent(ctx, "node-1", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.RestartIpamd(ctx, "node-2", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNodesReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // let the restarted agent resync its pods and report
	pods, err = WaitPodsReady(ctx, kc, demoNamespace, "app=echo", 6, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if after := podIPsByUID(pods); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("pod addresses changed across the restarts:\nbefore %v\nafter  %v", before, after)
	}
	for _, p := range pods {
		if n := restarts(&p); n != 0 {
			t.Errorf("pod %s restarted %d times across the agent's restart", p.Name, n)
		}
	}
	if err := echoAcross(ctx, l, pods, t.Logf); err != nil {
		t.Fatalf("after the restarts: %v", err)
	}

	// 4. Bad input ends in a clear pod status and leaks nothing.
	badPods(ctx, t, l, kc)

	// 3. A full node: the scheduler stops placing pods on it; a pod forced onto it gets
	// clear events, and the node says it is out of addresses.
	fullNode(ctx, t, l, kc)

	// Everything deleted: every address is back in its pool and no pod namespace is left.
	if err := deleteAndWait(ctx, kc, "echo"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fill"} {
		if err := deleteAndWait(ctx, kc, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := kc.CoreV1().Pods(demoNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WaitPodsGone(ctx, kc, demoNamespace, "", time.Minute); err != nil {
		t.Fatal(err)
	}
	// What is left is flatnet's own: the chart's controller pods, which hold an address and a
	// namespace each (ipamd's pods are host-network).
	left, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, p := range left.Items {
		if !p.Spec.HostNetwork && p.Status.PodIP != "" {
			kept[p.Status.PodIP] = true
		}
	}
	for _, n := range l.State().Nodes {
		addrs, err := l.Addresses(ctx, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.State == "assigned" && !kept[a.IP] {
				t.Errorf("%s: %s still assigned to %s after every pod was deleted", n.Name, a.IP, a.Owner.ContainerID)
			}
		}
	}
	if names, _ := netns.List(cfg.PodNetnsPrefix()); len(names) != len(kept) {
		t.Errorf("pod namespaces left after every pod was deleted: %v (the controller's pods hold %d)", names, len(kept))
	}
}

// badPods: an unknown image, a readiness probe to a closed port, a liveness probe to a closed
// port, and a node agent killed right after a pod was bound to it.
func badPods(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	t.Helper()
	mk := func(name, node, image string, mut func(*corev1.Container)) *corev1.Pod {
		c := corev1.Container{Name: "main", Image: image, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: EchoPort}}}
		if mut != nil {
			mut(&c)
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: name, Labels: map[string]string{"test": "bad"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{c}, TerminationGracePeriodSeconds: ptr.To[int64](2),
				AutomountServiceAccountToken: ptr.To(false)}}
		if _, err := kc.CoreV1().Pods(demoNamespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	closed := intstr.FromInt32(9)
	mk("unknown-image", "node-1", "registry.example/nope:1", nil)
	mk("not-ready", "node-2", EchoImage, func(c *corev1.Container) {
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: closed}}, PeriodSeconds: 1}
	})
	mk("not-alive", "node-2", EchoImage, func(c *corev1.Container) {
		c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: closed}},
			PeriodSeconds: 1, FailureThreshold: 1}
	})
	// The node agent dies just as it starts the pod's sandbox; its successor must finish or
	// redo the work without leaking the first attempt's address or namespace.
	mk("agent-killed", "node-3", EchoImage, nil)
	time.Sleep(150 * time.Millisecond)
	if err := l.RestartNodeAgent(ctx, "node-3", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	waitPod(ctx, t, kc, "unknown-image", "ImagePullBackOff or ErrImagePull with the image named", func(p *corev1.Pod) bool {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ImagePullBackOff" || w.Reason == "ErrImagePull") && strings.Contains(w.Message, "registry.example/nope:1") {
				return true
			}
		}
		return false
	})
	waitPod(ctx, t, kc, "not-ready", "Running but not Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && !PodReady(p) && p.Status.PodIP != ""
	})
	waitPod(ctx, t, kc, "not-alive", "restarted by its liveness probe", func(p *corev1.Pod) bool { return restarts(p) >= 2 })
	waitPod(ctx, t, kc, "agent-killed", "Ready after the agent's restart", func(p *corev1.Pod) bool { return PodReady(p) && p.Status.PodIP != "" })
	// not-ready stays unready: readiness never passed, so its endpoint would never be used.
	p, err := kc.CoreV1().Pods(demoNamespace).Get(ctx, "not-ready", metav1.GetOptions{})
	if err != nil || PodReady(p) {
		t.Errorf("not-ready became Ready (%v)", err)
	}
	// No node holds more assigned addresses than it has pods with an address (the killed
	// agent's first attempt was cleaned up).
	checkNoLeaks(ctx, t, l, kc)
	fg := metav1.DeletePropagationBackground
	if err := kc.CoreV1().Pods(demoNamespace).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &fg}, metav1.ListOptions{LabelSelector: "test=bad"}); err != nil {
		t.Fatal(err)
	}
	if err := WaitPodsGone(ctx, kc, demoNamespace, "test=bad", time.Minute); err != nil {
		t.Fatal(err)
	}
	checkNoLeaks(ctx, t, l, kc)
}

// fullNode fills node-3 through the scheduler, then forces one more pod onto it.
func fullNode(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	t.Helper()
	d := EchoDeployment(demoNamespace, "fill", 12)
	d.Spec.Template.Spec.TopologySpreadConstraints = nil
	d.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: "node-3"}
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// node-3 runs two echo pods and maybe replicas of the chart's controller, each holding an
	// address; the scheduler places fill pods until the node's capacity (its addresses plus
	// room for ipamd's own host-network pod).
	others, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-3"})
	if err != nil {
		t.Fatal(err)
	}
	want := clusterCapacity - 2
	for _, p := range others.Items {
		if !p.Spec.HostNetwork {
			want--
		}
	}
	err = poll(ctx, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		list, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=fill"})
		if err != nil {
			return false, err.Error()
		}
		var ready, pending int
		for _, p := range list.Items {
			switch {
			case PodReady(&p):
				ready++
			case p.Spec.NodeName == "":
				pending++
			}
		}
		return ready == want && pending == 12-want, fmt.Sprintf("%d Ready, %d unscheduled", ready, pending)
	})
	if err != nil {
		t.Fatalf("fill: want %d Ready and %d unscheduled: %v", want, 12-want, err)
	}
	waitEvent(ctx, t, kc, "Pod", "", "FailedScheduling", "Too many pods")

	// A pod forced past the scheduler onto the full node: clear events, no crash loop.
	forced := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: "forced"},
		Spec: corev1.PodSpec{NodeName: "node-3", AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "echo", Image: EchoImage}}}}
	if _, err := kc.CoreV1().Pods(demoNamespace).Create(ctx, forced, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(ctx, t, kc, "Pod", "forced", "FailedAllocateIP", "full")
	waitEvent(ctx, t, kc, "Pod", "forced", "FailedCreatePodSandBox", "full")
	// The condition follows the pool worker's next look (at most a second) and a Node patch, so
	// it may trail the events a little.
	var node3 *corev1.Node
	if err := poll(ctx, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		n, err := kc.CoreV1().Nodes().Get(ctx, "node-3", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node3 = n
		c := nodeCondition(n, "flatnet.io/AddressesExhausted")
		return c.Status == corev1.ConditionTrue, fmt.Sprintf("%q (%s: %s)", c.Status, c.Reason, c.Message)
	}); err != nil {
		t.Errorf("node-3 AddressesExhausted is not True: %v", err)
	}
	if c := nodeCondition(node3, corev1.NodeReady); node3 != nil && c.Status != corev1.ConditionTrue {
		t.Errorf("node-3 went NotReady when full (Ready=%q): capacity must not make a node unready", c.Status)
	}
	p, err := kc.CoreV1().Pods(demoNamespace).Get(ctx, "forced", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.PodIP != "" || p.Status.Phase != corev1.PodPending {
		t.Errorf("forced pod on a full node: phase %s IP %q, want Pending without an address", p.Status.Phase, p.Status.PodIP)
	}
	checkNoLeaks(ctx, t, l, kc)
}

// checkNoLeaks compares, per node, the addresses ipamd holds as assigned with the pods that
// have an address there: the same set; and that no container outlived its pod.
func checkNoLeaks(ctx context.Context, t *testing.T, l *Lab, kc kubernetes.Interface) {
	t.Helper()
	err := poll(ctx, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		list, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var problems []string
		for _, n := range l.State().Nodes {
			var want []string
			for _, p := range list.Items {
				if p.Spec.NodeName == n.Name && p.Status.PodIP != "" && !p.Spec.HostNetwork {
					want = append(want, p.Status.PodIP)
				}
			}
			addrs, err := l.Addresses(ctx, n.Name)
			if err != nil {
				return false, err.Error()
			}
			var got []string
			for _, a := range addrs {
				if a.State == "assigned" {
					got = append(got, a.IP)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(want, got) {
				problems = append(problems, fmt.Sprintf("%s: pods hold %v, ipamd has assigned %v", n.Name, want, got))
			}
		}
		return len(problems) == 0, strings.Join(problems, "; ")
	})
	if err != nil {
		t.Errorf("addresses and pods disagree: %v", err)
	}
	// No container outlived its pod's namespace.
	strays, err := strayContainers(l.State().Config.BinDir)
	if err != nil {
		t.Error(err)
	}
	if len(strays) > 0 {
		for _, pid := range strays {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s) of the lab's binaries runs in a network namespace that no longer has a name: a pod's container left behind", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

func waitPod(ctx context.Context, t *testing.T, kc kubernetes.Interface, name, what string, ok func(*corev1.Pod) bool) {
	t.Helper()
	err := poll(ctx, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
		p, err := kc.CoreV1().Pods(demoNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return ok(p), PodSummary(p)
	})
	if err != nil {
		t.Errorf("pod %s: not %s: %v", name, what, err)
		return
	}
	t.Logf("pod %s: %s", name, what)
}

func waitEvent(ctx context.Context, t *testing.T, kc kubernetes.Interface, kind, name, reason, inMessage string) {
	t.Helper()
	sel := fields.Set{"involvedObject.kind": kind, "reason": reason}
	if name != "" {
		sel["involvedObject.name"] = name
	}
	err := poll(ctx, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
		evs, err := kc.CoreV1().Events(demoNamespace).List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs.Items {
			if strings.Contains(e.Message, inMessage) {
				t.Logf("event %s on %s %s: %s", reason, kind, e.InvolvedObject.Name, e.Message)
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d %s events, none mentioning %q", len(evs.Items), reason, inMessage)
	})
	if err != nil {
		t.Errorf("no %s event on %s %q: %v", reason, kind, name, err)
	}
}

func podIPsByUID(pods []corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, p := range pods {
		out[string(p.UID)] = p.Status.PodIP
	}
	return out
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

// logNodes logs the end of each node's agent and ipamd logs (down removes them).
func logNodes(t *testing.T, l *Lab) {
	for _, n := range l.State().Nodes {
		for _, name := range []string{"node-agent.log", "ipamd.log", "cni.log"} {
			t.Logf("%s %s, last lines:\n%s", n.Name, name, fileTail(filepath.Join(n.Dir, name), 25))
		}
	}
}
