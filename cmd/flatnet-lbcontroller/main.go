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
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/lbcontroller"
	fcprovider "github.com/flatnet/flatnet/lbcontroller/provider/fakeclouddriver"
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
	f.DurationVar(&o.Config.GCInterval, "gc-interval", time.Minute, "how often to delete load balancers of this cluster whose Service is gone")
	f.StringVar(&cloud, "cloud", fcprovider.Name, "the cloud driver (fakecloud)")
	f.StringVar(&endpoint, "fakecloud-endpoint", os.Getenv("FAKECLOUD_ENDPOINT"), "fakecloud API URL (default $FAKECLOUD_ENDPOINT)")
	f.StringVar(&tokenFile, "fakecloud-token-file", "", "file holding fakecloud's account (admin) token; default $FAKECLOUD_TOKEN")
	f.StringVar(&subnetID, "subnet-id", "", "subnet the load balancers are created in (required)")
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "elect one active replica through a Lease")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the Lease: the controller's own (default $POD_NAMESPACE)")
	f.StringVar(&o.LeaderElectionID, "leader-election-id", lbcontroller.Component, "name of the Lease")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", ":61680", `Prometheus /metrics address ("0" turns it off)`)
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":61681", "/healthz and /readyz address")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
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
		if cloud != fcprovider.Name {
			return fmt.Errorf("--cloud %q is not a driver this binary carries: use %s", cloud, fcprovider.Name)
		}
		if o.LeaderElection && o.LeaderElectionNamespace == "" {
			return errors.New("--leader-election-namespace (or $POD_NAMESPACE) is required with --leader-elect")
		}
		token, err := readToken(tokenFile)
		if err != nil {
			return err
		}
		if endpoint == "" {
			return errors.New("--fakecloud-endpoint (or $FAKECLOUD_ENDPOINT) is required")
		}
		rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		o.Rest = rest
		p, err := fcprovider.New(cmd.Context(), fcprovider.Config{
			Client: client.New(endpoint, token), SubnetID: subnetID, OnCall: lbcontroller.ObserveCloudCall,
		})
		if err != nil {
			return err
		}
		o.Config.Provider = p
		return lbcontroller.Run(cmd.Context(), o)
	}
	return cmd
}

func readToken(file string) (string, error) {
	if file == "" {
		if t := os.Getenv("FAKECLOUD_TOKEN"); t != "" {
			return t, nil
		}
		return "", errors.New("--fakecloud-token-file (or $FAKECLOUD_TOKEN) is required: load balancers need the account's token")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--fakecloud-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
