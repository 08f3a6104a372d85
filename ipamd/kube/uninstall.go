package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DaemonSetRef names the DaemonSet that runs this ipamd ("<namespace>/<name>").
type DaemonSetRef struct{ Namespace, Name string }

// ParseDaemonSetRef parses "<namespace>/<name>".
func ParseDaemonSetRef(s string) (DaemonSetRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return DaemonSetRef{}, fmt.Errorf("--daemonset %q: want <namespace>/<name> of the DaemonSet that runs ipamd", s)
	}
	return DaemonSetRef{Namespace: ns, Name: name}, nil
}

// RestConfig is the configuration New uses: the kubeconfig's, or the pod's service account
// when kubeconfig is empty (ipamd run by the chart's DaemonSet).
func RestConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a pod with a service account: %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}

// Uninstalling reports whether the DaemonSet that runs ipamd is gone or being deleted: the
// release is being uninstalled, not rolled, so ipamd is stopping for good and takes its CNI
// configuration with it. A rolling update keeps the DaemonSet, so ipamd keeps the conflist
// and the node stays Ready while the new pod starts. It reads the object's metadata only, with
// a plain GET: ipamd links no clientset (see coreScheme).
func Uninstalling(ctx context.Context, rc *rest.Config, ds DaemonSetRef) (bool, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return false, err
	}
	u := strings.TrimSuffix(rc.Host, "/") + "/apis/apps/v1/namespaces/" + ds.Namespace + "/daemonsets/" + ds.Name
	if !strings.Contains(rc.Host, "://") {
		u = "https://" + strings.TrimPrefix(u, "/")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("read DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		return true, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("read DaemonSet %s/%s: %s", ds.Namespace, ds.Name, resp.Status)
	}
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil {
		return false, fmt.Errorf("read DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	if obj.Metadata.Name == "" {
		return false, errors.New("read DaemonSet: the answer has no metadata")
	}
	return obj.Metadata.DeletionTimestamp != nil, nil
}

// DeleteDaemonSet deletes the DaemonSet that runs ipamd in the foreground and waits until it is
// gone, which is once its pods are: the chart's pre-delete hook, run while the release's RBAC
// still exists. Each ipamd stopping then reads its DaemonSet as being deleted (Uninstalling)
// and removes the node's CNI configuration; without the hook Helm would delete the RBAC with
// the DaemonSet and ipamd could not tell an uninstall from a restart.
func DeleteDaemonSet(ctx context.Context, rc *rest.Config, ds DaemonSetRef, poll func()) error {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	u := strings.TrimSuffix(rc.Host, "/") + "/apis/apps/v1/namespaces/" + ds.Namespace + "/daemonsets/" + ds.Name
	body := strings.NewReader(`{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("delete DaemonSet %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusNotFound:
	default:
		return fmt.Errorf("delete DaemonSet %s/%s: %s", ds.Namespace, ds.Name, resp.Status)
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("DaemonSet %s/%s is still there (its pods have not all stopped): %w", ds.Namespace, ds.Name, ctx.Err())
		}
		poll()
	}
}
