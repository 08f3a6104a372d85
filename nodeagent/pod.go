package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/netns"
)

const (
	// syncPeriod is how often a worker looks at its containers without being poked.
	syncPeriod = time.Second
	// A failed sandbox is retried after sandboxBackoffFirst, doubling up to sandboxBackoffCap.
	sandboxBackoffFirst = time.Second
	sandboxBackoffCap   = 60 * time.Second
)

// podWorker owns one pod: its sandbox, its containers, their probes and the pod's status. All
// its state is touched by its own goroutine only, except what mu guards.
type podWorker struct {
	a      *Agent
	uid    types.UID
	notify chan struct{}

	mu   sync.Mutex
	pod  *corev1.Pod // latest version from the informer
	gone bool        // deleted from the API

	sb          *sandboxRecord // nil until a sandbox is recorded
	sbBackoff   time.Duration
	sbNextTry   time.Time
	sbErr       error // the last sandbox failure, for the status
	ips         []string
	finished    bool // every container ended for good: no sandbox, no restarts
	containers  []*container
	startTime   *metav1.Time
	conditions  map[corev1.PodConditionType]corev1.PodCondition
	lastPatched string

	inits      []*container // init containers, run one after the other before containers
	initDone   bool         // every init container succeeded (or the sandbox was adopted running)
	volumes    map[string]*podVolume
	volumesAt  time.Time
	specErr    error  // what in the pod's spec the agent cannot run; reported, never run
	refused    bool   // the event saying so went out
	volErr     string // the last volume failure reported
	initFailed bool   // an init container failed with restartPolicy Never: the pod failed
}

func newPodWorker(a *Agent, pod *corev1.Pod, adopted *sandboxRecord) *podWorker {
	w := &podWorker{a: a, uid: pod.UID, pod: pod, notify: make(chan struct{}, 1), conditions: map[corev1.PodConditionType]corev1.PodCondition{}}
	if pod.Status.StartTime != nil {
		w.startTime = pod.Status.StartTime.DeepCopy()
	}
	// The conditions an earlier agent wrote keep their transition times while they hold.
	for _, c := range pod.Status.Conditions {
		switch c.Type {
		case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
			w.conditions[c.Type] = c
		}
	}
	for i := range pod.Spec.InitContainers {
		w.inits = append(w.inits, &container{spec: &pod.Spec.InitContainers[i], init: true})
	}
	for i := range pod.Spec.Containers {
		w.containers = append(w.containers, &container{spec: &pod.Spec.Containers[i]})
	}
	w.initDone = len(w.inits) == 0
	w.specErr = checkPod(pod)
	if adopted != nil {
		w.sb, w.ips = adopted, adopted.IPs
		// A sandbox whose containers ran is past its init containers (records of an older
		// agent do not say).
		w.initDone = w.initDone || adopted.InitDone || len(adopted.Containers) > 0
		w.adopt(pod)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished before this agent started: never run again, release what is left.
		w.finished = true
	}
	return w
}

// update hands the worker the pod's latest version. A version without the deletion timestamp
// the worker already saw is an older one (housekeeping can be ahead of the watch) and is dropped.
func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	if w.pod.DeletionTimestamp == nil || pod.DeletionTimestamp != nil {
		w.pod = pod
	}
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func (w *podWorker) current() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

func (w *podWorker) run(ctx context.Context) {
	t := time.NewTicker(syncPeriod)
	defer t.Stop()
	defer w.stopProbes()
	for {
		if w.sync(ctx) {
			w.a.workerDone(w.uid)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.notify:
		case <-t.C:
		}
	}
}

// sync moves the pod one step towards what its spec asks. It returns true when the pod is torn
// down and the worker can go.
func (w *podWorker) sync(ctx context.Context) bool {
	pod, gone := w.current()
	log := w.a.log.With("pod", pod.Namespace+"/"+pod.Name)
	if gone || pod.DeletionTimestamp != nil {
		if err := w.terminate(ctx, pod, gone); err != nil {
			log.Error("terminate pod, retrying", "err", err)
			return false
		}
		log.Info("pod torn down")
		return true
	}
	if w.finished {
		// Every container has ended for good: the network is released, the last status stands.
		w.releaseSandbox(ctx, log)
		return false
	}
	if w.sb != nil && !w.sb.Ready {
		// A failed attempt whose clean-up failed too: finish that first, or it leaks.
		if time.Now().Before(w.sbNextTry) {
			return false
		}
		if err := w.a.teardownRecord(ctx, w.sb, 0); err != nil {
			log.Error("clean up a failed sandbox, retrying", "sandbox", w.sb.ID, "err", err)
			w.backoffSandbox()
			return false
		}
		w.sb = nil
	}
	if w.specErr != nil {
		// Never run wrongly: the pod waits, saying what the agent cannot do.
		w.refuse(pod)
		w.patchStatus(ctx, pod)
		return false
	}
	if w.sb == nil {
		if time.Now().Before(w.sbNextTry) {
			return false
		}
		if err := w.createSandbox(ctx, pod); err != nil {
			w.sandboxFailed(ctx, pod, err)
			w.patchStatus(ctx, pod)
			return false
		}
		w.sbErr, w.sbBackoff = nil, 0
		log.Info("sandbox ready", "sandbox", w.sb.ID, "netns", w.sb.Netns, "ips", w.sb.IPs)
	}
	if needsVolumes(pod) {
		if _, err := w.prepareVolumes(ctx, pod); err != nil {
			w.volumesFailed(pod, err)
			w.patchStatus(ctx, pod)
			return false
		}
		w.volErr = ""
	}
	if !w.initDone {
		w.syncInits(ctx, pod)
		if w.initFailed {
			w.finished = true
			w.patchStatus(ctx, pod)
			w.releaseSandbox(ctx, log)
			return false
		}
		if !w.initDone {
			w.patchStatus(ctx, pod)
			return false
		}
		w.sb.InitDone = true
		if err := w.a.store.save(w.sb); err != nil {
			log.Error("record the init containers' completion", "err", err)
		}
	}
	w.syncContainers(ctx, pod)
	w.patchStatus(ctx, pod)
	if w.allTerminated() {
		w.finished = true
		w.releaseSandbox(ctx, log)
	}
	return false
}

// allTerminated reports whether every container has ended and will not restart.
func (w *podWorker) allTerminated() bool {
	for _, c := range w.containers {
		if c.terminated == nil {
			return false
		}
	}
	return true
}

// releaseSandbox tears down the sandbox of a pod whose containers have all ended, as the kubelet
// does: the address goes back to the pool while the pod object stays.
func (w *podWorker) releaseSandbox(ctx context.Context, log *slog.Logger) {
	if w.sb == nil || time.Now().Before(w.sbNextTry) {
		return
	}
	if err := w.a.teardownRecord(ctx, w.sb, 0); err != nil {
		log.Error("release the sandbox of a finished pod, retrying", "sandbox", w.sb.ID, "err", err)
		w.backoffSandbox()
		return
	}
	log.Info("finished pod's sandbox released", "sandbox", w.sb.ID)
	w.sb = nil
}

func (w *podWorker) backoffSandbox() {
	w.sbBackoff = min(max(2*w.sbBackoff, sandboxBackoffFirst), sandboxBackoffCap)
	w.sbNextTry = time.Now().Add(w.sbBackoff)
}

// createSandbox records the sandbox, then creates its namespace and attaches it (CNI ADD). The
// record comes first so that an agent killed in the middle finds what to undo.
func (w *podWorker) createSandbox(ctx context.Context, pod *corev1.Pod) error {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	sid := hex.EncodeToString(id)
	if pod.Spec.HostNetwork {
		// The node's own namespace and address: no network to set up, so no network
		// configuration needed either (the network plugin's own DaemonSet runs this way).
		w.sb = &sandboxRecord{
			ID: sid, PodUID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, Created: time.Now().UTC(),
			HostNetwork: true, Ready: true, IPs: []string{w.a.cfg.NodeIP},
		}
		w.ips = w.sb.IPs
		if w.startTime == nil {
			w.startTime = ptr.To(metav1.Now())
		}
		return w.a.store.save(w.sb)
	}
	// Without a network configuration nothing is made: there would be nothing to undo it with.
	if _, err := w.a.net.conf(); err != nil {
		return err
	}
	w.sb = &sandboxRecord{
		ID: sid, Netns: w.a.cfg.NetnsPrefix + sid[:12],
		PodUID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, Created: time.Now().UTC(),
	}
	if err := w.a.store.save(w.sb); err != nil {
		w.sb = nil
		return err
	}
	// A namespace left by a crash between making it and recording the ADD is reused, as a
	// runtime reuses its sandbox.
	if err := netns.Create(w.sb.Netns); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ips, err := w.a.net.add(ctx, w.sb.podNet())
	if err != nil {
		return err
	}
	w.sb.IPs, w.sb.Ready, w.ips = ips, true, ips
	if w.startTime == nil {
		w.startTime = ptr.To(metav1.Now())
	}
	return w.a.store.save(w.sb)
}

// sandboxFailed reports a failed sandbox on the pod, undoes what was made (CNI DEL, namespace)
// and schedules the next attempt.
func (w *podWorker) sandboxFailed(ctx context.Context, pod *corev1.Pod, err error) {
	w.sbErr = err
	w.a.log.Error("create sandbox", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	// The event goes out after the clean-up, so whoever sees it sees nothing left behind.
	defer w.a.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
	if w.sb != nil {
		if terr := w.a.teardownRecord(ctx, w.sb, 0); terr != nil {
			// The record stays: the next attempt (or the next agent) tears it down first.
			w.a.log.Error("clean up the failed sandbox", "sandbox", w.sb.ID, "err", terr)
		} else {
			w.sb = nil
		}
	}
	w.backoffSandbox()
}

// terminate stops the containers (SIGTERM, the grace period, SIGKILL), tears the sandbox down
// and, unless the pod is already gone, deletes it for good (grace 0, only this UID).
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod, gone bool) error {
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if err := w.stopContainers(pod, grace); err != nil {
		return err
	}
	if w.sb != nil {
		if err := w.a.teardownRecord(ctx, w.sb, 0); err != nil {
			return err
		}
		w.sb = nil
	}
	if gone {
		return nil
	}
	err := w.a.kube.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// The UID precondition failed: a pod of the same name replaced this one, or the API
		// server (a fresh restart's storage) judged against a stale copy. Only a read tells.
		cur, gerr := w.a.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(gerr) || (gerr == nil && cur.UID != pod.UID) {
			return nil
		}
		if gerr != nil {
			return fmt.Errorf("delete pod %s/%s: %w; then reading it: %w", pod.Namespace, pod.Name, err, gerr)
		}
		return fmt.Errorf("delete pod %s/%s: %w, and the pod is still there", pod.Namespace, pod.Name, err)
	default:
		return fmt.Errorf("delete pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
}

// stopContainers stops every running container at once, each with the same grace period.
func (w *podWorker) stopContainers(pod *corev1.Pod, grace time.Duration) error {
	w.stopProbes()
	all := append(append([]*container{}, w.inits...), w.containers...)
	errs := make(chan error, len(all))
	for _, c := range all {
		go func() {
			if c.proc == nil {
				errs <- nil
				return
			}
			if c.proc.running() {
				w.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", c.spec.Name)
			}
			errs <- c.proc.stop(grace)
		}()
	}
	var first error
	for range all {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *podWorker) stopProbes() {
	for _, c := range w.containers {
		c.stopProbes()
	}
}
