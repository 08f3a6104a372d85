package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podStatusPatch is the part of a pod's status the agent owns. It goes out as a strategic-merge
// patch of pods/status: conditions merge by type, so the conditions of readiness gates (written
// by their controllers) and PodScheduled are never touched.
type podStatusPatch struct {
	Phase                 corev1.PodPhase          `json:"phase"`
	Conditions            []patchCondition         `json:"conditions"`
	HostIP                string                   `json:"hostIP"`
	HostIPs               []corev1.HostIP          `json:"hostIPs"`
	PodIP                 string                   `json:"podIP,omitempty"`
	PodIPs                []corev1.PodIP           `json:"podIPs,omitempty"`
	StartTime             *metav1.Time             `json:"startTime,omitempty"`
	ContainerStatuses     []corev1.ContainerStatus `json:"containerStatuses"`
	InitContainerStatuses []corev1.ContainerStatus `json:"initContainerStatuses,omitempty"`
}

// patchCondition is a pod condition as the agent patches it: reason and message are always
// sent, so that a condition turning True clears the reason it had while False (a strategic
// merge keeps a field the patch leaves out).
type patchCondition struct {
	Type               corev1.PodConditionType `json:"type"`
	Status             corev1.ConditionStatus  `json:"status"`
	LastProbeTime      *metav1.Time            `json:"lastProbeTime"`
	LastTransitionTime metav1.Time             `json:"lastTransitionTime"`
	Reason             string                  `json:"reason"`
	Message            string                  `json:"message"`
}

func patchConditions(cs []corev1.PodCondition) []patchCondition {
	out := make([]patchCondition, 0, len(cs))
	for _, c := range cs {
		out = append(out, patchCondition{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	return out
}

// patchStatus writes the pod's status when it changed since the last write.
func (w *podWorker) patchStatus(ctx context.Context, pod *corev1.Pod) {
	st := w.status(pod, metav1.Now())
	b, err := json.Marshal(map[string]any{
		// The UID makes the patch fail on a pod of the same name created since.
		"metadata": map[string]any{"uid": pod.UID},
		"status":   st,
	})
	if err != nil || string(b) == w.lastPatched {
		return
	}
	if _, err := w.a.kube.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, b, metav1.PatchOptions{}, "status"); err != nil {
		if ctx.Err() == nil {
			w.a.log.Error("patch pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		return
	}
	w.lastPatched = string(b)
}

// status computes the pod's status from the sandbox, the containers and the probes.
func (w *podWorker) status(pod *corev1.Pod, now metav1.Time) podStatusPatch {
	st := podStatusPatch{
		HostIP: w.a.cfg.NodeIP, HostIPs: []corev1.HostIP{{IP: w.a.cfg.NodeIP}},
		StartTime: w.startTime,
	}
	sandboxReady := w.sb != nil && w.sb.Ready
	// The addresses stay reported after a finished pod's sandbox is released, as the kubelet does.
	if len(w.ips) > 0 {
		st.PodIP = w.ips[0]
		for _, ip := range w.ips {
			st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip})
		}
	}
	var unready []string
	pending, finished, failed := false, 0, false
	for _, c := range w.containers {
		cs := w.containerStatus(c)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.spec.Name)
		}
		if !c.everStarted {
			pending = true
		}
		if c.terminated != nil {
			finished++
			failed = failed || c.terminated.ExitCode != 0
		}
	}
	var initPending []string
	for _, c := range w.inits {
		cs := w.containerStatus(c)
		cs.Ready = c.terminated != nil && c.terminated.ExitCode == 0
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if !cs.Ready {
			initPending = append(initPending, c.spec.Name)
		}
	}
	if !w.initDone {
		for i := range st.ContainerStatuses {
			if st.ContainerStatuses[i].State.Waiting != nil && st.ContainerStatuses[i].State.Waiting.Reason == "ContainerCreating" {
				st.ContainerStatuses[i].State.Waiting.Reason = "PodInitializing"
			}
		}
	}
	switch {
	case w.initFailed:
		st.Phase = corev1.PodFailed
	case pending || !w.initDone || !sandboxReady && finished < len(w.containers):
		st.Phase = corev1.PodPending
	case finished == len(w.containers) && failed:
		st.Phase = corev1.PodFailed
	case finished == len(w.containers):
		st.Phase = corev1.PodSucceeded
	default:
		st.Phase = corev1.PodRunning
	}

	sandboxCond := w.condition(corev1.PodReadyToStartContainers, sandboxReady, "", "", now)
	if !sandboxReady && w.sbErr != nil {
		sandboxCond = w.condition(corev1.PodReadyToStartContainers, false, "FailedCreatePodSandBox", w.sbErr.Error(), now)
	}
	containersReady := len(unready) == 0
	var crReason, crMsg string
	if !containersReady {
		crReason, crMsg = "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	}
	ready, rReason, rMsg := containersReady, crReason, crMsg
	if ready {
		if missing := unmetGates(pod); missing != "" {
			ready, rReason, rMsg = false, "ReadinessGatesNotReady", missing
		}
	}
	st.Conditions = patchConditions([]corev1.PodCondition{
		sandboxCond,
		w.initialized(initPending, now),
		w.condition(corev1.ContainersReady, containersReady, crReason, crMsg, now),
		w.condition(corev1.PodReady, ready, rReason, rMsg, now),
	})
	return st
}

// initialized is the Initialized condition: True once every init container succeeded.
func (w *podWorker) initialized(pending []string, now metav1.Time) corev1.PodCondition {
	if w.initDone || len(pending) == 0 {
		return w.condition(corev1.PodInitialized, true, "", "", now)
	}
	return w.condition(corev1.PodInitialized, false, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pending, " ")), now)
}

// condition builds a condition, keeping its transition time while its status stays the same.
func (w *podWorker) condition(t corev1.PodConditionType, ok bool, reason, msg string, now metav1.Time) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	c := corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now}
	if prev, seen := w.conditions[t]; seen && prev.Status == status {
		c.LastTransitionTime = prev.LastTransitionTime
	}
	w.conditions[t] = c
	return c
}

// unmetGates says which readiness gates of the pod are not True, "" when all are.
func unmetGates(pod *corev1.Pod) string {
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				found = true
				if c.Status != corev1.ConditionTrue {
					msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %s", g.ConditionType, c.Status))
				}
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		}
	}
	return strings.Join(msgs, ", ")
}

func (w *podWorker) containerStatus(c *container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name: c.spec.Name, Image: c.spec.Image, ImageID: imageID(c.spec.Image),
		RestartCount: c.restartCount, LastTerminationState: corev1.ContainerState{Terminated: c.lastTerminated},
	}
	switch {
	case c.proc != nil:
		c.probes.mu.Lock()
		started, probeReady := c.probes.started, c.probes.ready
		c.probes.mu.Unlock()
		cs.ContainerID = c.id
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt.Truncate(time.Second))}
		cs.Started = ptr.To(started)
		cs.Ready = started && (c.spec.ReadinessProbe == nil || probeReady)
	case c.terminated != nil:
		cs.ContainerID = c.id
		cs.State.Terminated = c.terminated
		cs.Started = ptr.To(false)
	case c.waiting != nil:
		cs.State.Waiting = c.waiting
		cs.Started = ptr.To(false)
	default:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		cs.Started = ptr.To(false)
	}
	return cs
}
