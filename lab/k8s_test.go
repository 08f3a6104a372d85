package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// k8sBinDir is where make k8s-bins put the control plane's binaries. A missing directory fails
// the test rather than skipping it: the control plane is part of what make test checks.
func k8sBinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(K8sBinDirEnv)
	if dir == "" {
		t.Fatalf("%s is not set: run make k8s-bins, then the tests through make test (the Makefile exports it), or set it to the directory make k8s-bins prints", K8sBinDirEnv)
	}
	for _, b := range k8sBinaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s not found in %s=%s: run make k8s-bins (%v)", b, K8sBinDirEnv, dir, err)
		}
	}
	return dir
}

// pinnedK8sVersion reads the Kubernetes version make k8s-bins builds from the wrapper module.
func pinnedK8sVersion(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "hack", "k8s-bins", "go.mod")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("read the pinned Kubernetes version: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "k8s.io/kubernetes" && strings.HasPrefix(fields[1], "v") {
			return fields[1]
		}
	}
	t.Fatalf("no k8s.io/kubernetes requirement in %s", path)
	return ""
}

// TestControlPlane brings a one-node lab up with its Kubernetes control plane, uses it through
// kubectl on the host (loopback port-forward) and from a node (the VPC address), and checks that
// down leaves nothing behind.
func TestControlPlane(t *testing.T) {
	guardRootNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := testConfig(t, "flk-", 7483)
	cfg.Nodes = 1
	cfg.Kubernetes = true
	cfg.K8sBinDir = k8sBinDir(t)
	cfg.APIServerListen = freeAddr(t, 6443)
	want := pinnedK8sVersion(t)

	start := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			logControlPlane(t, l)
			_ = Down(cfg.Dir, cfg.Prefix, testWriter{t})
		}
	})
	t.Logf("lab with control plane up in %s", time.Since(start).Round(time.Millisecond))
	cp, ok := l.ControlPlane()
	if !ok {
		t.Fatal("the lab records no control plane")
	}
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := l.Kubectl(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}

	var v struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
		ServerVersion struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(kubectl("version", "-o", "json")), &v); err != nil {
		t.Fatalf("kubectl version -o json: %v", err)
	}
	if v.ClientVersion.GitVersion != want || v.ServerVersion.GitVersion != want {
		t.Errorf("kubectl version: client %q, server %q; want both %q", v.ClientVersion.GitVersion, v.ServerVersion.GitVersion, want)
	}
	if got := kubectl("get", "--raw", "/readyz"); got != "ok" {
		t.Errorf("/readyz through the port-forward = %q, want ok", got)
	}

	kubectl("create", "namespace", "lab-test")
	kubectl("-n", "lab-test", "create", "configmap", "hello", "--from-literal=greeting=hi from the lab")
	if got := kubectl("get", "namespace", "lab-test", "-o", "jsonpath={.status.phase}"); got != "Active" {
		t.Errorf("namespace lab-test phase = %q, want Active", got)
	}
	if got := kubectl("-n", "lab-test", "get", "configmap", "hello", "-o", "jsonpath={.data.greeting}"); got != "hi from the lab" {
		t.Errorf("configmap hello greeting = %q, want %q", got, "hi from the lab")
	}

	holders := map[string]string{}
	for _, line := range strings.Split(kubectl("-n", "kube-system", "get", "lease", "-o",
		`jsonpath={range .items[*]}{.metadata.name}={.spec.holderIdentity}{"\n"}{end}`), "\n") {
		name, holder, _ := strings.Cut(line, "=")
		holders[name] = holder
	}
	for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
		if holders[lease] == "" {
			t.Errorf("lease kube-system/%s has no holder; leases: %v", lease, holders)
		}
	}

	// From a node, as node agents will: the API server's VPC address with the in-VPC kubeconfig.
	node := l.State().Nodes[0]
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.K8sBinDir, "kubectl"), "--kubeconfig", cp.VPCKubeconfig, "get", "--raw", "/readyz")
	var out []byte
	if err := inNetns(node.Netns, func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	}); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("kubectl from %s to %s: %v: %s", node.Name, cp.VPCServer(), err, out)
	}

	logControlPlane(t, l)
	if err := Down(cfg.Dir, cfg.Prefix, testWriter{t}); err != nil {
		t.Fatalf("down: %v", err)
	}
	downed = true
	if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
		t.Errorf("down left behind:\n%s", strings.Join(left, "\n"))
	}
}

// logControlPlane logs the end of every control-plane log (shown with -v or on failure): down
// removes them with the lab's directory.
func logControlPlane(t *testing.T, l *Lab) {
	cp, ok := l.ControlPlane()
	if !ok {
		return
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "port-forward"} {
		t.Logf("%s.log, last lines:\n%s", name, fileTail(cp.logPath(name), 15))
	}
}

// TestControlPlaneFailsClearly runs a kube-apiserver that exits at once: up must fail saying
// which process exited, with the end of its log (the failed up removes the directory), and
// leave nothing behind.
func TestControlPlaneFailsClearly(t *testing.T) {
	guardRootNet(t)
	built := k8sBinDir(t)
	bins := t.TempDir()
	for _, b := range k8sBinaries {
		if err := os.Symlink(filepath.Join(built, b), filepath.Join(bins, b)); err != nil {
			t.Fatal(err)
		}
	}
	broken := "#!/bin/sh\necho 'E0000 apiserver: refusing to start for the test' >&2\nexit 1\n"
	if err := os.Remove(filepath.Join(bins, "kube-apiserver")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bins, "kube-apiserver"), []byte(broken), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := testConfig(t, "flf-", 7484)
	cfg.Nodes = 1
	cfg.Kubernetes = true
	cfg.K8sBinDir = bins
	cfg.APIServerListen = freeAddr(t, 6444)
	_, err := Up(ctx, cfg)
	if err == nil {
		_ = Down(cfg.Dir, cfg.Prefix, testWriter{t})
		t.Fatal("up succeeded with a kube-apiserver that exits at once")
	}
	t.Logf("up failed as it should: %v", err)
	for _, want := range []string{"kube-apiserver (pid", "exited", "kube-apiserver.log ends: E0000 apiserver: refusing to start for the test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("up's error does not say %q:\n%v", want, err)
		}
	}
	if left := leftovers(t, cfg.Prefix, cfg.Dir); len(left) > 0 {
		t.Errorf("a failed up left behind:\n%s", strings.Join(left, "\n"))
	}
}
