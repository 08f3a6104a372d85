package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// A container that exits or fails its liveness probe is restarted (per restartPolicy) after
	// crashBackoffFirst, doubling up to crashBackoffCap; a run of crashBackoffReset resets it.
	crashBackoffFirst = time.Second
	crashBackoffCap   = 30 * time.Second
	crashBackoffReset = 10 * time.Minute
	// containerPath is the PATH a container starts with, before its own env.
	containerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// container is one container of a pod: its process while it runs and what the status reports.
type container struct {
	spec *corev1.Container

	id           string // "flatnet://<hex>", new at every start
	proc         *process
	startedAt    time.Time
	restartCount int32
	everStarted  bool

	waiting        *corev1.ContainerStateWaiting
	terminated     *corev1.ContainerStateTerminated // finished for good (no restart)
	lastTerminated *corev1.ContainerStateTerminated
	backoff        time.Duration
	nextStart      time.Time

	probeCancel context.CancelFunc
	probes      probeState
}

// probeState is what the probes found; the probe goroutines write it, the worker reads it.
type probeState struct {
	mu         sync.Mutex
	ready      bool   // readiness probe passing
	started    bool   // startup probe passed
	killReason string // a liveness or startup probe asks for a restart
}

func (c *container) stopProbes() {
	if c.probeCancel != nil {
		c.probeCancel()
		c.probeCancel = nil
	}
}

// adopt takes over the containers recorded in an adopted sandbox. A recorded process that is
// gone (or whose pid was reused) is seen as exited on the first sync and restarted per policy.
//
// A running container keeps the readiness and startup state the pod's status shows until its
// probes say otherwise, so that restarting the agent does not flap the pod's endpoints.
func (w *podWorker) adopt(pod *corev1.Pod) {
	for _, rec := range w.sb.Containers {
		for _, c := range w.containers {
			if c.spec.Name != rec.Name {
				continue
			}
			c.id, c.startedAt, c.restartCount, c.everStarted = rec.ID, rec.StartedAt, rec.RestartCount, true
			c.proc = adoptProcess(rec.PID, rec.StartTime)
			if c.proc == nil {
				c.proc = &process{pid: rec.PID, startTime: rec.StartTime, adopted: true}
				continue
			}
			for _, cs := range pod.Status.ContainerStatuses {
				if cs.Name == rec.Name && cs.ContainerID == rec.ID {
					c.probes.ready, c.probes.started = cs.Ready, cs.Started != nil && *cs.Started
				}
			}
		}
	}
	if w.startTime == nil {
		w.startTime = &metav1.Time{Time: w.sb.Created}
	}
}

// syncContainers restarts what exited or failed its probes and starts what should run.
func (w *podWorker) syncContainers(ctx context.Context, pod *corev1.Pod) {
	for _, c := range w.containers {
		if c.proc != nil {
			if c.proc.running() {
				reason := c.probes.kill()
				if reason == "" {
					if c.probeCancel == nil {
						w.startProbes(ctx, pod, c)
					}
					continue
				}
				w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s %s, will be restarted", c.spec.Name, reason)
				if err := c.proc.stop(terminationGrace(pod)); err != nil {
					w.a.log.Error("stop container", "pod", pod.Namespace+"/"+pod.Name, "container", c.spec.Name, "err", err)
					continue
				}
			}
			w.exited(pod, c)
		}
		if c.terminated == nil && !time.Now().Before(c.nextStart) {
			w.startContainer(ctx, pod, c)
		}
	}
}

// exited records a container's end and decides, by the pod's restartPolicy, whether it runs again.
func (w *podWorker) exited(pod *corev1.Pod, c *container) {
	code := c.proc.exitCode()
	term := &corev1.ContainerStateTerminated{
		ExitCode: int32(code), Reason: "Completed", ContainerID: c.id,
		StartedAt: metav1.NewTime(c.startedAt), FinishedAt: metav1.Now(),
	}
	switch {
	case c.proc.adopted:
		term.Reason = "ContainerStatusUnknown"
		term.Message = "the container exited while the node agent was not running: its exit code is unknown"
	case code != 0:
		term.Reason = "Error"
	}
	c.proc = nil
	c.stopProbes()
	c.probes.reset()
	w.recordContainers()
	restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways || pod.Spec.RestartPolicy == "" ||
		pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && code != 0
	if !restart {
		c.terminated = term
		return
	}
	c.lastTerminated = term
	if time.Since(c.startedAt) > crashBackoffReset {
		c.backoff = 0
	}
	c.backoff = min(max(2*c.backoff, crashBackoffFirst), crashBackoffCap)
	c.nextStart = time.Now().Add(c.backoff)
	msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.backoff, c.spec.Name, pod.Name, pod.Namespace, pod.UID)
	c.waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
	w.a.recorder.Event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.spec.Name)
}

// startContainer starts the container's program in the pod's namespace.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *container) {
	argv, env, err := w.containerCommand(pod, c)
	if err != nil {
		w.cannotStart(pod, c, err)
		return
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	cid := hex.EncodeToString(id)
	logPath := filepath.Join(w.a.logDir, w.sb.ID+"_"+c.spec.Name+".log")
	p, err := startProcess(argv, env, logPath)
	if err != nil {
		w.cannotStart(pod, c, &startError{reason: "RunContainerError", err: err})
		return
	}
	if c.everStarted {
		c.restartCount++
	}
	c.id, c.proc, c.startedAt, c.everStarted, c.waiting = "flatnet://"+cid, p, time.Now(), true, nil
	w.recordContainers()
	w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.spec.Name)
	w.startProbes(ctx, pod, c)
}

// startError is why a container cannot start, with the status reason that says it.
type startError struct {
	reason string
	err    error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// cannotStart reports a container that cannot start and schedules the next attempt. An image
// the agent does not know is ErrImagePull the first time and ImagePullBackOff after, as the
// kubelet reports an image it cannot pull.
func (w *podWorker) cannotStart(pod *corev1.Pod, c *container, err error) {
	reason := "CreateContainerConfigError"
	var se *startError
	if errors.As(err, &se) {
		reason = se.reason
	}
	if reason == "ErrImagePull" && c.waiting != nil && (c.waiting.Reason == "ErrImagePull" || c.waiting.Reason == "ImagePullBackOff") {
		reason = "ImagePullBackOff"
	}
	if c.waiting == nil || c.waiting.Reason != reason {
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %s: %v", reason, err)
	}
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
	c.backoff = min(max(2*c.backoff, crashBackoffFirst), crashBackoffCap)
	c.nextStart = time.Now().Add(c.backoff)
}

// containerCommand maps the container's image to the program to run, with its environment.
func (w *podWorker) containerCommand(pod *corev1.Pod, c *container) (argv, env []string, err error) {
	prog, err := program(c.spec.Image)
	if err != nil {
		return nil, nil, &startError{reason: "ErrImagePull", err: err}
	}
	env = []string{"PATH=" + containerPath, "HOSTNAME=" + pod.Name}
	podIP := w.sb.IPs[0]
	for _, e := range c.spec.Env {
		v, err := envValue(pod, podIP, w.a.cfg.NodeIP, e)
		if err != nil {
			return nil, nil, err
		}
		env = append(env, e.Name+"="+v)
	}
	switch prog {
	case programEcho:
		var tcp, udp []string
		for _, p := range c.spec.Ports {
			switch p.Protocol {
			case corev1.ProtocolUDP:
				udp = append(udp, strconv.Itoa(int(p.ContainerPort)))
			case corev1.ProtocolTCP, "":
				tcp = append(tcp, strconv.Itoa(int(p.ContainerPort)))
			}
		}
		env = append(env, envPodName+"="+pod.Name, envPodNamespace+"="+pod.Namespace, envPodIP+"="+podIP,
			envNodeName+"="+w.a.cfg.NodeName, envEchoTCP+"="+strings.Join(tcp, ","), envEchoUDP+"="+strings.Join(udp, ","))
		argv = []string{w.a.self, "echo"}
	case programGeneric:
		argv = append(append([]string{}, c.spec.Command...), c.spec.Args...)
		if len(c.spec.Command) == 0 {
			return nil, nil, fmt.Errorf("container %s: %s runs the container's command and has no entrypoint of its own: set command", c.spec.Name, c.spec.Image)
		}
	}
	return containerArgv(w.a.self, w.sb.Netns, argv), env, nil
}

// envValue resolves one env entry: a literal value or a field of the pod (the downward API).
func envValue(pod *corev1.Pod, podIP, hostIP string, e corev1.EnvVar) (string, error) {
	if e.ValueFrom == nil {
		return e.Value, nil
	}
	if e.ValueFrom.FieldRef != nil {
		switch e.ValueFrom.FieldRef.FieldPath {
		case "metadata.name":
			return pod.Name, nil
		case "metadata.namespace":
			return pod.Namespace, nil
		case "metadata.uid":
			return string(pod.UID), nil
		case "spec.nodeName":
			return pod.Spec.NodeName, nil
		case "spec.serviceAccountName":
			return pod.Spec.ServiceAccountName, nil
		case "status.podIP":
			return podIP, nil
		case "status.hostIP":
			return hostIP, nil
		}
	}
	return "", fmt.Errorf("env %s: the node agent supports value and fieldRef to metadata.name, metadata.namespace, metadata.uid, spec.nodeName, spec.serviceAccountName, status.podIP and status.hostIP", e.Name)
}

// recordContainers writes the running processes into the sandbox record, for adoption after a
// restart.
func (w *podWorker) recordContainers() {
	w.sb.Containers = nil
	for _, c := range w.containers {
		if c.proc == nil {
			continue
		}
		w.sb.Containers = append(w.sb.Containers, containerRecord{
			Name: c.spec.Name, ID: c.id, PID: c.proc.pid, StartTime: c.proc.startTime,
			StartedAt: c.startedAt, RestartCount: c.restartCount,
		})
	}
	if err := w.a.store.save(w.sb); err != nil {
		w.a.log.Error("record containers", "sandbox", w.sb.ID, "err", err)
	}
}

// terminationGrace is how long a container killed for its probes gets between SIGTERM and SIGKILL.
func terminationGrace(pod *corev1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}
