package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// TestHousekeepingCatchesWhatTheWatchMissed: the agent's watch delivered nothing (as a watch
// left stale by API server and agent restarts), yet housekeeping finishes the deletion of a pod
// deleted unseen and of one whose worker finished while the pod stayed, hands a running worker
// its pod's deletion, tears down a worker whose pod is gone, and leaves a pod created a moment
// ago, and other nodes' pods, to the watch.
func TestHousekeepingCatchesWhatTheWatchMissed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	old := metav1.NewTime(time.Now().Add(-time.Minute))
	pod := func(name, node string, created metav1.Time, deleted bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), CreationTimestamp: created},
			Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: ptr.To[int64](5),
				Containers: []corev1.Container{{Name: "main", Image: "flatnet.io/echo"}}},
		}
		if deleted {
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &old, ptr.To[int64](5)
		}
		return p
	}
	unseen := pod("unseen", "node-1", old, true)         // deleted while the watch was stale
	leftover := pod("leftover", "node-1", old, true)     // its worker finished; the pod stayed
	running := pod("running", "node-1", old, false)      // its worker has it running
	fresh := pod("fresh", "node-1", metav1.Now(), false) // just created: the watch's
	elsewhere := pod("elsewhere", "node-2", old, true)   // another node's
	gone := pod("gone", "node-1", old, false)            // deleted from the API, unseen
	kube := fake.NewClientset(unseen, leftover, running, fresh, elsewhere)
	a := &Agent{
		cfg: Config{NodeName: "node-1"}, log: slog.New(slog.DiscardHandler), kube: kube, recorder: &record.FakeRecorder{},
		workers: map[types.UID]*podWorker{}, finished: map[types.UID]bool{leftover.UID: true}, adopted: map[types.UID]*sandboxRecord{},
	}
	defer func() {
		cancel()
		a.wg.Wait()
	}()
	// Workers the watch started earlier, not running here: housekeeping only hands them news.
	runningW, goneW := newPodWorker(a, running, nil), newPodWorker(a, gone, nil)
	a.workers[running.UID], a.workers[gone.UID] = runningW, goneW
	// The API server's copy of the running pod is being deleted; the worker's is not.
	deleting := running.DeepCopy()
	deleting.DeletionTimestamp = &old
	if _, err := kube.CoreV1().Pods("default").Update(ctx, deleting, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := a.housekeep(ctx); err != nil {
		t.Fatal(err)
	}

	for _, p := range []*corev1.Pod{unseen, leftover} {
		eventually(t, 10*time.Second, p.Name+" deleted by the agent", func() error {
			_, err := kube.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (err: %w)", err)
		})
	}
	if p, _ := runningW.current(); p.DeletionTimestamp == nil {
		t.Error("the running pod's worker was not told of its deletion")
	}
	if _, isGone := goneW.current(); !isGone {
		t.Error("the worker of the pod gone from the API was not told")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.workers[fresh.UID] != nil {
		t.Error("housekeeping started a worker for a pod created a moment ago (the watch's to report)")
	}
	if a.workers[elsewhere.UID] != nil || a.finished[elsewhere.UID] {
		t.Error("housekeeping took another node's pod")
	}
	if _, err := kube.CoreV1().Pods("default").Get(ctx, elsewhere.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("another node's pod: %v", err)
	}
}

// An older version of the pod (housekeeping can be ahead of the watch) never takes a worker's
// pod back from being deleted.
func TestWorkerKeepsDeletion(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "u"}}
	w := newPodWorker(&Agent{}, p, nil)
	del := p.DeepCopy()
	del.DeletionTimestamp = ptr.To(metav1.Now())
	w.update(del)
	w.update(p)
	if cur, _ := w.current(); cur.DeletionTimestamp == nil {
		t.Error("an older version without the deletion timestamp replaced the deleting one")
	}
}
