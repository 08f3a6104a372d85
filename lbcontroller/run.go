package lbcontroller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flatnet/flatnet/internal/httpserve"
)

// RunOptions are what the flatnet-lbcontroller binary decides beyond Config.
type RunOptions struct {
	Config Config
	Rest   *rest.Config
	// LeaderElection elects one active replica through a Lease named LeaderElectionID in
	// LeaderElectionNamespace (the controller's own namespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	// MetricsAddr serves Prometheus /metrics ("0" turns it off); ProbeAddr /healthz and /readyz.
	MetricsAddr string
	ProbeAddr   string
	// WebhookCertDir holds tls.crt and tls.key of the readiness-gate webhook, served on
	// WebhookPort; empty: no webhook.
	WebhookCertDir string
	WebhookPort    int
	Logger         *slog.Logger
}

// CacheOptions are the manager's cache's. The Gateway controller reads TLS Secrets only: the
// cache holds no other kind of Secret. No object keeps its managed fields, which nothing here
// reads: they were most of an HTTPRoute's size in the cache, and the garbage collector's
// marking of the heap (1,000 routes and their Services, slices and pods) is what slowed the
// passes it overlapped. (An update without managed fields keeps the server's.)
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))},
		},
	}
}

// Run runs the controllers until ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	log := logr.FromSlogHandler(o.Logger.Handler())
	ctrl.SetLogger(log)
	lease := 15 * time.Second
	servers, err := probeServers(o, httpserve.Default)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(o.Rest, ctrl.Options{
		Logger: log,
		// The metrics and probe servers are probeServers', with every timeout set.
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		Cache:                   CacheOptions(),
		LeaderElection:          o.LeaderElection,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaderElectionID:        o.LeaderElectionID,
		LeaseDuration:           &lease,
		// A replica that steps down exits at once, so it never acts on a stale view.
		LeaderElectionReleaseOnCancel: true,
		WebhookServer:                 newWebhookServer(o.WebhookPort, o.WebhookCertDir, httpserve.Default),
	})
	if err != nil {
		for _, s := range servers {
			_ = s.Listener.Close()
		}
		return fmt.Errorf("lbcontroller: create the controller manager: %w", err)
	}
	for _, s := range servers {
		if err := mgr.Add(s); err != nil {
			return err
		}
	}
	if err := Setup(mgr, o.Config); err != nil {
		return err
	}
	if o.WebhookCertDir != "" {
		if err := SetupWebhook(mgr, o.Config); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
