package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	clientretry "k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/failpoint"
	"github.com/flatnet/flatnet/internal/k8stest"
	"github.com/flatnet/flatnet/internal/netns"
)

// TestAgent runs one node agent process against a real API server and the reference ptp and
// host-local plugins, through the life of a node and its pods. The steps share the node, in order.
func TestAgent(t *testing.T) {
	cfg := k8stest.Start(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, cfg, "n1", "10.244.1.0/24")
	n.startAgent()

	t.Run("node is Ready only once the conflist appears", func(t *testing.T) { testNodeReady(t, kube, n) })
	t.Run("echo pod", func(t *testing.T) { testEchoPod(t, kube, n) })
	t.Run("readiness probe on a closed port", func(t *testing.T) { testClosedPortProbe(t, kube, n) })
	t.Run("readiness gate", func(t *testing.T) { testReadinessGate(t, kube, n) })
	t.Run("unknown image", func(t *testing.T) { testUnknownImage(t, kube, n) })
	t.Run("probes and restarts", func(t *testing.T) { testProbesAndRestarts(t, kube, n) })
	t.Run("exec probes end their processes", func(t *testing.T) { testExecProbeProcesses(t, kube, n) })
	t.Run("graceful delete", func(t *testing.T) { testGracefulDelete(t, kube, n) })
	t.Run("restart adopts and cleans up", func(t *testing.T) { testRestart(t, kube, n) })
	t.Run("killed while starting a container", func(t *testing.T) { testKilledMidStart(t, kube, n) })

	full := newTestNode(t, cfg, "n2", "10.244.2.0/24")
	full.rangeEnd = "10.244.2.2" // host-local hands out .2 only (.1 is the gateway)
	full.writeConflist()
	full.startAgent()
	t.Run("failed ADD", func(t *testing.T) { testFailedAdd(t, kube, full) })
}

func getNode(t *testing.T, kube kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	node, err := kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func nodeCondition(node *corev1.Node, ct corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == ct {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func testNodeReady(t *testing.T, kube kubernetes.Interface, n *testNode) {
	ctx := context.Background()
	eventually(t, 30*time.Second, "node registered NotReady", func() error {
		node, err := kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		c := nodeCondition(node, corev1.NodeReady)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonNetworkNotReady {
			return fmt.Errorf("Ready condition %+v, want False/%s", c, reasonNetworkNotReady)
		}
		return nil
	})
	node := getNode(t, kube, n.name)
	if node.Spec.ProviderID != "fakecloud:///az-1/i-"+n.name {
		t.Errorf("providerID %q", node.Spec.ProviderID)
	}
	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: n.name}}
	if !slices.Equal(node.Status.Addresses, wantAddrs) {
		t.Errorf("addresses %v, want %v", node.Status.Addresses, wantAddrs)
	}
	if q := node.Status.Capacity[corev1.ResourceCPU]; q.String() != "2" {
		t.Errorf("cpu capacity %s, want 2", q.String())
	}
	// A bootstrap pods capacity until ipamd publishes the node's (the scheduler must be able to
	// place the network plugin's own pod); ipamd's value then stands.
	eventually(t, 10*time.Second, "the bootstrap pods capacity", func() error {
		node := getNode(t, kube, n.name)
		if q := node.Status.Capacity[corev1.ResourcePods]; q.String() != "110" {
			return fmt.Errorf("pods capacity %q, want the bootstrap 110 without --max-pods", q.String())
		}
		return nil
	})
	eventually(t, 30*time.Second, "the node's lease", func() error {
		l, err := kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.name, metav1.GetOptions{})
		if err == nil && (l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != n.name || l.Spec.RenewTime == nil) {
			err = fmt.Errorf("lease spec %+v", l.Spec)
		}
		return err
	})

	// ipamd's fields, written like ipamd does, must survive the agent's patches.
	patch := []byte(`{"status":{"capacity":{"pods":"17"},"allocatable":{"pods":"17"},"conditions":[{"type":"flatnet.io/IPAMReady","status":"True","reason":"Serving"}]}}`)
	if _, err := kube.CoreV1().Nodes().PatchStatus(ctx, n.name, patch); err != nil {
		t.Fatal(err)
	}
	n.writeConflist()
	eventually(t, 30*time.Second, "node Ready once the conflist is there", func() error {
		node, err := kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c := nodeCondition(node, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})
	node = getNode(t, kube, n.name)
	if q := node.Status.Capacity[corev1.ResourcePods]; q.String() != "17" {
		t.Errorf("ipamd's pods capacity became %q", q.String())
	}
	if nodeCondition(node, "flatnet.io/IPAMReady") == nil {
		t.Errorf("ipamd's condition is gone: %+v", node.Status.Conditions)
	}
}

func echoPod(node, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers: []corev1.Container{{
				Name: "echo", Image: "flatnet.io/echo:1.0",
				Ports: []corev1.ContainerPort{
					{Name: "http", ContainerPort: 8080},
					{Name: "udp", ContainerPort: 5353, Protocol: corev1.ProtocolUDP},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

func createPod(t *testing.T, kube kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := kube.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return got
}

func deletePod(t *testing.T, kube kubernetes.Interface, name string, grace *int64) {
	t.Helper()
	err := kube.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: grace})
	if err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
}

func testEchoPod(t *testing.T, kube kubernetes.Interface, n *testNode) {
	echo := echoPod(n.name, "echo")
	echo.Spec.Containers[0].StartupProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/started", Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1, FailureThreshold: 30,
	}
	createPod(t, kube, echo)
	pod := waitPod(t, kube, "default", "echo", 60*time.Second, "Ready", podReady)
	if pod.Status.PodIP == "" || len(pod.Status.PodIPs) != 1 || pod.Status.PodIPs[0].IP != pod.Status.PodIP {
		t.Fatalf("podIP %q podIPs %v", pod.Status.PodIP, pod.Status.PodIPs)
	}
	if !strings.HasPrefix(pod.Status.PodIP, "10.244.1.") || pod.Status.HostIP != "10.0.0.5" || pod.Status.StartTime == nil {
		t.Errorf("podIP %s hostIP %s startTime %v", pod.Status.PodIP, pod.Status.HostIP, pod.Status.StartTime)
	}
	cs := pod.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || cs[0].ContainerID == "" || cs[0].ImageID == "" || cs[0].Started == nil || !*cs[0].Started {
		t.Errorf("container status %+v", cs)
	}
	if pod.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s", pod.Status.Phase)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady} {
		if condition(pod, ct) != corev1.ConditionTrue {
			t.Errorf("condition %s is %q", ct, condition(pod, ct))
		}
	}

	body, err := n.httpGet(context.Background(), "http://"+net.JoinHostPort(pod.Status.PodIP, "8080")+"/hello")
	if err != nil {
		t.Fatalf("GET the echo pod from the node: %v", err)
	}
	var e Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("echo answer %q: %v", body, err)
	}
	peer, _, _ := net.SplitHostPort(e.Peer)
	want := Echo{Pod: "echo", Namespace: "default", PodIP: pod.Status.PodIP, Node: n.name, Peer: e.Peer, Method: "GET", Path: "/hello", Host: e.Host}
	if e != want || peer != "10.244.1.1" {
		t.Errorf("echo answered %+v, want %+v from the node's side of the veth, 10.244.1.1", e, want)
	}

	var reply []byte
	err = netns.Do(n.netns, func() error {
		c, err := net.Dial("udp", net.JoinHostPort(pod.Status.PodIP, "5353"))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		k, err := c.Read(buf)
		reply = buf[:k]
		return err
	})
	if err != nil {
		t.Fatalf("UDP echo: %v", err)
	}
	var u Echo
	if err := json.Unmarshal(reply, &u); err != nil || u.Payload != "ping" || u.Pod != "echo" || u.PodIP != pod.Status.PodIP {
		t.Errorf("UDP echo answered %q (%v)", reply, err)
	}
}

func testClosedPortProbe(t *testing.T, kube kubernetes.Interface, n *testNode) {
	pod := echoPod(n.name, "closed-port")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}},
		PeriodSeconds: 1,
	}
	netnsBefore, _ := netns.List(n.podNetns)
	pod = createPod(t, kube, pod)
	// Once the probe has failed, the pod is running but not ready.
	eventually(t, 60*time.Second, "an Unhealthy event for the readiness probe", func() error {
		return hasEvent(kube, pod, "Unhealthy", "connect: connection refused")
	})
	got := waitPod(t, kube, "default", pod.Name, 30*time.Second, "running", func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil {
			return fmt.Errorf("not running: %s", statusJSON(p))
		}
		return nil
	})
	if condition(got, corev1.PodReady) != corev1.ConditionFalse || condition(got, corev1.ContainersReady) != corev1.ConditionFalse || got.Status.ContainerStatuses[0].Ready {
		t.Errorf("a pod whose readiness probe fails is ready: %s", statusJSON(got))
	}
	deletePod(t, kube, pod.Name, ptr.To[int64](0))
	waitGone(t, kube, "default", pod.Name, 30*time.Second)
	assertReleased(t, n, got.Status.PodIP, netnsBefore)
}

func hasEvent(kube kubernetes.Interface, pod *corev1.Pod, reason, msgPart string) error {
	evs, err := kube.CoreV1().Events(pod.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range evs.Items {
		if e.InvolvedObject.UID != pod.UID {
			continue
		}
		if e.Reason == reason && strings.Contains(e.Message, msgPart) {
			return nil
		}
		seen = append(seen, e.Reason+": "+e.Message)
	}
	return fmt.Errorf("no %s event with %q; events: %q", reason, msgPart, seen)
}

func testReadinessGate(t *testing.T, kube kubernetes.Interface, n *testNode) {
	const gate = corev1.PodConditionType("flatnet.io/lb-target-healthy")
	pod := echoPod(n.name, "gated")
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: gate}}
	netnsBefore, _ := netns.List(n.podNetns)
	createPod(t, kube, pod)
	got := waitPod(t, kube, "default", "gated", 60*time.Second, "containers ready", func(p *corev1.Pod) error {
		if condition(p, corev1.ContainersReady) != corev1.ConditionTrue {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	if condition(got, corev1.PodReady) != corev1.ConditionFalse {
		t.Fatalf("Ready before its readiness gate is True: %s", statusJSON(got))
	}
	if condition(got, gate) != "" {
		t.Fatalf("the agent set the gate's condition itself: %s", statusJSON(got))
	}
	// The agent writes the pod's status too: on a conflict, the gate goes onto a fresh read.
	if err := clientretry.RetryOnConflict(clientretry.DefaultRetry, func() error {
		p, err := kube.CoreV1().Pods("default").Get(context.Background(), "gated", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: gate, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		_, err = kube.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ready := waitPod(t, kube, "default", "gated", 30*time.Second, "Ready once its gate is True", podReady)
	deletePod(t, kube, "gated", ptr.To[int64](0))
	waitGone(t, kube, "default", "gated", 30*time.Second)
	assertReleased(t, n, ready.Status.PodIP, netnsBefore)
}

func testUnknownImage(t *testing.T, kube kubernetes.Interface, n *testNode) {
	netnsBefore, _ := netns.List(n.podNetns)
	pod := echoPod(n.name, "unknown-image")
	pod.Spec.Containers[0].Image = "nginx:1.27"
	createPod(t, kube, pod)
	got := waitPod(t, kube, "default", pod.Name, 60*time.Second, "in ImagePullBackOff", func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
			p.Status.ContainerStatuses[0].State.Waiting.Reason != "ImagePullBackOff" {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	msg := got.Status.ContainerStatuses[0].State.Waiting.Message
	if !strings.Contains(msg, "nginx:1.27") || !strings.Contains(msg, "flatnet.io/echo") {
		t.Errorf("the message %q names neither the image nor the supported ones", msg)
	}
	if got.Status.PodIP == "" || got.Status.Phase != corev1.PodPending {
		t.Errorf("podIP %q phase %s: the network is set up and the pod pending", got.Status.PodIP, got.Status.Phase)
	}
	deletePod(t, kube, pod.Name, nil)
	waitGone(t, kube, "default", pod.Name, 60*time.Second)
	assertReleased(t, n, got.Status.PodIP, netnsBefore)
}

// assertReleased checks that host-local no longer holds ip and that the pod namespaces are back
// to the given set. A pod deleted with grace 0 leaves the API before the agent tears it down,
// hence the wait.
func assertReleased(t *testing.T, n *testNode, ip string, netnsWant []string) {
	t.Helper()
	eventually(t, 30*time.Second, "address and namespace released", func() error {
		if slices.Contains(n.allocatedIPs(), ip) {
			return fmt.Errorf("address %s is still allocated: %v", ip, n.allocatedIPs())
		}
		if after, _ := netns.List(n.podNetns); !slices.Equal(after, netnsWant) {
			return fmt.Errorf("pod namespaces %v, want %v", after, netnsWant)
		}
		return nil
	})
}

func testGracefulDelete(t *testing.T, kube kubernetes.Interface, n *testNode) {
	netnsBefore, _ := netns.List(n.podNetns)
	marker := filepath.Join(t.TempDir(), "sigterm")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "graceful", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      n.name,
			TerminationGracePeriodSeconds: ptr.To[int64](20),
			Containers: []corev1.Container{{
				Name: "sh", Image: "flatnet.io/generic",
				Command: []string{"/bin/sh", "-c", `trap 'echo got-term > "$MARKER"; exit 0' TERM; touch "$MARKER.trapped"; while :; do sleep 0.1; done`},
				Env:     []corev1.EnvVar{{Name: "MARKER", Value: marker}},
			}},
		},
	}
	createPod(t, kube, pod)
	got := waitPod(t, kube, "default", pod.Name, 60*time.Second, "Ready", podReady)
	eventually(t, 10*time.Second, "the container's trap installed", func() error {
		_, err := os.Stat(marker + ".trapped")
		return err
	})
	deletePod(t, kube, pod.Name, nil)
	waitGone(t, kube, "default", pod.Name, 30*time.Second)
	b, err := os.ReadFile(marker)
	if err != nil || strings.TrimSpace(string(b)) != "got-term" {
		t.Errorf("the container did not get SIGTERM before it went: %q %v", b, err)
	}
	assertReleased(t, n, got.Status.PodIP, netnsBefore)
}

func loadRecords(t *testing.T, n *testNode) map[types.UID]*sandboxRecord {
	t.Helper()
	st, err := newStore(filepath.Join(n.dir, "state", "sandboxes"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.load()
	if err != nil {
		t.Fatal(err)
	}
	out := map[types.UID]*sandboxRecord{}
	for _, r := range recs {
		out[r.PodUID] = r
	}
	return out
}

func testRestart(t *testing.T, kube kubernetes.Interface, n *testNode) {
	netnsBefore, _ := netns.List(n.podNetns)
	keep := createPod(t, kube, echoPod(n.name, "keep"))
	drop := createPod(t, kube, echoPod(n.name, "drop"))
	keepBefore := waitPod(t, kube, "default", "keep", 60*time.Second, "Ready", podReady)
	dropBefore := waitPod(t, kube, "default", "drop", 60*time.Second, "Ready", podReady)
	recs := loadRecords(t, n)
	keepRec, dropRec := recs[keep.UID], recs[drop.UID]
	if keepRec == nil || dropRec == nil || len(keepRec.Containers) != 1 || len(dropRec.Containers) != 1 {
		t.Fatalf("sandbox records: %+v", recs)
	}

	n.stopAgent(syscall.SIGKILL)
	deletePod(t, kube, "drop", ptr.To[int64](0)) // force: gone from the API before any agent sees it
	waitGone(t, kube, "default", "drop", 10*time.Second)
	// A sandbox whose ADD an agent was in the middle of when it died: a record and a namespace.
	midAdd := &sandboxRecord{ID: "feedfacefeedface", Netns: n.podNetns + "feedfacefeed", PodUID: "no-such-pod", Namespace: "default", Name: "ghost"}
	st, _ := newStore(filepath.Join(n.dir, "state", "sandboxes"))
	if err := st.save(midAdd); err != nil {
		t.Fatal(err)
	}
	if err := netns.Create(midAdd.Netns); err != nil {
		t.Fatal(err)
	}
	// Its ADD went through in the plugin (the address is taken); the agent died before recording it.
	cni := newNetwork(&Config{CNIConfDir: filepath.Join(n.dir, "conf"), CNIBinDir: binDir, CNICacheDir: filepath.Join(n.dir, "cache")}, "")
	var midIPs []string
	if err := netns.Do(n.netns, func() (err error) {
		midIPs, err = cni.add(context.Background(), midAdd.podNet())
		return err
	}); err != nil {
		t.Fatalf("ADD of the half-added sandbox: %v", err)
	}
	n.startAgent()

	eventually(t, 30*time.Second, "the force-deleted pod and the half-added sandbox torn down", func() error {
		left, _ := netns.List(n.podNetns)
		want := append(slices.Clone(netnsBefore), keepRec.Netns)
		slices.Sort(want)
		if !slices.Equal(left, want) {
			return fmt.Errorf("pod namespaces %v, want %v", left, want)
		}
		if slices.Contains(n.allocatedIPs(), dropBefore.Status.PodIP) {
			return fmt.Errorf("the dropped pod's address %s is still allocated", dropBefore.Status.PodIP)
		}
		if adoptProcess(dropRec.Containers[0].PID, dropRec.Containers[0].StartTime) != nil {
			return fmt.Errorf("the dropped pod's process %d still runs", dropRec.Containers[0].PID)
		}
		if slices.Contains(n.allocatedIPs(), midIPs[0]) {
			return fmt.Errorf("the half-added sandbox's address %s is still allocated", midIPs[0])
		}
		if _, err := os.Stat(filepath.Join(n.dir, "state", "sandboxes", midAdd.ID+".json")); err == nil {
			return fmt.Errorf("the half-added sandbox's record is still there")
		}
		return nil
	})
	// The kept pod is adopted as it was: same address, same process.
	kc := keepRec.Containers[0]
	if adoptProcess(kc.PID, kc.StartTime) == nil {
		t.Fatalf("the kept pod's process %d did not survive the agent's restart", kc.PID)
	}
	after := waitPod(t, kube, "default", "keep", 30*time.Second, "Ready after the restart", podReady)
	if after.Status.PodIP != keepBefore.Status.PodIP {
		t.Errorf("the kept pod's address changed from %s to %s", keepBefore.Status.PodIP, after.Status.PodIP)
	}
	// Ready never flapped: a flap would have moved its transition time.
	readyTime := func(p *corev1.Pod) metav1.Time {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.LastTransitionTime
			}
		}
		return metav1.Time{}
	}
	if ta, tb := readyTime(after), readyTime(keepBefore); !ta.Equal(&tb) {
		t.Errorf("the kept pod's Ready changed across the restart: transition at %v, was %v", readyTime(after), readyTime(keepBefore))
	}
	cs, csBefore := after.Status.ContainerStatuses[0], keepBefore.Status.ContainerStatuses[0]
	if cs.ContainerID != csBefore.ContainerID || cs.RestartCount != 0 {
		t.Errorf("the kept pod's container was replaced: %+v, was %+v", cs, csBefore)
	}
	if recs := loadRecords(t, n); recs[keep.UID] == nil || recs[keep.UID].Containers[0].PID != kc.PID {
		t.Errorf("the kept pod's record after the restart: %+v", recs[keep.UID])
	}
	if _, err := n.httpGet(context.Background(), "http://"+net.JoinHostPort(after.Status.PodIP, "8080")+"/"); err != nil {
		t.Errorf("the kept pod no longer answers: %v", err)
	}
	deletePod(t, kube, "keep", nil)
	waitGone(t, kube, "default", "keep", 30*time.Second)
	assertReleased(t, n, after.Status.PodIP, netnsBefore)
}

func testFailedAdd(t *testing.T, kube kubernetes.Interface, n *testNode) {
	createPod(t, kube, echoPod(n.name, "first"))
	first := waitPod(t, kube, "default", "first", 60*time.Second, "Ready", podReady)
	firstNetns, _ := netns.List(n.podNetns)
	second := createPod(t, kube, echoPod(n.name, "second"))
	eventually(t, 60*time.Second, "a FailedCreatePodSandBox event", func() error {
		return hasEvent(kube, second, "FailedCreatePodSandBox", "no IP addresses available")
	})
	// Retries come back every few seconds; between them nothing is left.
	eventually(t, 30*time.Second, "only the first pod's namespace and address", func() error {
		left, _ := netns.List(n.podNetns)
		if !slices.Equal(left, firstNetns) {
			return fmt.Errorf("pod namespaces %v, want %v", left, firstNetns)
		}
		if ips := n.allocatedIPs(); !slices.Equal(ips, []string{first.Status.PodIP}) {
			return fmt.Errorf("allocated %v, want only %s", ips, first.Status.PodIP)
		}
		return nil
	})
	p := waitPod(t, kube, "default", "second", 10*time.Second, "reporting the failure", func(p *corev1.Pod) error {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReadyToStartContainers && c.Status == corev1.ConditionFalse && strings.Contains(c.Message, "no IP addresses available") {
				return nil
			}
		}
		return fmt.Errorf("status %s", statusJSON(p))
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s", p.Status.Phase)
	}
	// Once the address is free, the retry succeeds.
	deletePod(t, kube, "first", nil)
	got := waitPod(t, kube, "default", "second", 90*time.Second, "Ready once the address is free", podReady)
	if got.Status.PodIP != first.Status.PodIP {
		t.Errorf("second pod got %s, want the freed %s", got.Status.PodIP, first.Status.PodIP)
	}
}

// testKilledMidStart: an agent that dies after starting a container's process but before
// recording it, or after recording it but before letting it run, leaves no process its
// successor does not know: the pod ends up Ready with exactly one process in its namespace,
// the recorded one, and none held at a start gate anywhere. The container that never ran is
// not counted as a restart.
func testKilledMidStart(t *testing.T, kube kubernetes.Interface, n *testNode) {
	netnsBefore, _ := netns.List(n.podNetns)
	for i, fp := range []string{"nodeagent-container-started", "nodeagent-container-recorded"} {
		name := fmt.Sprintf("mid-start-%d", i)
		n.stopAgent(syscall.SIGTERM)
		n.startAgent(failpoint.Env + "=" + fp)
		pod := createPod(t, kube, echoPod(n.name, name))
		if code := n.waitAgentExit(60 * time.Second); code != failpoint.ExitCode {
			t.Fatalf("%s: the agent exited with %d, want %d (the failpoint)", fp, code, failpoint.ExitCode)
		}
		n.startAgent()
		p := waitPod(t, kube, "default", name, 60*time.Second, "Ready after the restart", podReady)
		rec := loadRecords(t, n)[pod.UID]
		if rec == nil || len(rec.Containers) != 1 {
			t.Fatalf("%s: the pod's record: %+v", fp, rec)
		}
		if got, want := processesIn(t, rec.Netns), []int{rec.Containers[0].PID}; !slices.Equal(got, want) {
			t.Errorf("%s: processes in the pod's namespace %v, want only the recorded %v", fp, got, want)
		}
		if held := heldAtGate(t); len(held) > 0 {
			t.Errorf("%s: processes still held at a start gate: %v", fp, held)
		}
		if rec.Containers[0].Held {
			t.Errorf("%s: the running container is still recorded as held: %+v", fp, rec.Containers[0])
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 || cs[0].LastTerminationState.Terminated != nil {
			t.Errorf("%s: container statuses %+v: want one, never restarted (the first attempt never ran)", fp, cs)
		}
		if _, err := n.httpGet(context.Background(), "http://"+net.JoinHostPort(p.Status.PodIP, "8080")+"/"); err != nil {
			t.Errorf("%s: the pod does not answer: %v", fp, err)
		}
		deletePod(t, kube, name, nil)
		waitGone(t, kube, "default", name, 30*time.Second)
		assertReleased(t, n, p.Status.PodIP, netnsBefore)
	}
}

// heldAtGate lists the test's agent's children still waiting at a start gate ("container
// --start-fd"), as "pid: command line".
func heldAtGate(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 2 && args[0] == filepath.Join(binDir, "flatnet-node-agent") && args[1] == "container" && slices.Contains(args, "--start-fd") {
			out = append(out, e.Name()+": "+strings.Join(args, " "))
		}
	}
	return out
}

// processesIn lists the processes in the named network namespace.
func processesIn(t *testing.T, name string) []int {
	t.Helper()
	var want syscall.Stat_t
	if err := syscall.Stat(netns.Path(name), &want); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			out = append(out, pid)
		}
	}
	return out
}
