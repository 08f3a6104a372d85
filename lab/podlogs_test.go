package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodLogs: kubectl logs reaches a container's output through the API server, which calls the
// node agent's log API (its kubelet stand-in) at the Node's InternalIP and published port, over
// TLS both ways; the API refuses a client without the API server's certificate.
func TestPodLogs(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := testConfig(t, "flg-", 7492)
	cfg.Nodes = 1
	cfg.Kubernetes = true
	cfg.K8sBinDir = k8sBinDir(t)
	cfg.APIServerListen = freeAddr(t, 6448)
	l, kc := upKubeLab(ctx, t, cfg, logLabOnFailure(t))
	node, err := kc.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := node.Status.DaemonEndpoints.KubeletEndpoint.Port; p != 10250 {
		t.Errorf("node-1 publishes kubelet port %d, want 10250", p)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "logger", Namespace: "default", Labels: map[string]string{"app": "logger"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "flatnet.io/generic",
			Command: []string{"/bin/sh", "-c", `echo hello from stdout; echo hello from stderr >&2; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done`},
		}}},
	}
	if _, err := kc.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitPodsReady(ctx, kc, "default", "app=logger", 1, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) (string, error) {
		out, err := l.Kubectl(ctx, args...)
		return string(out), err
	}
	var all string
	if err := poll(ctx, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		all, err = kubectl("logs", "logger")
		return err == nil && strings.Contains(all, "tick 2\n"), fmt.Sprintf("%q, %v", all, err)
	}); err != nil {
		t.Fatalf("kubectl logs logger: %v", err)
	}
	for _, want := range []string{"hello from stdout\n", "hello from stderr\n", "tick 1\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("kubectl logs logger: no %q in %q", want, firstLines(all, 4))
		}
	}
	if out, err := kubectl("logs", "logger", "--tail=1"); err != nil || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "tick ") {
		t.Errorf("kubectl logs --tail=1: %q, %v", out, err)
	}
	if out, err := kubectl("logs", "logger", "--timestamps", "--tail=1"); err != nil {
		t.Errorf("kubectl logs --timestamps: %v", err)
	} else if ts, _, _ := strings.Cut(out, " "); !validTime(ts) {
		t.Errorf("kubectl logs --timestamps: %q starts with no RFC 3339 time", out)
	}
	if out, err := kubectl("logs", "logger", "--since-time", time.Now().Add(time.Hour).Format(time.RFC3339)); err != nil || out != "" {
		t.Errorf("kubectl logs --since-time in an hour: %q, %v; want nothing", out, err)
	}
	if out, err := kubectl("logs", "logger", "--limit-bytes=5"); err != nil || len(out) != 5 {
		t.Errorf("kubectl logs --limit-bytes=5: %q, %v", out, err)
	}
	if _, err := kubectl("logs", "logger", "--previous"); err == nil || !strings.Contains(err.Error(), "previous terminated container") {
		t.Errorf("kubectl logs --previous of a container never restarted: %v, want the agent's error", err)
	}

	// Without the API server's client certificate the agent's API refuses the connection.
	n := l.State().Nodes[0]
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     Dialer(n.Netns, nil),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the check is the server's
	}}
	resp, err := hc.Get("https://" + net.JoinHostPort(n.PrimaryIP, "10250") + "/containerLogs/default/logger/main")
	if err == nil {
		resp.Body.Close()
		t.Errorf("the log API answered %s to a client without a certificate", resp.Status)
	}
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
