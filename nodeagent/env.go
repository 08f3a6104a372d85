package nodeagent

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// envList is an environment in order, with the last definition of a name winning, as the
// kubelet builds it.
type envList struct {
	names []string
	vals  map[string]string
}

func (e *envList) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *envList) get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// expand replaces $(NAME) in s with the variable's value when it is defined, leaves it as it is
// when not, and turns $$ into $: Kubernetes' rules for command, args and env values.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// containerEnv builds a container's environment: the base (PATH, HOSTNAME, the API server's
// address as KUBERNETES_SERVICE_HOST/PORT), then envFrom in order, then env, each value
// expanded against what came before.
func (w *podWorker) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, base []string) (*envList, error) {
	env := &envList{}
	for _, kv := range base {
		k, v, _ := strings.Cut(kv, "=")
		env.set(k, v)
	}
	env.set("HOSTNAME", pod.Name)
	if pod.Spec.HostNetwork {
		env.set("HOSTNAME", w.a.cfg.NodeName)
	}
	if h, p := w.a.apiHost, w.a.apiPort; h != "" {
		env.set("KUBERNETES_SERVICE_HOST", h)
		env.set("KUBERNETES_SERVICE_PORT", p)
		env.set("KUBERNETES_SERVICE_PORT_HTTPS", p)
		env.set("KUBERNETES_PORT", "tcp://"+net.JoinHostPort(h, p))
	}
	for _, from := range c.EnvFrom {
		data, err := w.envSource(ctx, pod.Namespace, from)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			env.set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		v, err := w.envValue(ctx, pod, e)
		if err != nil {
			return nil, err
		}
		if e.ValueFrom == nil {
			v = expand(v, env.get)
		}
		env.set(e.Name, v)
	}
	return env, nil
}

func (w *podWorker) envSource(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := w.a.kube.CoreV1().ConfigMaps(ns).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(from.ConfigMapRef.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom configMap %s: %w", from.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := w.a.kube.CoreV1().Secrets(ns).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(from.SecretRef.Optional, false) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("envFrom entry with neither configMapRef nor secretRef")
}

// envValue resolves one env entry: a literal, a field of the pod (the downward API), or a key
// of a ConfigMap or Secret.
func (w *podWorker) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	vf := e.ValueFrom
	if vf == nil {
		return e.Value, nil
	}
	switch {
	case vf.FieldRef != nil:
		return w.fieldValue(pod, e.Name, vf.FieldRef.FieldPath)
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		cm, err := w.a.kube.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(r.Optional, false) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("env %s: configMap %s: %w", e.Name, r.Name, err)
		}
		v, ok := cm.Data[r.Key]
		if !ok && !ptr.Deref(r.Optional, false) {
			return "", fmt.Errorf("env %s: configMap %s has no key %q", e.Name, r.Name, r.Key)
		}
		return v, nil
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		s, err := w.a.kube.CoreV1().Secrets(pod.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ptr.Deref(r.Optional, false) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("env %s: secret %s: %w", e.Name, r.Name, err)
		}
		v, ok := s.Data[r.Key]
		if !ok && !ptr.Deref(r.Optional, false) {
			return "", fmt.Errorf("env %s: secret %s has no key %q", e.Name, r.Name, r.Key)
		}
		return string(v), nil
	}
	return "", fmt.Errorf("env %s: resourceFieldRef and fileKeyRef are not supported by the node agent (it runs no cgroups): use value, fieldRef, configMapKeyRef or secretKeyRef", e.Name)
}

func (w *podWorker) fieldValue(pod *corev1.Pod, name, path string) (string, error) {
	podIPs := w.ips
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		if len(podIPs) > 0 {
			return podIPs[0], nil
		}
		return "", nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "status.hostIP", "status.hostIPs":
		return w.a.cfg.NodeIP, nil
	}
	for _, m := range []struct {
		prefix string
		vals   map[string]string
	}{{"metadata.labels['", pod.Labels}, {"metadata.annotations['", pod.Annotations}} {
		if k, ok := strings.CutPrefix(path, m.prefix); ok && strings.HasSuffix(k, "']") {
			return m.vals[strings.TrimSuffix(k, "']")], nil
		}
	}
	return "", fmt.Errorf("env %s: fieldRef %q is not supported by the node agent (metadata.name, namespace, uid, labels['k'], annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP(s), status.hostIP(s))", name, path)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
