package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

const (
	// leaseRenewPeriod is how often the node's lease is renewed, as the kubelet does.
	leaseRenewPeriod = 10 * time.Second
	// nodeStatusPeriod is how often the Ready condition is re-evaluated; it is patched when it
	// changes and at least every nodeHeartbeatPeriod.
	nodeStatusPeriod    = 2 * time.Second
	nodeHeartbeatPeriod = time.Minute

	reasonNetworkNotReady = "NetworkPluginNotReady"
	agentVersion          = "flatnet-node-agent"
)

// registerNode creates the Node, or takes over the existing one of that name. Only the fields the
// agent owns are written; the status goes through the status subresource as a strategic-merge
// patch, so ipamd's condition and pods capacity survive.
func (a *Agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: a.nodeLabels()},
		Spec:       corev1.NodeSpec{ProviderID: a.cfg.ProviderID},
	}
	nodes := a.kube.CoreV1().Nodes()
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	switch {
	case err == nil:
		a.nodeUID = created.UID
	case apierrors.IsAlreadyExists(err):
		patch, _ := json.Marshal(map[string]any{
			"metadata": map[string]any{"labels": a.nodeLabels()},
			"spec":     map[string]any{"providerID": a.cfg.ProviderID},
		})
		got, perr := nodes.Patch(ctx, a.cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if perr != nil {
			return fmt.Errorf("update Node %s (its providerID cannot change once set: delete the Node if the instance changed): %w", a.cfg.NodeName, perr)
		}
		a.nodeUID = got.UID
	default:
		return fmt.Errorf("create Node %s: %w", a.cfg.NodeName, err)
	}
	if err := a.patchNodeStatus(ctx, a.networkReady(ctx)); err != nil {
		return err
	}
	return a.bootstrapPods(ctx)
}

// bootstrapPods is the pods capacity a Node gets before ipamd publishes its own: without one
// the scheduler places nothing on the node, not even the network plugin's DaemonSet pod
// (host network, no address) that runs ipamd. A capacity already there (ipamd's, or
// --max-pods) is left alone.
const bootstrapPods = 110

func (a *Agent) bootstrapPods(ctx context.Context) error {
	if a.cfg.MaxPods > 0 {
		return nil
	}
	node, err := a.kube.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read Node %s: %w", a.cfg.NodeName, err)
	}
	if _, ok := node.Status.Capacity[corev1.ResourcePods]; ok {
		return nil
	}
	q := *resource.NewQuantity(bootstrapPods, resource.DecimalSI)
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    corev1.ResourceList{corev1.ResourcePods: q},
		"allocatable": corev1.ResourceList{corev1.ResourcePods: q},
	}})
	if _, err := a.kube.CoreV1().Nodes().PatchStatus(ctx, a.cfg.NodeName, patch); err != nil {
		return fmt.Errorf("patch the bootstrap pods capacity of Node %s: %w", a.cfg.NodeName, err)
	}
	return nil
}

func (a *Agent) nodeLabels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:   a.cfg.NodeName,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
}

// networkReady is the state of the node's network: nil when a conflist exists and the plugin
// answers STATUS successfully.
func (a *Agent) networkReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return a.net.status(ctx)
}

// readyCondition is the node's Ready condition for the network's state.
func readyCondition(netErr error, now metav1.Time) corev1.NodeCondition {
	c := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		Message: "flatnet-node-agent is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
	}
	if netErr != nil {
		c.Status, c.Reason = corev1.ConditionFalse, reasonNetworkNotReady
		c.Message = "container runtime network not ready: " + netErr.Error()
	}
	return c
}

// nodeStatusPatch is the strategic-merge patch of the fields the agent owns on the Node's status.
func (a *Agent) nodeStatusPatch(netErr error, now metav1.Time, transition bool) ([]byte, error) {
	res := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse(a.cfg.CPU),
		corev1.ResourceMemory:           resource.MustParse(a.cfg.Memory),
		corev1.ResourceEphemeralStorage: resource.MustParse(a.cfg.EphemeralStorage),
	}
	if a.cfg.MaxPods > 0 {
		res[corev1.ResourcePods] = *resource.NewQuantity(int64(a.cfg.MaxPods), resource.DecimalSI)
	}
	cond := readyCondition(netErr, now)
	condPatch := map[string]any{
		"type": cond.Type, "status": cond.Status, "reason": cond.Reason, "message": cond.Message,
		"lastHeartbeatTime": cond.LastHeartbeatTime,
	}
	if transition {
		condPatch["lastTransitionTime"] = cond.LastTransitionTime
	}
	status := map[string]any{
		"addresses": []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		"capacity":    res,
		"allocatable": res,
		"conditions":  []any{condPatch},
		// The log API's port (logserver.go); the API server reaches it at the InternalIP.
		"daemonEndpoints": a.daemonEndpoints(),
		"nodeInfo": map[string]any{
			"kubeletVersion":          agentVersion,
			"containerRuntimeVersion": "flatnet://" + agentVersion,
			"operatingSystem":         runtime.GOOS,
			"architecture":            runtime.GOARCH,
			"bootID":                  a.bootID,
		},
	}
	return json.Marshal(map[string]any{"status": status})
}

func (a *Agent) daemonEndpoints() corev1.NodeDaemonEndpoints {
	var d corev1.NodeDaemonEndpoints
	if a.cfg.TLSCertFile != "" {
		d.KubeletEndpoint.Port = int32(a.cfg.KubeletPort)
	}
	return d
}

// patchNodeStatus writes the agent's part of the Node's status.
func (a *Agent) patchNodeStatus(ctx context.Context, netErr error) error {
	ready := netErr == nil
	transition := a.lastReady == nil || *a.lastReady != ready
	patch, err := a.nodeStatusPatch(netErr, metav1.Now(), transition)
	if err != nil {
		return err
	}
	if _, err := a.kube.CoreV1().Nodes().PatchStatus(ctx, a.cfg.NodeName, patch); err != nil {
		return fmt.Errorf("patch the status of Node %s: %w", a.cfg.NodeName, err)
	}
	a.lastReady, a.lastHeartbeat = &ready, time.Now()
	if transition {
		a.log.Info("node readiness", "ready", ready, "reason", netErr)
	}
	return nil
}

// nodeStatusLoop re-evaluates the network's readiness and patches the Node when it changes, and
// as a heartbeat.
func (a *Agent) nodeStatusLoop(ctx context.Context) {
	t := time.NewTicker(nodeStatusPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		netErr := a.networkReady(ctx)
		ready := netErr == nil
		if a.lastReady != nil && *a.lastReady == ready && time.Since(a.lastHeartbeat) < nodeHeartbeatPeriod {
			continue
		}
		if err := a.patchNodeStatus(ctx, netErr); err != nil && ctx.Err() == nil {
			a.log.Error("node status", "err", err)
		}
	}
}

// leaseLoop keeps the node's Lease in kube-node-lease renewed.
func (a *Agent) leaseLoop(ctx context.Context) {
	for {
		if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("node lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(leaseRenewPeriod):
		}
	}
}

func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.kube.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(a.cfg.NodeName),
		LeaseDurationSeconds: ptr.To(int32(a.cfg.LeaseDuration / time.Second)),
		RenewTime:            &now,
	}
	l, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: a.cfg.NodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.cfg.NodeName, UID: a.nodeUID}},
			},
			Spec: spec,
		}
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
	}
	l.Spec = spec
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew Lease %s/%s: %w", corev1.NamespaceNodeLease, a.cfg.NodeName, err)
	}
	return nil
}
