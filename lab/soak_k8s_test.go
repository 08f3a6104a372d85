package lab

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// soakK8sDuration is how long TestSoakKubernetes churns: FLATNET_SOAK_K8S (make soak-k8s
// sets it); the test is skipped without it, so make test does not run it.
func soakK8sDuration(t *testing.T) time.Duration {
	v := os.Getenv("FLATNET_SOAK_K8S")
	if v == "" {
		t.Skip("the Kubernetes soak runs with FLATNET_SOAK_K8S=<duration of its churn> (make soak-k8s)")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("FLATNET_SOAK_K8S=%q: want a positive duration such as 6m", v)
	}
	return d
}

// k8sRestart is one restart of the soak's schedule.
type k8sRestart struct {
	what string // node-agent, kube-apiserver or ipamd
	node string // for node-agent and ipamd
	down time.Duration
}

// k8sRestartSchedule is what TestSoakKubernetes restarts, in turn a node agent, the
// kube-apiserver and an ipamd (the nodes in turn too), at intervals growing from 10 s by 5 s
// and down times growing from 0.5 s by 0.5 s up to 5 s, within d.
func k8sRestartSchedule(d time.Duration, nodes []string) (at []time.Duration, rs []k8sRestart) {
	kinds := []string{"node-agent", "kube-apiserver", "ipamd"}
	t, every := time.Duration(0), 10*time.Second
	for i := 0; ; i++ {
		t += every
		if t >= d {
			return at, rs
		}
		r := k8sRestart{what: kinds[i%len(kinds)], down: min(time.Duration(i+1)*500*time.Millisecond, 5*time.Second)}
		if r.what != "kube-apiserver" {
			r.node = nodes[(i/len(kinds))%len(nodes)]
		}
		at, rs = append(at, t), append(rs, r)
		every += 5 * time.Second
	}
}

// TestSoakKubernetes is flatnet issue 18's Kubernetes-level soak: a Deployment of echo pods is
// scaled up and down and its pods deleted at random while node agents, the kube-apiserver and
// ipamds are killed -9 and restarted at growing intervals; the pools are narrow, so they grow
// and shrink all along. At the end the pods run with their addresses, answer across nodes,
// and every address the cloud assigns to a node belongs to exactly one live pod or its warm
// pool: none leaked, doubled or lost.
func TestSoakKubernetes(t *testing.T) {
	churnFor := soakK8sDuration(t)
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), churnFor+15*time.Minute)
	defer cancel()
	cfg := testConfig(t, "fks-", 7486)
	cfg.Nodes = 3
	cfg.Kubernetes = true
	cfg.K8sBinDir = k8sBinDir(t)
	cfg.APIServerListen = freeAddr(t, 6446)
	cfg.IpamdArgs = []string{"--resync-interval", "2s", "--cooldown", "1s",
		"--warm-low", "2", "--warm-high", "4", "--idle-release", "2s"}
	start := time.Now()
	l, kc := upKubeLab(ctx, t, cfg, logLabOnFailure(t))
	t.Logf("lab up with 3 Ready nodes in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { // before upKubeLab's Down: cleanups run last first
		if t.Failed() {
			dumpNodeAgents(t, l)
		}
		if dir := os.Getenv("FLATNET_SOAK_K8S_LOGS"); dir != "" {
			if err := keepLogs(cfg.Dir, dir); err != nil {
				t.Errorf("keep the lab's logs: %v", err)
			} else {
				t.Logf("the lab's logs are kept in %s", dir)
			}
		}
	})
	const app, initial = "soak", 6
	if _, err := kc.AppsV1().Deployments(demoNamespace).Create(ctx, EchoDeployment(demoNamespace, app, initial), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitPodsReady(ctx, kc, demoNamespace, "app="+app, initial, 3*time.Minute); err != nil {
		t.Fatal(err)
	}

	var nodes []string
	for _, n := range l.State().Nodes {
		nodes = append(nodes, n.Name)
	}
	at, schedule := k8sRestartSchedule(churnFor, nodes)
	churnStart := time.Now()
	churnCtx, stopChurn := context.WithTimeout(ctx, churnFor)
	defer stopChurn()
	var (
		mu                                 sync.Mutex
		scales, podDeletes, apiErrs        int
		restarted                          = map[string]int{}
		restartErr                         error
		restartWG                          sync.WaitGroup
		restartLog                         []string
		maxReplicas, minReplicas, replicas = 15, 2, initial
	)
	// The lab's stand-in for the kubelet of the control plane's static pods: the controller
	// manager and the scheduler exit when they lose their leases (the API server down past
	// their renew deadline) and are started again.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchWG sync.WaitGroup
	watchWG.Go(func() {
		for watchCtx.Err() == nil {
			names, err := l.RestartExitedControllers()
			mu.Lock()
			for _, n := range names {
				restarted[n+" (exited)"]++
			}
			if err != nil && restartErr == nil {
				restartErr = err
			}
			mu.Unlock()
			select {
			case <-watchCtx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	defer func() {
		stopWatch()
		watchWG.Wait()
	}()
	restartWG.Go(func() {
		for i, r := range schedule {
			select {
			case <-churnCtx.Done():
				return
			case <-time.After(time.Until(churnStart.Add(at[i]))):
			}
			var err error
			switch r.what {
			case "node-agent":
				err = l.RestartNodeAgent(ctx, r.node, r.down)
			case "kube-apiserver":
				err = l.RestartAPIServer(ctx, r.down)
			case "ipamd":
				err = l.RestartIpamd(ctx, r.node, r.down)
			}
			mu.Lock()
			if err != nil {
				restartErr = fmt.Errorf("restart %s %s at %v: %w", r.what, r.node, at[i], err)
				mu.Unlock()
				return
			}
			restarted[r.what]++
			restartLog = append(restartLog, fmt.Sprintf("%v %s %s down %v", at[i], r.what, r.node, r.down))
			mu.Unlock()
		}
	})
	// The churn: every 1-3 s, scale the Deployment to a random size or delete one of its pods
	// (its ReplicaSet replaces it). Calls that fail while the API server is down are counted
	// and the step skipped, as a client would retry later.
	rng := rand.New(rand.NewPCG(18, 2))
	for churnCtx.Err() == nil {
		var err error
		if rng.IntN(3) == 0 {
			err = deleteRandomPod(churnCtx, kc, app, rng)
			if err == nil {
				podDeletes++
			}
		} else {
			n := minReplicas + rng.IntN(maxReplicas-minReplicas+1)
			err = scaleDeployment(churnCtx, kc, app, int32(n))
			if err == nil {
				scales++
				replicas = n
			}
		}
		if err != nil && churnCtx.Err() == nil {
			apiErrs++
		}
		select {
		case <-churnCtx.Done():
		case <-time.After(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond):
		}
	}
	restartWG.Wait()
	mu.Lock()
	kinds, rerr := maps.Clone(restarted), restartErr
	mu.Unlock()
	t.Logf("churn of %v: %d scalings (last to %d), %d pod deletions, %d API calls failed (API server down); restarts: %v",
		time.Since(churnStart).Round(time.Second), scales, replicas, podDeletes, apiErrs, kinds)
	for _, r := range restartLog {
		t.Logf("restart: %s", r)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, what := range []string{"node-agent", "kube-apiserver", "ipamd"} {
		if kinds[what] == 0 {
			t.Errorf("no %s was restarted during the churn of %v", what, churnFor)
		}
	}

	// The end: a last size the cluster settles at; the pods run with their addresses, answer
	// across nodes, and the cloud, ipamd and the API agree.
	const final = 9
	if err := poll(ctx, time.Minute, time.Second, func() (bool, string) {
		err := scaleDeployment(ctx, kc, app, final)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNodesReady(ctx, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	pods, err := WaitPodsReady(ctx, kc, demoNamespace, "app="+app, final, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: phase %s, address %q", p.Name, p.Status.Phase, p.Status.PodIP)
		}
		if err := l.assignedOnNode(ctx, p.Spec.NodeName, p.Status.PodIP); err != nil {
			t.Errorf("pod %s: %v", p.Name, err)
		}
	}
	if err := echoAcross(ctx, l, pods, t.Logf); err != nil {
		t.Error(err)
	}
	// Pods on their way out may still hold their addresses, and ipamd resyncs every 2 s.
	var last error
	if err := poll(ctx, 2*time.Minute, time.Second, func() (bool, string) {
		last = l.CheckAddresses(ctx, kc)
		return last == nil, fmt.Sprint(last)
	}); err != nil {
		t.Errorf("the cloud, ipamd and the API never agreed: %v", err)
	}
	live, err := livePodAddrs(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cloudOwnership(ctx, l, live)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("against the cloud: %d addresses on the nodes' interfaces, %d owned by live pods (%d of the Deployment's), %d in warm pools; violations: %d leaked, %d doubled, %d lost",
		v.addrs, v.pods, len(pods), v.warm, len(v.leaked), len(v.doubled), len(v.lost))
	for _, e := range slices.Concat(v.leaked, v.doubled, v.lost) {
		t.Error(e)
	}
	mu.Lock()
	t.Logf("soak of %v in %v; restarts in all: %v", churnFor, time.Since(start).Round(time.Second), restarted)
	if restartErr != nil {
		t.Error(restartErr)
	}
	mu.Unlock()
}

// livePodAddrs lists the addresses of the cluster's pods that hold one: not host-network, not
// finished.
func livePodAddrs(ctx context.Context, kc kubernetes.Interface) ([]podAddr, error) {
	list, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []podAddr
	for _, p := range list.Items {
		if p.Spec.HostNetwork || p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, podAddr{Name: p.Namespace + "/" + p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP})
	}
	return out, nil
}

func scaleDeployment(ctx context.Context, kc kubernetes.Interface, name string, replicas int32) error {
	s, err := kc.AppsV1().Deployments(demoNamespace).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	s.Spec.Replicas = replicas
	_, err = kc.AppsV1().Deployments(demoNamespace).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	return err
}

func deleteRandomPod(ctx context.Context, kc kubernetes.Interface, app string, rng *rand.Rand) error {
	list, err := kc.CoreV1().Pods(demoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		return nil
	}
	p := list.Items[rng.IntN(len(list.Items))]
	return kc.CoreV1().Pods(demoNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
}

// The schedule restarts each kind at least once in a short soak, at growing intervals.
func TestK8sRestartSchedule(t *testing.T) {
	at, rs := k8sRestartSchedule(6*time.Minute, []string{"node-1", "node-2", "node-3"})
	kinds := map[string]int{}
	for i, r := range rs {
		kinds[r.what]++
		if i > 1 && at[i]-at[i-1] <= at[i-1]-at[i-2] {
			t.Errorf("interval before restart %d is %v, not longer than the one before (%v)", i, at[i]-at[i-1], at[i-1]-at[i-2])
		}
		if (r.what == "kube-apiserver") != (r.node == "") {
			t.Errorf("restart %d: %+v", i, r)
		}
	}
	if kinds["node-agent"] < 2 || kinds["kube-apiserver"] < 2 || kinds["ipamd"] < 2 {
		t.Errorf("restarts in 6m: %v, want at least 2 of each", kinds)
	}
	t.Logf("6m: %d restarts %v, the last at %v", len(rs), kinds, at[len(at)-1])
}

// dumpNodeAgents has every node agent print its goroutines to its log (SIGQUIT), so that a
// failed soak shows what an agent that went quiet was waiting for. The agents exit; the lab is
// being taken down.
func dumpNodeAgents(t *testing.T, l *Lab) {
	for _, n := range l.State().Nodes {
		if alive(n.NodeAgentPID) && ours(n.NodeAgentPID) {
			if err := syscall.Kill(n.NodeAgentPID, syscall.SIGQUIT); err != nil {
				t.Logf("%s: SIGQUIT to the node agent: %v", n.Name, err)
				continue
			}
			waitGone(n.NodeAgentPID, 5*time.Second)
		}
	}
}

// keepLogs copies the lab's logs (*.log and rotated *.log.N, the processes' and the
// containers') from the lab's directory to dir, keeping their paths, before Down removes them.
func keepLogs(labDir, dir string) error {
	return filepath.WalkDir(labDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(d.Name(), ".log") && !strings.Contains(d.Name(), ".log.") {
			return nil
		}
		rel, err := filepath.Rel(labDir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
