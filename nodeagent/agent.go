package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/flatnet/flatnet/internal/netns"
)

// Agent is one node's agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	kube     kubernetes.Interface
	net      *network
	store    *store
	probes   *probeRecords // exec probes whose commands run
	logDir   string
	self     string // the executable containers are run through
	bootID   string
	recorder record.EventRecorder
	events   record.EventBroadcaster
	images   *imageCache
	// apiHost and apiPort are the API server's address as the agent reaches it, given to
	// containers as KUBERNETES_SERVICE_HOST/PORT (the lab has no Service proxy for the
	// kubernetes Service's cluster IP).
	apiHost, apiPort string

	nodeUID       types.UID
	lastReady     *bool // the Ready status last written, nil before the first write
	lastHeartbeat time.Time

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	// finished holds pods torn down whose deletion the informer has not reported yet, so that
	// their last updates do not start a worker again.
	finished map[types.UID]bool
	adopted  map[types.UID]*sandboxRecord // sandboxes found on start, handed to their pods' workers
	wg       sync.WaitGroup
}

// New checks the configuration and prepares the agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ContainerLogMaxBytes == 0 {
		cfg.ContainerLogMaxBytes = defaultContainerLogMaxBytes
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	rc.UserAgent = agentVersion + "/" + cfg.NodeName
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	self := cfg.Executable
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the agent's own executable (containers run through it): %w", err)
		}
	}
	st, err := newStore(filepath.Join(cfg.StateDir, "sandboxes"))
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(cfg.StateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the container log directory: %w", err)
	}
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, fmt.Errorf("read the boot id: %w", err)
	}
	probes, err := newProbeRecords(filepath.Join(cfg.StateDir, "probes"), strings.TrimSpace(string(boot)))
	if err != nil {
		return nil, err
	}
	events := record.NewBroadcaster()
	apiHost, apiPort, err := hostPort(rc.Host)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: the server: %w", cfg.Kubeconfig, err)
	}
	return &Agent{
		images:  newImageCache(cfg.ImageLayout, filepath.Join(cfg.StateDir, "images")),
		apiHost: apiHost, apiPort: apiPort,
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), kube: kube, net: newNetwork(&cfg, self),
		store: st, probes: probes, logDir: logDir, self: self, bootID: strings.TrimSpace(string(boot)),
		events:   events,
		recorder: events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "flatnet-node-agent", Host: cfg.NodeName}),
		workers:  map[types.UID]*podWorker{},
		finished: map[types.UID]bool{},
		adopted:  map[types.UID]*sandboxRecord{},
	}, nil
}

// Run registers the node, takes over what an earlier agent left, then runs the pods bound to the
// node until ctx ends. Pods keep running when the agent stops: the next agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	a.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: a.kube.CoreV1().Events("")})
	defer a.events.Shutdown()
	logs, err := a.listenLogs()
	if err != nil {
		return err
	}
	if logs != nil {
		go a.serveLogs(ctx, logs)
	}
	// First, needing no API server: what an earlier agent's exec probes left running.
	if err := a.probes.sweep(a.log); err != nil {
		a.log.Error("end the exec probes an earlier agent left running", "err", err)
	}
	if err := retry(ctx, a.log, "register the node", a.registerNode); err != nil {
		return err
	}
	if err := retry(ctx, a.log, "recover the sandboxes of an earlier run", a.recover); err != nil {
		return err
	}
	go a.leaseLoop(ctx)
	go a.nodeStatusLoop(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(a.kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(ctx, obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(ctx, obj) },
		DeleteFunc: a.podDeleted,
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	factory.Start(ctx.Done())
	go a.housekeepingLoop(ctx, inf.HasSynced)
	a.log.Info("node agent running", "providerID", a.cfg.ProviderID)
	<-ctx.Done()
	factory.Shutdown()
	a.wg.Wait()
	return nil
}

// retry runs fn until it succeeds or ctx ends: the API server may come up after the agent.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	delay := time.Second
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Error(what+", retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// podChanged hands the pod's latest version to its worker, starting one for a new pod.
func (a *Agent) podChanged(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName != a.cfg.NodeName {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.workers[pod.UID]
	if w == nil && a.finished[pod.UID] {
		return
	}
	if w == nil {
		w = newPodWorker(a, pod, a.adopted[pod.UID])
		delete(a.adopted, pod.UID)
		a.workers[pod.UID] = w
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			w.run(ctx)
		}()
	}
	w.update(pod)
}

// podDeleted tells a pod's worker that the pod is gone from the API (deleted by the agent after
// termination, or force-deleted): it tears down whatever is left.
func (a *Agent) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	w := a.workers[pod.UID]
	delete(a.finished, pod.UID)
	a.mu.Unlock()
	if w != nil {
		w.markGone()
	}
}

// workerDone forgets a worker whose pod is torn down.
func (a *Agent) workerDone(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.workers, uid)
	a.finished[uid] = true
}

// recover takes over what an earlier agent left: sandboxes whose pods still exist on this node
// and whose CNI ADD had completed are adopted as they are (same namespace, same address, the
// processes keep running); everything else is torn down. Then the plugins are told which
// attachments are valid (CNI GC), and namespaces with the node's prefix that no record names
// are removed.
func (a *Agent) recover(ctx context.Context) error {
	recs, err := a.store.load()
	if err != nil {
		return err
	}
	pods, err := a.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String(),
	})
	if err != nil {
		return fmt.Errorf("list the node's pods: %w", err)
	}
	live := map[types.UID]bool{}
	for _, p := range pods.Items {
		live[p.UID] = true
	}
	var valid []podNet
	keep := map[string]bool{}
	var errs []error
	var orphans []*sandboxRecord
	for _, r := range recs {
		if r.Ready && live[r.PodUID] && a.adopted[r.PodUID] == nil {
			a.adopted[r.PodUID] = r
			if !r.HostNetwork {
				valid = append(valid, r.podNet())
			}
			keep[r.Netns] = true
			a.log.Info("adopting sandbox", "pod", r.Namespace+"/"+r.Name, "sandbox", r.ID, "ips", r.IPs)
			continue
		}
		a.log.Info("tearing down a sandbox left by an earlier run", "pod", r.Namespace+"/"+r.Name, "sandbox", r.ID, "addComplete", r.Ready)
		if err := a.teardownRecord(ctx, r, 0); err != nil {
			a.log.Error("tear down a left sandbox, will retry", "sandbox", r.ID, "err", err)
			orphans = append(orphans, r)
			keep[r.Netns] = true
		}
	}
	if len(orphans) > 0 {
		go a.retryOrphans(ctx, orphans)
	}
	if err := a.net.gc(ctx, valid); err != nil {
		// GC only tidies after the plugins; pods can run without it.
		a.log.Error("CNI GC", "err", err)
	}
	stray, err := netns.List(a.cfg.NetnsPrefix)
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range stray {
		if !keep[name] {
			a.log.Info("removing a pod namespace no record names", "netns", name)
			errs = append(errs, netns.Delete(name))
		}
	}
	return errors.Join(errs...)
}

// retryOrphans keeps trying to tear down sandboxes left by an earlier run that could not be torn
// down at start (typically: no CNI configuration yet, so their addresses cannot be released).
func (a *Agent) retryOrphans(ctx context.Context, orphans []*sandboxRecord) {
	delay := time.Second
	for len(orphans) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
		left := orphans[:0]
		for _, r := range orphans {
			if err := a.teardownRecord(ctx, r, 0); err != nil {
				a.log.Error("tear down a left sandbox, will retry", "sandbox", r.ID, "err", err, "in", delay)
				left = append(left, r)
			}
		}
		orphans = left
	}
}

// teardownRecord stops a sandbox's recorded processes, detaches it (CNI DEL), removes its
// namespace, its logs and its record, in that order, so that a failure leaves the record for
// the next attempt.
func (a *Agent) teardownRecord(ctx context.Context, r *sandboxRecord, grace time.Duration) error {
	for _, c := range r.Containers {
		if p := adoptProcess(c.PID, c.StartTime); p != nil {
			if err := p.stop(grace); err != nil {
				return fmt.Errorf("sandbox %s: stop container %s: %w", r.ID, c.Name, err)
			}
		}
	}
	if !r.HostNetwork {
		if err := a.net.del(ctx, r.podNet()); err != nil {
			return fmt.Errorf("sandbox %s of pod %s/%s: %w", r.ID, r.Namespace, r.Name, err)
		}
		if err := netns.Delete(r.Netns); err != nil {
			return err
		}
	}
	logs, _ := filepath.Glob(filepath.Join(a.logDir, r.ID+"_*.log*"))
	for _, l := range logs {
		_ = os.Remove(l)
	}
	// The containers' roots and the pod's own volumes (emptyDir, generated files) go with it.
	if err := os.RemoveAll(a.containerRootDir(r.ID)); err != nil {
		return fmt.Errorf("sandbox %s: remove the containers' roots: %w", r.ID, err)
	}
	if err := os.RemoveAll(filepath.Join(a.cfg.StateDir, "pods", string(r.PodUID))); err != nil {
		return fmt.Errorf("sandbox %s: remove the pod's volumes: %w", r.ID, err)
	}
	return a.store.remove(r.ID)
}

// containerLog is the log of a sandbox's container (logs.go).
func (a *Agent) containerLog(sandboxID, container string) string {
	return filepath.Join(a.logDir, sandboxID+"_"+container+".log")
}

func (r *sandboxRecord) podNet() podNet {
	return podNet{sandboxID: r.ID, netns: r.Netns, namespace: r.Namespace, name: r.Name, podUID: string(r.PodUID)}
}

// hostPort splits the API server's URL into host and port (443 when it names none).
func hostPort(server string) (string, string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", "", err
	}
	if u.Hostname() == "" {
		return "", "", fmt.Errorf("%q names no host", server)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return u.Hostname(), port, nil
}
