package k8stest

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// k8sVersion is the release make k8s-bins builds (hack/k8s-bins/go.mod); it names the default
// cache directory.
const k8sVersion = "v1.37.1"

// BinDir returns where the etcd and kube-apiserver binaries are expected: KUBEBUILDER_ASSETS
// (envtest's own variable), else FLATNET_K8S_BIN_DIR (what the Makefile exports), else the
// default cache, $HOME/.cache/flatnet/k8s/<version>/bin.
func BinDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	if d := os.Getenv("FLATNET_K8S_BIN_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "flatnet", "k8s", k8sVersion, "bin")
}

// Start starts etcd and kube-apiserver for the test and returns an administrator's config. They
// are stopped when the test ends. A missing binary fails the test saying how to build it. The
// CustomResourceDefinitions in crdDirs (YAML files) are installed and established first.
func Start(t testing.TB, crdDirs ...string) *rest.Config {
	t.Helper()
	dir := BinDir()
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("k8stest: %s is not in %s: run make k8s-bins (or point KUBEBUILDER_ASSETS or FLATNET_K8S_BIN_DIR at a directory holding etcd and kube-apiserver)", bin, dir)
		}
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir, CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		// Start may leave a half-started etcd behind; Stop removes what there is.
		_ = env.Stop()
		t.Fatalf("k8stest: start etcd and kube-apiserver from %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("k8stest: stop the API server: %v", err)
		}
	})
	return cfg
}
