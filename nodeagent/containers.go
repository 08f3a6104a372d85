package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flatnet/flatnet/internal/failpoint"
	"github.com/flatnet/flatnet/internal/netns"
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

	// launch and env are how the running process was started: exec probes run the same way.
	launch Launch
	env    []string
	init   bool // an init container: runs to completion before the containers
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
		for _, c := range append(append([]*container{}, w.inits...), w.containers...) {
			if c.spec.Name != rec.Name {
				continue
			}
			c.id, c.startedAt, c.restartCount, c.everStarted = rec.ID, rec.StartedAt, rec.RestartCount, true
			if rec.Launch != nil {
				c.launch, c.env = *rec.Launch, rec.Env
			} else {
				// Recorded by an agent that did not keep it: the pod's namespace, the node's files.
				c.launch = Launch{UID: -1, GID: -1}
				if !w.sb.HostNetwork {
					c.launch.Netns = netns.Path(w.sb.Netns)
				}
			}
			c.proc = adoptProcess(rec.PID, rec.StartTime)
			if c.proc == nil && rec.Held {
				// Recorded at its start gate and gone: the agent died before letting it run
				// (it exits when the gate closes). It never ran: started as if for the first
				// time since its last run, not counted as a failure.
				c.id, c.everStarted = "", rec.RestartCount > 0
				if rec.RestartCount > 0 {
					c.restartCount = rec.RestartCount - 1
				}
				continue
			}
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

// startContainer starts the container's program: in the pod's namespace (the node's for a
// hostNetwork pod), and for an image of the layout in a root of its own with its volumes.
func (w *podWorker) startContainer(ctx context.Context, pod *corev1.Pod, c *container) {
	l, env, err := w.containerLaunch(ctx, pod, c)
	if err != nil {
		w.cannotStart(pod, c, err)
		return
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	cid := hex.EncodeToString(id)
	logPath := w.a.containerLog(w.sb.ID, c.spec.Name)
	if c.everStarted {
		keepPreviousLog(logPath)
	}
	stdout, stderr, err := startLogWriter(w.a.self, logPath, w.a.cfg.ContainerLogMaxBytes)
	if err != nil {
		w.cannotStart(pod, c, &startError{reason: "RunContainerError", err: err})
		return
	}
	cmd, gate, err := l.gatedCommand(w.a.self)
	if err != nil {
		stdout.Close()
		stderr.Close()
		w.cannotStart(pod, c, &startError{reason: "RunContainerError", err: err})
		return
	}
	cmd.Env = env
	p, err := startProcess(cmd, stdout, stderr)
	gate.started()
	if err != nil {
		gate.cancel()
		w.cannotStart(pod, c, &startError{reason: "RunContainerError", err: err})
		return
	}
	// The process waits at its gate until the record names it (see startGate).
	failpoint.Hit("nodeagent-container-started") // running, held at its gate, not recorded
	rec := containerRecord{
		Name: c.spec.Name, ID: "flatnet://" + cid, PID: p.pid, StartTime: p.startTime,
		StartedAt: time.Now(), RestartCount: c.restartCount, Launch: &l, Env: env, Held: true,
	}
	if c.everStarted {
		rec.RestartCount++
	}
	if err := w.saveContainers(c, &rec); err != nil {
		gate.cancel()
		if serr := p.stop(0); serr != nil {
			w.a.log.Error("stop a container that could not be recorded", "pod", pod.Namespace+"/"+pod.Name, "container", c.spec.Name, "err", serr)
		}
		w.cannotStart(pod, c, &startError{reason: "RunContainerError", err: fmt.Errorf("record the container before it runs: %w", err)})
		return
	}
	failpoint.Hit("nodeagent-container-recorded") // recorded, still held at its gate
	if err := gate.open(); err != nil {
		// The child is gone already: the next sync sees it exited.
		w.a.log.Error("let the container run", "pod", pod.Namespace+"/"+pod.Name, "container", c.spec.Name, "err", err)
	}
	c.launch, c.env, c.restartCount = l, env, rec.RestartCount
	c.id, c.proc, c.startedAt, c.everStarted, c.waiting = rec.ID, p, rec.StartedAt, true, nil
	// Recorded again, no longer held (see containerRecord.Held).
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
	if c.waiting == nil || c.waiting.Reason != reason || c.waiting.Message != err.Error() {
		w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %s: %v", reason, err)
	}
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}
	c.backoff = min(max(2*c.backoff, crashBackoffFirst), crashBackoffCap)
	c.nextStart = time.Now().Add(c.backoff)
}

// containerLaunch maps the container to what runs: the image's program, its environment, its
// namespace, root, mounts and identity.
func (w *podWorker) containerLaunch(ctx context.Context, pod *corev1.Pod, c *container) (Launch, []string, error) {
	l := Launch{UID: -1, GID: -1}
	if !pod.Spec.HostNetwork {
		l.Netns = netns.Path(w.sb.Netns)
	}
	prog, img, err := w.a.resolveImage(c.spec.Image)
	if err != nil {
		return l, nil, &startError{reason: "ErrImagePull", err: err}
	}
	base := []string{"PATH=" + containerPath}
	if img != nil {
		base = append(base, img.env...)
	}
	envl, err := w.containerEnv(ctx, pod, c.spec, base)
	if err != nil {
		return l, nil, err
	}
	var command, args []string
	for _, a := range c.spec.Command {
		command = append(command, expand(a, envl.get))
	}
	for _, a := range c.spec.Args {
		args = append(args, expand(a, envl.get))
	}
	uid, gid := runAs(pod, c.spec)
	switch prog {
	case programEcho:
		if err := builtinMounts(pod, c.spec); err != nil {
			return l, nil, err
		}
		var tcp, udp []string
		for _, p := range c.spec.Ports {
			switch p.Protocol {
			case corev1.ProtocolUDP:
				udp = append(udp, strconv.Itoa(int(p.ContainerPort)))
			case corev1.ProtocolTCP, "":
				tcp = append(tcp, strconv.Itoa(int(p.ContainerPort)))
			}
		}
		podIP := w.sb.IPs[0]
		for _, kv := range [][2]string{{envPodName, pod.Name}, {envPodNamespace, pod.Namespace}, {envPodIP, podIP},
			{envNodeName, w.a.cfg.NodeName}, {envEchoTCP, strings.Join(tcp, ",")}, {envEchoUDP, strings.Join(udp, ",")}} {
			envl.set(kv[0], kv[1])
		}
		l.Argv = []string{w.a.self, "echo"}
	case programGeneric:
		if err := builtinMounts(pod, c.spec); err != nil {
			return l, nil, err
		}
		if len(command) == 0 {
			return l, nil, fmt.Errorf("container %s: %s runs the container's command and has no entrypoint of its own: set command", c.spec.Name, c.spec.Image)
		}
		l.Argv = append(append([]string{}, command...), args...)
	case programOCI:
		// Kubernetes' rule: command replaces the entrypoint and drops the image's cmd; args
		// replace the cmd.
		var argv []string
		switch {
		case len(command) > 0:
			argv = append(append([]string{}, command...), args...)
		case len(args) > 0:
			argv = append(append([]string{}, img.entrypoint...), args...)
		default:
			argv = append(append([]string{}, img.entrypoint...), img.cmd...)
		}
		if len(argv) == 0 {
			return l, nil, fmt.Errorf("container %s: image %s has no entrypoint and the container no command", c.spec.Name, c.spec.Image)
		}
		root := filepath.Join(w.a.containerRootDir(w.sb.ID), c.spec.Name)
		if err := cloneTree(img.root, root); err != nil {
			return l, nil, fmt.Errorf("container %s: prepare its root from image %s: %w", c.spec.Name, c.spec.Image, err)
		}
		mounts, err := w.mounts(c.spec)
		if err != nil {
			return l, nil, err
		}
		l.Argv, l.Rootfs, l.Mounts = argv, root, mounts
		l.Workdir = img.workdir
		if c.spec.WorkingDir != "" {
			l.Workdir = c.spec.WorkingDir
		}
		l.ReadOnlyRoot = c.spec.SecurityContext != nil && ptrTrue(c.spec.SecurityContext.ReadOnlyRootFilesystem)
		if uid < 0 {
			uid = img.uid
		}
		if gid < 0 {
			gid = img.gid
		}
	}
	l.UID, l.GID = uid, gid
	if ps := pod.Spec.SecurityContext; ps != nil {
		// The kubelet adds the fsGroup (which owns the pod's volumes) and the pod's
		// supplementalGroups to every container's groups.
		if ps.FSGroup != nil {
			l.Groups = append(l.Groups, int(*ps.FSGroup))
		}
		for _, g := range ps.SupplementalGroups {
			l.Groups = append(l.Groups, int(g))
		}
	}
	return l, envl.list(), nil
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// runAs is the identity the container's securityContext asks for (the container's over the
// pod's); -1 where neither says.
func runAs(pod *corev1.Pod, c *corev1.Container) (uid, gid int) {
	uid, gid = -1, -1
	if ps := pod.Spec.SecurityContext; ps != nil {
		if ps.RunAsUser != nil {
			uid = int(*ps.RunAsUser)
		}
		if ps.RunAsGroup != nil {
			gid = int(*ps.RunAsGroup)
		}
	}
	if cs := c.SecurityContext; cs != nil {
		if cs.RunAsUser != nil {
			uid = int(*cs.RunAsUser)
		}
		if cs.RunAsGroup != nil {
			gid = int(*cs.RunAsGroup)
		}
	}
	return uid, gid
}

// mounts binds the container's volumeMounts: each volume's place on the node at mountPath.
func (w *podWorker) mounts(c *corev1.Container) ([]Mount, error) {
	var out []Mount
	for _, vm := range c.VolumeMounts {
		v := w.volumes[vm.Name]
		if v == nil {
			return nil, fmt.Errorf("container %s: volumeMount %s names no volume of the pod", c.Name, vm.Name)
		}
		src := v.path
		if vm.SubPath != "" {
			clean := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, fmt.Errorf("container %s: volumeMount %s: subPath %q must stay inside the volume", c.Name, vm.Name, vm.SubPath)
			}
			src = filepath.Join(src, clean)
			if v.generated {
				return nil, fmt.Errorf("container %s: volumeMount %s: subPath of a configMap, secret or projected volume is not supported by the node agent", c.Name, vm.Name)
			}
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, fmt.Errorf("container %s: volumeMount %s: %w", c.Name, vm.Name, err)
			}
		}
		if vm.MountPath == "" || !filepath.IsAbs(vm.MountPath) {
			return nil, fmt.Errorf("container %s: volumeMount %s: mountPath %q must be absolute", c.Name, vm.Name, vm.MountPath)
		}
		out = append(out, Mount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}

// builtinMounts refuses mounts in a container of a built-in image: those run on the node's own
// filesystem, where a mount cannot be placed. The service-account volume the API server adds
// to every pod is the exception: the built-in programs never read it.
func builtinMounts(pod *corev1.Pod, c *corev1.Container) error {
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(vm.Name, "kube-api-access-") && vm.MountPath == "/var/run/secrets/kubernetes.io/serviceaccount" {
			continue
		}
		return fmt.Errorf("container %s: volumeMount %s: %s is a built-in image, which runs on the node's filesystem: mounts need an image of the node agent's layout", c.Name, vm.Name, c.Image)
	}
	return nil
}

// recordContainers writes the running processes into the sandbox record, for adoption after a
// restart.
func (w *podWorker) recordContainers() {
	if err := w.saveContainers(nil, nil); err != nil {
		w.a.log.Error("record containers", "sandbox", w.sb.ID, "err", err)
	}
}

// saveContainers writes the running processes into the sandbox record, with next as the
// record of starting (a process not yet in c). On an error the record in memory is left as
// it was.
func (w *podWorker) saveContainers(starting *container, next *containerRecord) error {
	var recs []containerRecord
	for _, c := range append(append([]*container{}, w.inits...), w.containers...) {
		switch {
		case c == starting:
			recs = append(recs, *next)
		case c.proc != nil:
			recs = append(recs, containerRecord{
				Name: c.spec.Name, ID: c.id, PID: c.proc.pid, StartTime: c.proc.startTime,
				StartedAt: c.startedAt, RestartCount: c.restartCount, Launch: &c.launch, Env: c.env,
			})
		}
	}
	prev := w.sb.Containers
	w.sb.Containers = recs
	err := w.a.store.save(w.sb)
	if err != nil {
		w.sb.Containers = prev
	}
	return err
}

// terminationGrace is how long a container killed for its probes gets between SIGTERM and SIGKILL.
func terminationGrace(pod *corev1.Pod) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}
