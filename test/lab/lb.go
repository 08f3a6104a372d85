package lab

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"time"

	"github.com/flatnet/flatnet/fakecloud/fabric"
)

// The load-balancer controller of the lab's cluster.
const (
	// LBControllerBinary is cmd/flatnet-lbcontroller.
	LBControllerBinary = "flatnet-lbcontroller"
	// LBClusterName tags the cloud resources the lab's controller owns.
	LBClusterName = "flatnet-lab"
	// LBClass is the loadBalancerClass the controller serves.
	LBClass = "flatnet.io/nlb"
	// lbControllerUser is the controller's identity; lbControllerGroup gets its role.
	lbControllerUser  = "flatnet-lbcontroller"
	lbControllerGroup = "flatnet:lbcontroller"
	lbControllerLease = "flatnet-lbcontroller"
)

// lbRBAC is what the controller may do: read Services, EndpointSlices and Pods; write Service
// status and finalizers, pod status conditions (readiness gates) and events; hold its lease.
const lbRBAC = `{"apiVersion": "v1", "kind": "List", "items": [
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
 "metadata": {"name": "` + lbControllerGroup + `"},
 "rules": [
  {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch", "update", "patch"]},
  {"apiGroups": [""], "resources": ["services/status"], "verbs": ["get", "update", "patch"]},
  {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
  {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
  {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get", "update", "patch"]},
  {"apiGroups": [""], "resources": ["namespaces", "nodes"], "verbs": ["get", "list", "watch"]},
  {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
  {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch"]}]},
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
 "metadata": {"name": "` + lbControllerGroup + `"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "` + lbControllerGroup + `"},
 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "` + lbControllerGroup + `"}]}
]}`

func (cp ControlPlane) lbControllerKubeconfig() string {
	return filepath.Join(cp.Dir, "lbcontroller.kubeconfig")
}

// writeLBControllerCredentials issues the controller's client certificate and kubeconfig.
func (l *Lab) writeLBControllerCredentials(p *pki) error {
	cp := l.st.ControlPlane
	kp, err := p.issue("lbcontroller", &x509.Certificate{
		Subject:     pkix.Name{CommonName: lbControllerUser, Organization: []string{lbControllerGroup}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &p.ca)
	if err != nil {
		return err
	}
	return p.writeKubeconfig(cp.lbControllerKubeconfig(), cp.VPCServer(), lbControllerUser, kp)
}

// lbControllerArgs runs the controller inside the control plane's namespace: it reaches the API
// server at its VPC address and the cloud at the in-VPC endpoint, with the account's token.
func (l *Lab) lbControllerArgs() []string {
	cfg, cp := l.st.Config, l.st.ControlPlane
	return []string{filepath.Join(cfg.BinDir, LBControllerBinary),
		"--kubeconfig", cp.lbControllerKubeconfig(),
		"--cluster-name", LBClusterName,
		// The lab has no other load-balancer implementation: Services with no class are ours.
		"--default-class",
		"--subnet-id", l.st.SubnetID,
		"--fakecloud-endpoint", fabric.APIEndpoint(),
		"--fakecloud-token-file", filepath.Join(cfg.Dir, "admin-token"),
		"--leader-election-namespace", "kube-system",
		"--leader-election-id", lbControllerLease,
		"--metrics-bind-address", "127.0.0.1:61680",
		"--health-probe-bind-address", "127.0.0.1:61681",
	}
}

// startLBController starts the controller and waits until it holds its lease.
func (l *Lab) startLBController(ctx context.Context) error {
	cp := l.st.ControlPlane
	pid, err := startProcess(cp.Netns, cp.logPath(LBControllerBinary), nil, l.lbControllerArgs()...)
	if err != nil {
		return fmt.Errorf("start the load-balancer controller: %w", err)
	}
	cp.LBControllerPID = pid
	if err := l.save(); err != nil {
		return err
	}
	l.logf("%s: %s started (pid %d)", cp.Name, LBControllerBinary, pid)
	if l.pki == nil {
		// A restart (StartLBController): the killed controller's lease still names it until it
		// expires, so there is nothing to wait for here; callers wait for what they need.
		return nil
	}
	client, err := apiClient(l.pki, Dialer(cp.Netns, nil))
	if err != nil {
		return err
	}
	return waitLeaseOf(ctx, client, cp, lbControllerLease, time.Minute, proc{LBControllerBinary, pid})
}

// StopLBController kills the controller with SIGKILL, as a crash would.
func (l *Lab) StopLBController() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.ControlPlane == nil {
		return fmt.Errorf("the lab runs no Kubernetes control plane")
	}
	return killProcess(l.st.ControlPlane.LBControllerPID)
}

// StartLBController starts the controller again after StopLBController.
func (l *Lab) StartLBController(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st.ControlPlane == nil {
		return fmt.Errorf("the lab runs no Kubernetes control plane")
	}
	return l.startLBController(ctx)
}

// LBControllerLog returns the end of the controller's log.
func (l *Lab) LBControllerLog(lines int) string {
	cp, ok := l.ControlPlane()
	if !ok {
		return ""
	}
	return fileTail(cp.logPath(LBControllerBinary), lines)
}
