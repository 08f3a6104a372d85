package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkPod refuses, with the reasons, a pod that uses what the agent cannot provide: running it
// without would be running it wrongly.
func checkPod(pod *corev1.Pod) error {
	var errs []error
	if err := checkVolumes(pod); err != nil {
		errs = append(errs, err)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			errs = append(errs, fmt.Errorf("init container %s: sidecar containers (restartPolicy Always) are not supported by the node agent", c.Name))
		}
	}
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, vd := range c.VolumeDevices {
			errs = append(errs, fmt.Errorf("container %s: volumeDevice %s: block devices are not supported by the node agent", c.Name, vd.Name))
		}
		for _, vm := range c.VolumeMounts {
			if vm.SubPathExpr != "" {
				errs = append(errs, fmt.Errorf("container %s: volumeMount %s: subPathExpr is not supported by the node agent", c.Name, vm.Name))
			}
		}
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace || pod.Spec.HostPID || pod.Spec.HostIPC {
		errs = append(errs, errors.New("shareProcessNamespace, hostPID and hostIPC are not supported by the node agent (it runs no PID or IPC namespaces)"))
	}
	return errors.Join(errs...)
}

// refuse reports a pod the agent will not run: every container waits with the reason, and one
// Warning event says it.
func (w *podWorker) refuse(pod *corev1.Pod) {
	msg := strings.ReplaceAll(w.specErr.Error(), "\n", "; ")
	for _, c := range append(append([]*container{}, w.inits...), w.containers...) {
		c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
	}
	if !w.refused {
		w.refused = true
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Unsupported", "The node agent does not run this pod: %s", msg)
	}
}

// needsVolumes reports whether a container of the pod runs from an image of the layout: only
// those get mounts, so only then are the volumes prepared.
func needsVolumes(pod *corev1.Pod) bool {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if !strings.HasPrefix(c.Image, imageRepo) && len(c.VolumeMounts) > 0 {
			return true
		}
	}
	return false
}

// volumesFailed reports volumes that could not be prepared (a missing ConfigMap, a denied
// token): the containers not running yet wait, and a FailedMount event says why (once per
// distinct error). The next sync tries again.
func (w *podWorker) volumesFailed(pod *corev1.Pod, err error) {
	msg := err.Error()
	for _, c := range append(append([]*container{}, w.inits...), w.containers...) {
		if c.proc == nil && c.terminated == nil {
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		}
	}
	if w.volErr != msg {
		w.volErr = msg
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "MountVolume failed: %s", msg)
	}
}

// syncInits runs the init containers one after the other, each to completion: one that fails
// runs again after a back-off, unless the pod's restartPolicy is Never, which fails the pod.
func (w *podWorker) syncInits(ctx context.Context, pod *corev1.Pod) {
	for _, c := range w.inits {
		if c.terminated != nil && c.terminated.ExitCode == 0 {
			continue
		}
		if c.proc != nil {
			if c.proc.running() {
				return
			}
			code := c.proc.exitCode()
			term := &corev1.ContainerStateTerminated{
				ExitCode: int32(code), Reason: "Completed", ContainerID: c.id,
				StartedAt: metav1.NewTime(c.startedAt), FinishedAt: metav1.Now(),
			}
			if code != 0 {
				term.Reason = "Error"
			}
			c.proc = nil
			c.stopProbes()
			w.recordContainers()
			if code == 0 {
				c.terminated, c.waiting = term, nil
				continue
			}
			c.lastTerminated = term
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				c.terminated = term
				w.initFailed = true
				w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Init container %s failed with exit code %d; restartPolicy Never: the pod failed", c.spec.Name, code)
				return
			}
			c.backoff = min(max(2*c.backoff, crashBackoffFirst), crashBackoffCap)
			c.nextStart = time.Now().Add(c.backoff)
			c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off %s restarting failed init container=%s pod=%s_%s(%s)", c.backoff, c.spec.Name, pod.Name, pod.Namespace, pod.UID)}
			w.a.recorder.Event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed init container "+c.spec.Name)
			return
		}
		if time.Now().Before(c.nextStart) {
			return
		}
		w.startContainer(ctx, pod, c)
		return
	}
	w.initDone = true
}
