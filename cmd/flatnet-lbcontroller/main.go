// Command flatnet-lbcontroller gives Services of type LoadBalancer (class flatnet.io/nlb) a cloud
// load balancer whose targets are pod IPs: flags -> lbcontroller.RunOptions -> Run.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/lbcontroller"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/all"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flatnet-lbcontroller:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var (
		o                   lbcontroller.RunOptions
		kubeconfig, cloud   string
		endpoint, tokenFile string
		subnetID, level     string
		region              string
		qps                 float32
		burst               int
	)
	cmd := &cobra.Command{
		Use:           "flatnet-lbcontroller",
		Short:         "Cloud load balancers straight to pod IPs for Services of type LoadBalancer (docs/lbcontroller.md)",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (empty: the in-cluster service account)")
	f.StringVar(&o.Config.Cluster, "cluster-name", "", "this cluster's name in the cloud resources' ownership tags (required)")
	f.BoolVar(&o.Config.DefaultClass, "default-class", false, "also serve LoadBalancer Services with no spec.loadBalancerClass")
	f.StringVar(&o.Config.GatewayAPI, "gateway-api", lbcontroller.GatewayAPIAuto, `serve GatewayClasses of controllerName flatnet.io/gateway-controller: "auto" (once the Gateway API CRDs are installed) or "off"`)
	f.StringVar(&o.Config.DefaultScheme, "default-scheme", model.DefaultScheme, "scheme of a Service's load balancer when its annotation "+model.AnnotationScheme+" does not say: internal or internet-facing")
	f.DurationVar(&o.Config.GCInterval, "gc-interval", time.Minute, "how often to delete load balancers of this cluster whose Service is gone")
	f.DurationVar(&o.Config.Resync, "resync-period", 5*time.Minute, "how often each load balancer is compared with the cloud though nothing changed, repairing what was changed out of band")
	f.StringVar(&cloud, "cloud", "fakecloud", "the cloud driver: "+strings.Join(all.Registry().Names(), ", "))
	cloudFlags(f, &endpoint, &tokenFile)
	f.StringVar(&region, "region", "", "the cloud region (empty: the cloud's default)")
	f.StringVar(&subnetID, "subnet-id", "", "subnet the load balancers are created in (required)")
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "elect one active replica through a Lease")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease: the controller's own (default $POD_NAMESPACE)")
	f.StringVar(&o.LeaderElectionID, "leader-election-id", lbcontroller.Component, "name of the Lease")
	// Loopback by default: the chart binds the pod's IP, which Prometheus and the kubelet reach.
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", "127.0.0.1:61680", `Prometheus /metrics address ("0" turns it off)`)
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", "127.0.0.1:61681", "/healthz and /readyz address")
	f.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "", "directory holding tls.crt and tls.key of the readiness-gate webhook (empty: no webhook)")
	f.IntVar(&o.WebhookPort, "webhook-port", 9443, "port of the readiness-gate webhook")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	kubeAPIFlags(f, &qps, &burst)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
		if o.Config.Cluster == "" {
			return errors.New("--cluster-name is required: it scopes the ownership tags of the cloud resources")
		}
		if subnetID == "" {
			return errors.New("--subnet-id is required: load balancers are created in it")
		}
		if o.LeaderElection && o.LeaderElectionNamespace == "" {
			return errors.New("--leader-election-namespace (or $POD_NAMESPACE) is required with --leader-elect")
		}
		if qps <= 0 || burst <= 0 {
			return fmt.Errorf("--kube-api-qps (%v) and --kube-api-burst (%d) must be positive", qps, burst)
		}
		p, err := all.Registry().LoadBalancing(cmd.Context(), cloud, providers.Settings{
			Endpoint: endpoint, Region: region, Credentials: credentials(tokenFile), SubnetID: subnetID,
			Observe: lbcontroller.ObserveCloudCall,
		})
		if err != nil {
			return err
		}
		o.Config.Provider = p
		if o.Rest, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		o.Rest.QPS, o.Rest.Burst = qps, burst
		return lbcontroller.Run(cmd.Context(), o)
	}
	cmd.Version = flatnet.Version
	cmd.AddCommand(newUninstall())
	return cmd
}

// newUninstall is the chart's pre-delete hook: stop the controller, delete the cluster's load
// balancers, release the Services (lbcontroller.Uninstall).
func newUninstall() *cobra.Command {
	var (
		o                   lbcontroller.UninstallOptions
		kubeconfig, cloud   string
		endpoint, tokenFile string
		subnetID, dep       string
		region              string
	)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop the controller's Deployment, delete every load balancer of the cluster, release the Services (the chart's pre-delete hook)",
		Args:  cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (empty: the in-cluster service account)")
	f.StringVar(&o.Cluster, "cluster-name", "", "the cluster whose load balancers are deleted (required)")
	f.StringVar(&dep, "deployment", "", "<namespace>/<name> of the controller's Deployment, scaled to 0 first (empty: none runs)")
	f.DurationVar(&o.StopTimeout, "stop-timeout", 2*time.Minute, "how long to wait for the controller's pods to stop")
	f.StringVar(&cloud, "cloud", "fakecloud", "the cloud driver: "+strings.Join(all.Registry().Names(), ", "))
	cloudFlags(f, &endpoint, &tokenFile)
	f.StringVar(&region, "region", "", "the cloud region (empty: the cloud's default)")
	f.StringVar(&subnetID, "subnet-id", "", "the controller's subnet (required by the driver)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
		if o.Cluster == "" {
			return errors.New("--cluster-name is required: it selects the load balancers to delete")
		}
		if dep != "" {
			ns, name, ok := strings.Cut(dep, "/")
			if !ok || ns == "" || name == "" {
				return fmt.Errorf("--deployment %q: want <namespace>/<name>", dep)
			}
			o.Deployment = types.NamespacedName{Namespace: ns, Name: name}
		}
		if subnetID == "" {
			return errors.New("--subnet-id is required")
		}
		var err error
		if o.Provider, err = all.Registry().LoadBalancing(cmd.Context(), cloud, providers.Settings{
			Endpoint: endpoint, Region: region, Credentials: credentials(tokenFile), SubnetID: subnetID,
		}); err != nil {
			return err
		}
		if o.Rest, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		sum, err := lbcontroller.Uninstall(cmd.Context(), o)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "uninstalled: controller stopped (%d replicas before), cloud resources deleted: %v, Services released: %d %v\n",
			sum.StoppedReplicas, sum.DeletedResources, len(sum.ReleasedServices), sum.ReleasedServices)
		return nil
	}
	return cmd
}

// cloudFlags registers where the cloud is and its credentials, under the names ipamd uses too.
// The token is a file or $FAKECLOUD_TOKEN: never an argument, which every user of the machine can
// read in /proc/<pid>/cmdline. The old fakecloud-prefixed names fail, naming their replacement.
func cloudFlags(f *pflag.FlagSet, endpoint, tokenFile *string) {
	f.StringVar(endpoint, "cloud-endpoint", os.Getenv("FAKECLOUD_ENDPOINT"), "the cloud API's URL (default $FAKECLOUD_ENDPOINT); for fakecloud required")
	f.StringVar(tokenFile, "cloud-token-file", "", "file holding the cloud token (fakecloud: a load-balancer token from `fakecloud token create-lb`); default $FAKECLOUD_TOKEN")
	removedFlag(f, "fakecloud-endpoint", "it is --cloud-endpoint, as in flatnet-ipamd")
	removedFlag(f, "fakecloud-token-file", "it is --cloud-token-file, as in flatnet-ipamd")
	removedFlag(f, "fakecloud-token", "a token on the command line is visible to every user in /proc/<pid>/cmdline: use --cloud-token-file or $FAKECLOUD_TOKEN")
	removedFlag(f, "cloud-token", "a token on the command line is visible to every user in /proc/<pid>/cmdline: use --cloud-token-file or $FAKECLOUD_TOKEN")
}

// removedFlag registers a hidden flag that is gone: giving it fails, saying why.
func removedFlag(f *pflag.FlagSet, name, why string) {
	f.Var(removed{name, why}, name, "removed: "+why)
	_ = f.MarkHidden(name)
}

// removed is the value of a removed flag: setting it is the error.
type removed struct{ name, why string }

func (r removed) String() string   { return "" }
func (r removed) Type() string     { return "string" }
func (r removed) Set(string) error { return fmt.Errorf("--%s is removed: %s", r.name, r.why) }

// credentials are where the driver finds its credentials: the token file, else
// $FAKECLOUD_TOKEN (fakecloud's account token); with neither, the cloud's default chain.
func credentials(file string) providers.Credentials {
	if file != "" {
		return providers.Credentials{File: file}
	}
	return providers.Credentials{Token: os.Getenv("FAKECLOUD_TOKEN")}
}

// kubeAPIFlags are the client-side rate limit of the API server client. client-go's default
// (5 requests/s, bursts of 10) held a Gateway pass's status writes about 200 ms each once a
// burst was spent: a Gateway pass writes the status of every route whose status changed.
func kubeAPIFlags(f *pflag.FlagSet, qps *float32, burst *int) {
	f.Float32Var(qps, "kube-api-qps", 50, "requests per second to the API server (client-side limit)")
	f.IntVar(burst, "kube-api-burst", 100, "requests to the API server in a burst above --kube-api-qps")
}
