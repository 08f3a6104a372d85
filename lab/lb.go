package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The load-balancer controller of the lab's cluster.
const (
	// LBControllerBinary is cmd/flatnet-lbcontroller.
	LBControllerBinary = "flatnet-lbcontroller"
	// LBClusterName tags the cloud resources the lab's controller owns.
	LBClusterName = "flatnet-lab"
	// LBClass is the loadBalancerClass the controller serves.
	LBClass = "flatnet.io/nlb"
	// lbControllerLease is the Lease the chart's controller replicas elect a leader with.
	lbControllerLease = LBControllerDeployment
)

// StopLBController scales the chart's controller to zero and waits until its pods are gone: no
// replica acts until StartLBController.
func (l *Lab) StopLBController(ctx context.Context) error {
	return l.scaleLBController(ctx, 0)
}

// StartLBController scales the controller back to its two replicas and waits for a leader.
func (l *Lab) StartLBController(ctx context.Context) error {
	if err := l.scaleLBController(ctx, 2); err != nil {
		return err
	}
	return l.WaitLBControllerLeader(ctx, 2*time.Minute)
}

func (l *Lab) scaleLBController(ctx context.Context, replicas int32) error {
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	dep, err := kc.AppsV1().Deployments(ReleaseNamespace).Patch(ctx, LBControllerDeployment, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("scale the load-balancer controller to %d: %w", replicas, err)
	}
	sel := metav1.FormatLabelSelector(dep.Spec.Selector)
	return poll(ctx, 2*time.Minute, 200*time.Millisecond, func() (bool, string) {
		pods, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range pods.Items {
			if PodReady(&pods.Items[i]) {
				ready++
			}
		}
		if replicas == 0 {
			return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
		}
		return ready >= int(replicas), fmt.Sprintf("%d of %d ready", ready, replicas)
	})
}

// LBControllerLog returns the end of the controller's log: of the two most recently written
// container logs (the chart runs two replicas, and the standby's holds little but its lease
// attempts), the newest first.
func (l *Lab) LBControllerLog(lines int) string {
	// The node agents keep each container's log as <sandbox>_<container>.log.
	type logFile struct {
		path string
		at   time.Time
	}
	var logs []logFile
	for _, n := range l.State().Nodes {
		paths, _ := filepath.Glob(filepath.Join(n.NodeAgentDir(), "logs", "*_lbcontroller.log"))
		for _, f := range paths {
			if fi, err := os.Stat(f); err == nil {
				logs = append(logs, logFile{f, fi.ModTime()})
			}
		}
	}
	if len(logs) == 0 {
		return "(no controller log found)"
	}
	slices.SortFunc(logs, func(a, b logFile) int { return b.at.Compare(a.at) })
	var out []string
	for _, f := range logs[:min(len(logs), 2)] {
		out = append(out, f.path+":\n"+fileTail(f.path, lines))
	}
	return strings.Join(out, "\n")
}
