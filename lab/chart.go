package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/charts"
	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric"
	"github.com/flatnet/flatnet/internal/images"
)

// The lab installs flatnet the way a user does: its Helm chart (charts/flatnet, embedded in
// this binary), through the Helm SDK, against the lab's API server. The chart's images are
// built from the lab's binaries into an OCI layout that the node agents run.
const (
	// ReleaseName and ReleaseNamespace are the lab's Helm release.
	ReleaseName      = "flatnet"
	ReleaseNamespace = "flatnet-system"
	// CloudSecret holds the controller's cloud credentials (the chart's existingSecret).
	CloudSecret = "flatnet-cloud"
	// IpamdDaemonSet and LBControllerDeployment are the chart's workloads for this release.
	IpamdDaemonSet         = ReleaseName + "-ipamd"
	LBControllerDeployment = ReleaseName + "-lbcontroller"
	// LabHostNetworkPods is the chart's ipamd.hostNetworkPods in the lab: ipamd's own pod is
	// each node's only host-network pod, so a node's pods capacity is its addresses plus one.
	LabHostNetworkPods = 1
	// ImageRegistry is the registry the lab's images are named in (the chart's default).
	ImageRegistry = "ghcr.io/flatnet"
)

// imageLayout is the OCI layout the node agents run the chart's images from.
func (l *Lab) imageLayout() string { return filepath.Join(l.st.Config.Dir, "images", "oci") }

// buildImages builds the chart's images for this machine's platform from the lab's binaries,
// tagged tag, into the lab's layout (which may hold several tags: an upgrade adds one).
func (l *Lab) buildImages(ctx context.Context, binDir, tag string) error {
	start := time.Now()
	_, err := images.Build(ctx, images.Options{
		Registry:  ImageRegistry,
		Tag:       tag,
		Platforms: []images.Platform{{OS: "linux", Arch: runtime.GOARCH}},
		BinDir:    func(images.Platform) (string, error) { return binDir, nil },
		Out:       filepath.Dir(l.imageLayout()),
		// The images never leave this machine: their layers are not compressed, which was
		// most of a build's time (26 s of each lab of the race-built tests).
		Stored: true,
	})
	if err != nil {
		return fmt.Errorf("build the chart's images from %s: %w", binDir, err)
	}
	l.logf("images %s built from %s in %s", strings.Join(images.Names(ImageRegistry, tag), ", "), binDir, time.Since(start).Round(time.Millisecond))
	return nil
}

// loadChart reads the embedded chart.
func loadChart() (*chartv2.Chart, error) {
	var files []*archive.BufferedFile
	err := fs.WalkDir(charts.Flatnet(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(charts.Flatnet(), p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: p, Data: b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the embedded chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load the embedded chart: %w", err)
	}
	return ch, nil
}

// helm is a Helm SDK configuration for the lab's API server and release namespace.
func (l *Lab) helm() (*action.Configuration, error) {
	cp, ok := l.ControlPlane()
	if !ok {
		return nil, errors.New("the lab runs no Kubernetes control plane")
	}
	flags := genericclioptions.NewConfigFlags(false)
	kc, ns := cp.Kubeconfig, ReleaseNamespace
	flags.KubeConfig, flags.Namespace = &kc, &ns
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.NewTextHandler(l.st.Config.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := cfg.Init(flags, ReleaseNamespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	return cfg, nil
}

// ChartValues are the values the lab installs the chart with: its cluster, subnet and cloud
// endpoint, images of tag, and its ipamd flags.
func (l *Lab) ChartValues(tag string) map[string]any {
	cfg := l.st.Config
	// The chart takes each extra flag as one "--name=value" entry.
	ipamdArgs := []any{}
	for i := 0; i < len(cfg.IpamdArgs); i++ {
		a := cfg.IpamdArgs[i]
		if strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && i+1 < len(cfg.IpamdArgs) && !strings.HasPrefix(cfg.IpamdArgs[i+1], "-") {
			a += "=" + cfg.IpamdArgs[i+1]
			i++
		}
		ipamdArgs = append(ipamdArgs, a)
	}
	mode := "ip"
	if cfg.PrefixMode {
		mode = "prefix"
	}
	cloud := map[string]any{
		"provider":  "fakecloud",
		"subnetID":  l.st.SubnetID,
		"fakecloud": map[string]any{"endpoint": fabric.APIEndpoint()},
		"credentials": map[string]any{
			"existingSecret": CloudSecret,
		},
	}
	if cfg.Cloud == CloudAWSAPI {
		// The AWS driver against fakecloud's EC2/ELBv2 endpoint: ipamd signs with its node's
		// instance role (the metadata service), lbcontroller with the Secret's keys.
		cloud["provider"] = "aws"
		cloud["aws"] = map[string]any{"region": AWSRegion, "endpoint": fabric.APIEndpoint()}
	}
	// The lab has no other load-balancer implementation: Services with no class are ours.
	lbc := map[string]any{"defaultClass": true}
	if cfg.LBControllerLogLevel != "" {
		lbc["logLevel"] = cfg.LBControllerLogLevel
	}
	return map[string]any{
		"cluster": map[string]any{"name": LBClusterName},
		"image":   map[string]any{"registry": ImageRegistry, "tag": tag},
		"cloud":   cloud,
		"ipamd": map[string]any{
			"mode":      mode,
			"extraArgs": ipamdArgs,
			// The lab's only host-network pod on a node is ipamd's own.
			"hostNetworkPods": LabHostNetworkPods,
			// Inside each node namespace the metrics stay on the node's loopback, where the
			// lab's tests read them.
			"metrics": map[string]any{"bindAddress": "127.0.0.1"},
		},
		"lbcontroller": lbc,
	}
}

// installChart installs the chart: the release namespace and the cloud Secret first (a user
// creates the Secret; the token is never a value), then the release, waiting for its
// workloads.
func (l *Lab) installChart(ctx context.Context) error {
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ReleaseNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ReleaseNamespace, err)
	}
	// lbcontroller gets a load-balancer token, never the admin's: it may drive load balancers
	// and nothing else (no instances, interfaces, faults or instance tokens).
	lbt, err := l.cloud.CreateLoadBalancerToken(ctx, &api.CreateLoadBalancerTokenRequest{Description: "lbcontroller of the lab"})
	if err != nil {
		return fmt.Errorf("create lbcontroller's load-balancer token: %w", err)
	}
	tok := lbt.LoadBalancerToken
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: CloudSecret, Namespace: ReleaseNamespace},
		StringData: map[string]string{"token": tok.Token},
	}
	if l.st.Config.Cloud == CloudAWSAPI {
		sec.StringData["AWS_ACCESS_KEY_ID"], sec.StringData["AWS_SECRET_ACCESS_KEY"] = tok.AccessKeyID, tok.SecretAccessKey
	}
	if _, err := kc.CoreV1().Secrets(ReleaseNamespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create the cloud Secret: %w", err)
		}
		// The Secret of an earlier install holds its own token: this one is not needed.
		if _, err := l.cloud.DeleteLoadBalancerToken(ctx, &api.DeleteLoadBalancerTokenRequest{TokenID: tok.TokenID}); err != nil {
			return fmt.Errorf("revoke the unused load-balancer token %s: %w", tok.TokenID, err)
		}
	}
	ch, err := loadChart()
	if err != nil {
		return err
	}
	cfg, err := l.helm()
	if err != nil {
		return err
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = ReleaseName, ReleaseNamespace
	in.WaitStrategy, in.Timeout = kube.StatusWatcherStrategy, 4*time.Minute
	start := time.Now()
	if _, err := in.RunWithContext(ctx, ch, l.ChartValues(flatnet.Version)); err != nil {
		return fmt.Errorf("helm install %s: %w%s", ReleaseName, err, l.chartHint(ctx))
	}
	l.logf("helm install %s (chart %s) done in %s", ReleaseName, ch.Metadata.Version, time.Since(start).Round(time.Millisecond))
	return nil
}

// UpgradeChart upgrades the release to images of tag built from binDir (a new build), with
// the lab's values, and waits for the rollout: ipamd node by node, the controller replica by
// replica.
func (l *Lab) UpgradeChart(ctx context.Context, binDir, tag string) error {
	if err := l.buildImages(ctx, binDir, tag); err != nil {
		return err
	}
	ch, err := loadChart()
	if err != nil {
		return err
	}
	cfg, err := l.helm()
	if err != nil {
		return err
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = ReleaseNamespace
	up.WaitStrategy, up.Timeout = kube.StatusWatcherStrategy, 6*time.Minute
	start := time.Now()
	if _, err := up.RunWithContext(ctx, ReleaseName, ch, l.ChartValues(tag)); err != nil {
		return fmt.Errorf("helm upgrade %s: %w%s", ReleaseName, err, l.chartHint(ctx))
	}
	l.logf("helm upgrade %s to %s done in %s", ReleaseName, tag, time.Since(start).Round(time.Millisecond))
	return nil
}

// UninstallChart uninstalls the release (its pre-delete hook included) and waits until its
// objects are gone.
func (l *Lab) UninstallChart(ctx context.Context) error {
	cfg, err := l.helm()
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.WaitStrategy, un.Timeout = kube.StatusWatcherStrategy, 4*time.Minute
	if _, err := un.Run(ReleaseName); err != nil {
		return fmt.Errorf("helm uninstall %s: %w%s", ReleaseName, err, l.chartHint(ctx))
	}
	return nil
}

// chartHint says what the release's pods are doing, for an error.
func (l *Lab) chartHint(ctx context.Context) string {
	kc, err := l.Kube()
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pods, err := kc.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) == 0 {
		return "; the release has no pods"
	}
	var b strings.Builder
	b.WriteString("; its pods:")
	for i := range pods.Items {
		b.WriteString(" [" + PodSummary(&pods.Items[i]) + "]")
	}
	return b.String()
}

// ipamdPID finds the node's ipamd: the flatnet-ipamd process whose root is one of the node
// agent's container roots.
func ipamdPID(n Node) int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	prefix := filepath.Join(n.NodeAgentDir(), "containers") + "/"
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join("/proc", p.Name(), "exe"))
		if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "flatnet-ipamd" {
			continue
		}
		root, err := os.Readlink(filepath.Join("/proc", p.Name(), "root"))
		if err != nil || !strings.HasPrefix(root+"/", prefix) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p.Name(), "%d", &pid); err == nil {
			return pid
		}
	}
	return 0
}
