package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/flatnet/flatnet/internal/images"
	"github.com/flatnet/flatnet/internal/k8stest"
	"github.com/flatnet/flatnet/internal/netns"
)

// The test image: the reporter program (testdata/reporter) under the names the image build
// expects, so that the images are made by the same code that makes the chart's.
const testImage = "ghcr.io/flatnet-test/flatnet-lbcontroller:t1"

// binaryImage is the repository the test node maps to the reporter program (--image-binary).
const binaryImage = "registry.test/conformance/echo-basic"

// reportOf is what testdata/reporter writes.
type reportOf struct {
	UID, GID  int
	Wd        string
	Env       []string
	Files     map[string]string
	RootWrite string
	Args      []string
}

func (r reportOf) env(k string) string {
	for _, kv := range r.Env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return "<unset>"
}

// buildTestImage builds the reporter into an OCI layout with internal/images; it returns the
// layout and the reporter program.
func buildTestImage(t *testing.T) (layout, reporter string) {
	t.Helper()
	bins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bins, "reporter"), "./testdata/reporter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the reporter: %v\n%s", err, out)
	}
	for _, name := range []string{"flatnet-ipamd", "flatnet-cni", "flatnet-lbcontroller"} {
		if err := os.Link(filepath.Join(bins, "reporter"), filepath.Join(bins, name)); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	_, err := images.Build(context.Background(), images.Options{
		Registry: "ghcr.io/flatnet-test", Tag: "t1",
		Platforms: []images.Platform{{OS: "linux", Arch: runtime.GOARCH}},
		BinDir:    func(images.Platform) (string, error) { return bins, nil },
		Out:       out,
	})
	if err != nil {
		t.Fatalf("build the test image: %v", err)
	}
	return filepath.Join(out, "oci"), filepath.Join(bins, "reporter")
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRuntime runs pods the way the chart's are run: a node with a root directory of its own
// and an image layout; hostNetwork; init containers; hostPath, emptyDir, configMap, secret,
// downwardAPI and projected (service-account token) volumes; env from ConfigMaps, Secrets and
// the downward API with $(VAR) expansion; runAsUser and a read-only root; CNI plugins running
// under the node's root; and pods the agent refuses.
func TestRuntime(t *testing.T) {
	cfg := k8stest.Start(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, cfg, "r1", "10.244.3.0/24")
	n.root = filepath.Join(n.dir, "root")
	var reporter string
	n.layout, reporter = buildTestImage(t)
	n.binaries = []string{binaryImage + "=" + reporter}
	for _, p := range []string{"ptp", "host-local"} {
		copyFile(t, filepath.Join(binDir, p), filepath.Join(n.cniBinDir(), p))
	}
	if err := os.MkdirAll(n.confDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	n.writeConflist()
	n.startAgent()
	ctx := context.Background()
	for _, obj := range []func() error{
		func() error {
			_, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kube.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "conf"},
				Data: map[string]string{"greeting": "hello", "mode": "fast"}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kube.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
				Data: map[string][]byte{"token": []byte("s3cret")}}, metav1.CreateOptions{})
			return err
		},
	} {
		if err := obj(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("host network, init containers, volumes, env", func(t *testing.T) { testHostNetworkPod(t, kube, n) })
	t.Run("pod network under the node's root", func(t *testing.T) { testRootedPodNetwork(t, kube, n) })
	t.Run("image mapped to a program of the node", func(t *testing.T) { testImageBinary(t, kube, n) })
	t.Run("failing init container", func(t *testing.T) { testFailingInit(t, kube, n) })
	t.Run("unsupported volume", func(t *testing.T) { testUnsupported(t, kube, n) })
}

func readReport(t *testing.T, path string) reportOf {
	t.Helper()
	var r reportOf
	eventually(t, 60*time.Second, "report "+path, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &r)
	})
	return r
}

func testHostNetworkPod(t *testing.T, kube kubernetes.Interface, n *testNode) {
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hostnet", Namespace: "default", Labels: map[string]string{"app": "hostnet"}},
		Spec: corev1.PodSpec{
			NodeName: n.name, HostNetwork: true, ServiceAccountName: "app",
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)},
			InitContainers: []corev1.Container{{
				Name: "init", Image: testImage,
				Command:      []string{"/usr/bin/flatnet-lbcontroller"},
				Args:         []string{"/shared/init.json", "0"},
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}, {Name: "host", MountPath: "/host/out"}},
			}},
			Containers: []corev1.Container{{
				Name: "main", Image: testImage,
				// No command: the image's entrypoint, with args (Kubernetes' rule).
				Args: []string{"/host/out/main.json", "sleep", "/shared/init.json", "/etc/conf/greeting", "/etc/creds/token",
					"/etc/podinfo/labels", "/var/run/secrets/kubernetes.io/serviceaccount/token", "$(GREETING)-$(MISSING)-$$(GREETING)"},
				WorkingDir: "/work",
				Env: []corev1.EnvVar{
					{Name: "GREETING", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}, Key: "greeting"}}},
					{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "COMBINED", Value: "$(NODE)/$(GREETING)"},
				},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "shared", MountPath: "/shared"}, {Name: "host", MountPath: "/host/out"},
					{Name: "conf", MountPath: "/etc/conf", ReadOnly: true}, {Name: "creds", MountPath: "/etc/creds", ReadOnly: true},
					{Name: "podinfo", MountPath: "/etc/podinfo"},
					{Name: "sa", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/usr/bin/flatnet-lbcontroller", "/host/out/probe.json", "0"}}},
					PeriodSeconds: 1,
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/test-out", Type: &dirOrCreate}}},
				{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
				{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
				{Name: "sa", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3600)}}}}}},
			},
		},
	}
	createPod(t, kube, pod)
	// hostPath volumes are under the node's root, never the machine's.
	out := filepath.Join(n.root, "var/lib/test-out")
	main := readReport(t, filepath.Join(out, "main.json"))
	if _, err := os.Stat("/var/lib/test-out"); err == nil {
		t.Errorf("the hostPath volume was made on the machine's root, not the node's")
	}
	for path, want := range map[string]string{
		"/etc/conf/greeting": "hello", "/etc/creds/token": "s3cret", "/etc/podinfo/labels": `app="hostnet"`,
	} {
		if got := main.Files[path]; got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if init := main.Files["/shared/init.json"]; !strings.Contains(init, `"UID":0`) {
		t.Errorf("the init container's report did not reach the main container through the emptyDir: %q", init)
	}
	if tok := main.Files["/var/run/secrets/kubernetes.io/serviceaccount/token"]; strings.Count(tok, ".") != 2 {
		t.Errorf("service-account token is not a JWT: %q", tok)
	}
	for k, want := range map[string]string{
		"GREETING": "hello", "TOKEN": "s3cret", "NODE": n.name, "COMBINED": n.name + "/hello", "CM_mode": "fast",
		"KUBERNETES_SERVICE_HOST": "127.0.0.1", "HOSTNAME": n.name,
	} {
		if got := main.env(k); got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}
	if want := "hello-$(MISSING)-$(GREETING)"; !slices.Contains(main.Args, want) {
		t.Errorf("args %q: want the expanded %q", main.Args, want)
	}
	if main.Wd != "/work" || main.UID != 0 {
		t.Errorf("wd %q uid %d", main.Wd, main.UID)
	}
	p := waitPod(t, kube, "default", "hostnet", 60*time.Second, "Ready with the node's address", func(p *corev1.Pod) error {
		if err := podReady(p); err != nil {
			return err
		}
		if p.Status.PodIP != "10.0.0.5" {
			return fmt.Errorf("podIP %q, want the node's 10.0.0.5", p.Status.PodIP)
		}
		if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Terminated == nil ||
			p.Status.InitContainerStatuses[0].State.Terminated.Reason != "Completed" {
			return fmt.Errorf("init status %s", statusJSON(p))
		}
		return nil
	})
	if condition(p, corev1.PodInitialized) != corev1.ConditionTrue {
		t.Errorf("Initialized is not True: %s", statusJSON(p))
	}
	// The exec probe ran like the container: its root, mounts and environment.
	probe := readReport(t, filepath.Join(out, "probe.json"))
	if probe.env("GREETING") != "hello" {
		t.Errorf("exec probe env: %q", probe.Env)
	}
	// A host-network pod is in the node's namespace: no pod namespace was made for it.
	if names, _ := netns.List(n.podNetns); len(names) != 0 {
		t.Errorf("pod namespaces %v for a hostNetwork pod", names)
	}
	deletePod(t, kube, "hostnet", nil)
	waitGone(t, kube, "default", "hostnet", 60*time.Second)
	if ents, _ := os.ReadDir(filepath.Join(n.dir, "state", "containers")); len(ents) != 0 {
		t.Errorf("container roots left after the pod went: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(out, "main.json")); err != nil {
		t.Errorf("the hostPath volume's files went with the pod: %v", err)
	}
}

func testRootedPodNetwork(t *testing.T, kube kubernetes.Interface, n *testNode) {
	// The CNI plugins run with the node's root as /: host-local keeps its addresses under it.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "rooted", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: n.name, TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{
				Name: "main", Image: testImage, Args: []string{"/out/r.json", "sleep"},
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532), ReadOnlyRootFilesystem: ptr.To(true)},
				VolumeMounts:    []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
			}},
			Volumes: []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	pod = createPod(t, kube, pod)
	p := waitPod(t, kube, "default", "rooted", 60*time.Second, "running with an address", func(p *corev1.Pod) error {
		if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	if !slices.Contains(n.allocatedIPs(), p.Status.PodIP) {
		t.Errorf("host-local under the root holds %v, not the pod's %s", n.allocatedIPs(), p.Status.PodIP)
	}
	r := readReport(t, filepath.Join(n.dir, "state", "pods", string(pod.UID), "volumes", "out", "r.json"))
	if r.UID != 65532 || r.GID != 65532 {
		t.Errorf("runs as %d:%d, want 65532:65532", r.UID, r.GID)
	}
	if !strings.Contains(r.RootWrite, "read-only file system") {
		t.Errorf("writing to the read-only root: %q", r.RootWrite)
	}
	deletePod(t, kube, "rooted", nil)
	waitGone(t, kube, "default", "rooted", 60*time.Second)
	if ips := n.allocatedIPs(); slices.Contains(ips, p.Status.PodIP) {
		t.Errorf("address %s not released: %v", p.Status.PodIP, ips)
	}
}

func testFailingInit(t *testing.T, kube kubernetes.Interface, n *testNode) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "badinit", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: n.name, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "init", Image: testImage, Args: []string{"/tmp/x.json", "3"}}},
			Containers:     []corev1.Container{{Name: "main", Image: testImage, Args: []string{"/tmp/y.json", "sleep"}}},
		},
	}
	createPod(t, kube, pod)
	waitPod(t, kube, "default", "badinit", 60*time.Second, "Failed by its init container", func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Running != nil || cs[0].RestartCount != 0 {
			return errors.New("the main container ran after a failed init container: " + statusJSON(p))
		}
		if is := p.Status.InitContainerStatuses; len(is) != 1 || is[0].State.Terminated == nil || is[0].State.Terminated.ExitCode != 3 {
			return fmt.Errorf("init status %s", statusJSON(p))
		}
		return nil
	})
	deletePod(t, kube, "badinit", ptr.To[int64](0))
	waitGone(t, kube, "default", "badinit", 60*time.Second)
}

func testUnsupported(t *testing.T, kube kubernetes.Interface, n *testNode) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nfs", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:   n.name,
			Containers: []corev1.Container{{Name: "main", Image: testImage, VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.example", Path: "/x"}}}},
		},
	}
	pod = createPod(t, kube, pod)
	waitPod(t, kube, "default", "nfs", 30*time.Second, "refused with the reason", func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != "CreateContainerConfigError" ||
			!strings.Contains(cs[0].State.Waiting.Message, "volume data") || p.Status.PodIP != "" {
			return fmt.Errorf("status %s", statusJSON(p))
		}
		return nil
	})
	eventually(t, 10*time.Second, "Unsupported event", func() error { return hasEvent(kube, pod, "Unsupported", "volume data") })
	deletePod(t, kube, "nfs", ptr.To[int64](0))
	waitGone(t, kube, "default", "nfs", 60*time.Second)
}

// testImageBinary runs a pod the way the Gateway API conformance suite's backends are run: an
// image the node maps to a program (every tag of it), fieldRef env, secret and configMap
// volumes with items, an exec readiness probe run in the container's root.
func testImageBinary(t *testing.T, kube kubernetes.Interface, n *testNode) {
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "binimage", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName: n.name, TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{
				Name: "main", Image: binaryImage + ":v1.5.1",
				Args: []string{"/out/main.json", "sleep", "/etc/secret-volume/tok", "/etc/secret-volume/token", "/etc/cm/greet"},
				Env:  []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), fieldEnv("NAMESPACE", "metadata.namespace"), {Name: "TLS_SERVER_CERT", Value: "/etc/secret-volume/tok"}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "out", MountPath: "/out"}, {Name: "secret-volume", MountPath: "/etc/secret-volume"}, {Name: "cm", MountPath: "/etc/cm"},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/reporter", "/out/probe.json", "0", "/etc/cm/greet"}}},
					PeriodSeconds: 1,
				},
			}, {
				Name: "other-tag", Image: binaryImage + "@sha256:0123",
				Args:         []string{"/out/other.json", "sleep"},
				VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "out", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "secret-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
					SecretName: "creds", Items: []corev1.KeyToPath{{Key: "token", Path: "tok"}}}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}, Items: []corev1.KeyToPath{{Key: "greeting", Path: "greet"}}}}},
			},
		},
	}
	pod = createPod(t, kube, pod)
	waitPod(t, kube, "default", "binimage", 60*time.Second, "Ready", podReady)
	out := filepath.Join(n.dir, "state", "pods", string(pod.UID), "volumes", "out")
	r := readReport(t, filepath.Join(out, "main.json"))
	if len(r.Args) == 0 || r.Args[0] != "/reporter" {
		t.Errorf("argv %q: want the mapped program as /reporter (its name on the node), then the pod's args", r.Args)
	}
	for k, want := range map[string]string{"POD_NAME": "binimage", "NAMESPACE": "default", "TLS_SERVER_CERT": "/etc/secret-volume/tok"} {
		if got := r.env(k); got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}
	wantFiles := map[string]string{
		"/etc/secret-volume/tok": "s3cret", "/etc/cm/greet": "hello",
		// Only the listed items are in the volume.
		"/etc/secret-volume/token": "error: open /etc/secret-volume/token: no such file or directory",
	}
	if diff := cmp.Diff(wantFiles, r.Files); diff != "" {
		t.Errorf("files the program read (-want +got):\n%s", diff)
	}
	if r.RootWrite != "ok" {
		t.Errorf("the container cannot write its own root: %s", r.RootWrite)
	}
	if probe := readReport(t, filepath.Join(out, "probe.json")); probe.Files["/etc/cm/greet"] != "hello" {
		t.Errorf("the exec probe did not run in the container's root: %+v", probe.Files)
	}
	if other := readReport(t, filepath.Join(out, "other.json")); len(other.Args) == 0 || other.Args[0] != "/reporter" {
		t.Errorf("a digest of the mapped repository ran %q", other.Args)
	}
	deletePod(t, kube, "binimage", nil)
	waitGone(t, kube, "default", "binimage", 60*time.Second)
}
