package nodeagent

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// housekeepingPeriod is how often the agent compares its workers with the node's pods as the
// API server lists them. The watch is the fast path; this pass is what makes a pod the watch
// missed (a stale cache after API server or agent restarts) run, stop or finish its deletion
// anyway, as the kubelet's housekeeping does.
const housekeepingPeriod = 10 * time.Second

// housekeepingLoop runs housekeep every housekeepingPeriod once the informer has synced.
func (a *Agent) housekeepingLoop(ctx context.Context, synced cache.InformerSynced) {
	if !cache.WaitForCacheSync(ctx.Done(), synced) {
		return
	}
	t := time.NewTicker(housekeepingPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.housekeep(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("housekeeping", "err", err)
		}
	}
}

// housekeep lists the node's pods (a consistent read, not the informer's cache) and hands the
// workers what the watch did not:
//   - a pod without a worker that the agent never saw, or whose worker finished while the pod
//     is still there (its deletion did not take), gets one;
//   - a worker whose pod is still running while the API says it is being deleted gets the
//     deleting version;
//   - a worker whose pod is gone from the API tears down without deleting it.
//
// Only workers and finished pods that existed before the list are judged by it, so that a pod
// the watch reports meanwhile is never taken for gone.
func (a *Agent) housekeep(ctx context.Context) error {
	a.mu.Lock()
	before := make(map[types.UID]*podWorker, len(a.workers))
	for uid, w := range a.workers {
		before[uid] = w
	}
	finished := make(map[types.UID]bool, len(a.finished))
	for uid := range a.finished {
		finished[uid] = true
	}
	a.mu.Unlock()

	list, err := a.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String(),
	})
	if err != nil {
		return fmt.Errorf("list the node's pods: %w", err)
	}
	now := time.Now()
	listed := map[types.UID]bool{}
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.Spec.NodeName != a.cfg.NodeName {
			continue
		}
		listed[pod.UID] = true
		log := a.log.With("pod", pod.Namespace+"/"+pod.Name, "uid", pod.UID)
		if w := before[pod.UID]; w != nil {
			// A deletion timestamp is never taken back: a worker whose pod lacks it is behind.
			if cur, _ := w.current(); pod.DeletionTimestamp != nil && cur.DeletionTimestamp == nil {
				log.Warn("housekeeping: the watch missed the pod's deletion", "deletionTimestamp", pod.DeletionTimestamp)
				w.update(pod)
			}
			continue
		}
		switch {
		case finished[pod.UID]:
			if len(pod.Finalizers) > 0 {
				continue // deleted; others remove it when they are done
			}
			log.Warn("housekeeping: the pod is still there after its worker finished; finishing it again", "deletionTimestamp", pod.DeletionTimestamp)
			a.mu.Lock()
			delete(a.finished, pod.UID)
			a.mu.Unlock()
		case pod.DeletionTimestamp == nil && now.Sub(pod.CreationTimestamp.Time) < housekeepingPeriod:
			// Probably on its way through the watch; the next pass looks again.
			continue
		default:
			a.mu.Lock()
			w := a.workers[pod.UID]
			a.mu.Unlock()
			if w != nil {
				continue // the watch delivered it since the snapshot
			}
			log.Warn("housekeeping: the watch missed the pod; starting its worker", "deletionTimestamp", pod.DeletionTimestamp)
		}
		a.podChanged(ctx, pod)
	}
	for uid, w := range before {
		if !listed[uid] {
			pod, gone := w.current()
			if !gone {
				a.log.Warn("housekeeping: the pod is gone from the API but the watch did not say; tearing it down",
					"pod", pod.Namespace+"/"+pod.Name, "uid", uid)
				w.markGone()
			}
		}
	}
	return nil
}
