package nodeagent

// The node agent's probes and restarts, steps of TestAgent (agent_test.go).

import (
	"bytes"
	"errors"
	"fmt"
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
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/netns"
)

func genericPod(node, name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: policy, TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "sh", Image: "flatnet.io/generic:1", Command: []string{"/bin/sh", "-c", script}}},
		},
	}
}

func testProbesAndRestarts(t *testing.T, kube kubernetes.Interface, n *testNode) {
	netnsBefore, _ := netns.List(n.podNetns)
	// A liveness probe to a closed port: killed, restarted, with CrashLoopBackOff between.
	live := echoPod(n.name, "liveness")
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	live = createPod(t, kube, live)
	waitPod(t, kube, "default", "liveness", 60*time.Second, "restarted for its liveness probe", func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 ||
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated == nil {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	if err := hasEvent(kube, live, "Killing", "failed liveness probe"); err != nil {
		t.Error(err)
	}

	// Exec readiness probes run inside the pod's namespace: only there is there an eth0 (the
	// node's namespace holds lo and ptp's veths). The fieldRef env gives the container its IP.
	ipFile := filepath.Join(t.TempDir(), "ip")
	exe := genericPod(n.name, "exec-probe", corev1.RestartPolicyAlways, `echo "$MY_IP" > "$IP_FILE"; while :; do sleep 1; done`)
	exe.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "IP_FILE", Value: ipFile},
	}
	exe.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "grep -q ' eth0:' /proc/net/dev"}}},
		PeriodSeconds: 1,
	}
	createPod(t, kube, exe)
	ready := waitPod(t, kube, "default", "exec-probe", 60*time.Second, "Ready through its exec probe", podReady)
	eventually(t, 10*time.Second, "the container's MY_IP written", func() error {
		if b, err := os.ReadFile(ipFile); err != nil || strings.TrimSpace(string(b)) != ready.Status.PodIP {
			return fmt.Errorf("MY_IP was %q (%w), want %s", b, err, ready.Status.PodIP)
		}
		return nil
	})

	// Exits: Never keeps the code and fails the pod; Always backs off and restarts.
	createPod(t, kube, genericPod(n.name, "exit-never", corev1.RestartPolicyNever, "exit 3"))
	p := waitPod(t, kube, "default", "exit-never", 60*time.Second, "Failed", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("terminated state %+v, want exit code 3, reason Error", term)
	}
	// A finished pod gives its address back while the pod object stays.
	eventually(t, 30*time.Second, "the finished pod's address released", func() error {
		if slices.Contains(n.allocatedIPs(), p.Status.PodIP) {
			return fmt.Errorf("address %s of the failed pod is still allocated", p.Status.PodIP)
		}
		return nil
	})
	createPod(t, kube, genericPod(n.name, "exit-always", corev1.RestartPolicyAlways, "exit 0"))
	waitPod(t, kube, "default", "exit-always", 60*time.Second, "in CrashLoopBackOff", func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses
		if len(cs) == 0 || cs[0].RestartCount < 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CrashLoopBackOff" {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	for _, name := range []string{"liveness", "exec-probe", "exit-never", "exit-always"} {
		deletePod(t, kube, name, nil)
	}
	for _, name := range []string{"liveness", "exec-probe", "exit-never", "exit-always"} {
		waitGone(t, kube, "default", name, 30*time.Second)
	}
	eventually(t, 30*time.Second, "every namespace of these pods removed", func() error {
		if after, _ := netns.List(n.podNetns); !slices.Equal(after, netnsBefore) {
			return fmt.Errorf("pod namespaces %v, want %v", after, netnsBefore)
		}
		return nil
	})
}

// testExecProbeProcesses: an exec probe that outruns its timeout is killed with every process
// it started, and what a probe leaves running when it exits is killed too. The readiness probe
// starts a sleep and waits for it, past its 1 s timeout; the liveness probe starts one in the
// background and exits at once. Each records its sleep's pid; all but the last run's must be
// gone (the last may be running).
func testExecProbeProcesses(t *testing.T, kube kubernetes.Interface, n *testNode) {
	dir := t.TempDir()
	hung, left := filepath.Join(dir, "hung"), filepath.Join(dir, "left")
	pod := genericPod(n.name, "probe-procs", corev1.RestartPolicyAlways, "while :; do sleep 1; done")
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c",
			`sleep 600 & echo $! >> "` + hung + `"; wait`}}},
		PeriodSeconds: 1, TimeoutSeconds: 1,
	}
	pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c",
			`sleep 600 >/dev/null 2>&1 & echo $! >> "` + left + `"`}}},
		PeriodSeconds: 1, TimeoutSeconds: 5, FailureThreshold: 1000,
	}
	createPod(t, kube, pod)
	defer func() {
		deletePod(t, kube, pod.Name, nil)
		waitGone(t, kube, "default", pod.Name, 30*time.Second)
	}()
	pids := func(file string) []int {
		b, _ := os.ReadFile(file)
		var out []int
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return out
	}
	// A sleep of ours that still runs: not gone, not a zombie, and still a probe's `sleep 600`
	// (not its pid taken by another process, such as the pod's `sleep 1`).
	running := func(pid int) bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || string(cmdline) != "sleep\x00600\x00" {
			return false
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	}
	eventually(t, 60*time.Second, "three runs of each exec probe", func() error {
		if h, l := len(pids(hung)), len(pids(left)); h < 3 || l < 3 {
			return fmt.Errorf("%d runs of the timed-out probe, %d of the one that leaves a process", h, l)
		}
		return nil
	})
	eventually(t, 10*time.Second, "the probes' processes gone", func() error {
		for _, file := range []string{hung, left} {
			all := pids(file)
			for _, pid := range all[:len(all)-1] {
				if running(pid) {
					return fmt.Errorf("the sleep %d that an exec probe started (%s) still runs", pid, filepath.Base(file))
				}
			}
		}
		return nil
	})

	// An agent killed while a probe's command runs: its successor ends what the probe started.
	// The timed-out probe runs about half of each second; the agent is killed while the last
	// sleep it started runs, again if that sleep ended first.
	orphan := 0
	for attempt := 0; orphan == 0 && attempt < 5; attempt++ {
		candidate := 0
		eventually(t, 10*time.Second, "a sleep of the timed-out probe running", func() error {
			if all := pids(hung); len(all) > 0 && running(all[len(all)-1]) {
				candidate = all[len(all)-1]
				return nil
			}
			return errors.New("none runs")
		})
		n.stopAgent(syscall.SIGKILL)
		if running(candidate) {
			orphan = candidate
		}
		n.startAgent()
	}
	if orphan == 0 {
		t.Fatal("in 5 attempts the agent was never killed while an exec probe's sleep ran")
	}
	eventually(t, 20*time.Second, "the killed agent's probe's sleep ended by its successor", func() error {
		if running(orphan) {
			return fmt.Errorf("the sleep %d that an exec probe of the killed agent started still runs", orphan)
		}
		return nil
	})
	waitPod(t, kube, "default", pod.Name, 60*time.Second, "running under the new agent", func(p *corev1.Pod) error {
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil {
			return fmt.Errorf("container statuses %+v", cs)
		}
		return nil
	})
}
