package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// LBControllerLog returns the end of the controller's log.
func (l *Lab) LBControllerLog(lines int) string {
	// The node agents keep each container's log as <sandbox>_<container>.log.
	var newest string
	var at time.Time
	for _, n := range l.State().Nodes {
		logs, _ := filepath.Glob(filepath.Join(n.NodeAgentDir(), "logs", "*_lbcontroller.log"))
		for _, f := range logs {
			if fi, err := os.Stat(f); err == nil && fi.ModTime().After(at) {
				newest, at = f, fi.ModTime()
			}
		}
	}
	if newest == "" {
		return "(no controller log found)"
	}
	return newest + ":\n" + fileTail(newest, lines)
}
