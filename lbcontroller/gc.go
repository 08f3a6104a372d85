package lbcontroller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/model"
)

// collector removes the cloud resources of this cluster whose Service is gone, or was re-created
// (another UID), or is no longer ours and holds no finalizer: what a controller killed at the
// wrong moment, or a finalizer removed by hand, leaves behind.
type collector struct {
	// reader reads the API server directly: a cache that lags must never make a live Service
	// look gone.
	reader client.Reader
	cfg    Config
	log    logr.Logger
}

// Start runs a collection at once, then every GCInterval, until ctx ends.
func (c *collector) Start(ctx context.Context) error {
	t := time.NewTicker(c.cfg.GCInterval)
	defer t.Stop()
	for {
		n, err := c.collect(ctx)
		if err != nil {
			c.log.Error(err, "garbage collection failed; retrying at the next interval")
		} else if n > 0 {
			c.log.Info("garbage collection removed orphaned load balancers", "owners", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection makes only the leader collect.
func (c *collector) NeedLeaderElection() bool { return true }

type incarnation struct {
	service types.NamespacedName
	uid     string
}

// collect deletes orphans and returns how many owners it cleaned.
func (c *collector) collect(ctx context.Context) (int, error) {
	defer reconciles.WithLabelValues("gc", "ok").Inc()
	tags := map[string]string{model.TagCluster: c.cfg.Cluster}
	lbs, err := c.cfg.Provider.ListLoadBalancers(ctx, tags)
	if err != nil {
		return 0, fmt.Errorf("list this cluster's load balancers: %w", err)
	}
	tgs, err := c.cfg.Provider.ListTargetGroups(ctx, tags)
	if err != nil {
		return 0, fmt.Errorf("list this cluster's target groups: %w", err)
	}
	// Only a Service's resources are this collector's: a Gateway's carry the cluster tag too,
	// but no Service tag.
	owners := map[incarnation]bool{}
	for _, lb := range lbs {
		if lb.Tags[model.TagService] != "" {
			owners[ownerOf(lb.Tags)] = true
		}
	}
	for _, tg := range tgs {
		if tg.Tags[model.TagService] != "" {
			owners[ownerOf(tg.Tags)] = true
		}
	}
	n := 0
	for o := range owners {
		orphan, err := c.orphan(ctx, o)
		if err != nil {
			return n, err
		}
		if !orphan {
			continue
		}
		if _, err := deploy.Delete(ctx, c.cfg.Provider, map[string]string{
			model.TagCluster: c.cfg.Cluster, model.TagService: o.service.String(), model.TagServiceUID: o.uid,
		}); err != nil {
			return n, fmt.Errorf("delete the orphaned load balancer of %s (uid %s): %w", o.service, o.uid, err)
		}
		c.log.Info("deleted an orphaned load balancer", "service", o.service, "uid", o.uid)
		gcDeleted.Inc()
		n++
	}
	return n, nil
}

func ownerOf(tags map[string]string) incarnation {
	ns, name, _ := strings.Cut(tags[model.TagService], "/")
	return incarnation{service: types.NamespacedName{Namespace: ns, Name: name}, uid: tags[model.TagServiceUID]}
}

func (c *collector) orphan(ctx context.Context, o incarnation) (bool, error) {
	var svc corev1.Service
	err := c.reader.Get(ctx, o.service, &svc)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read Service %s: %w", o.service, err)
	}
	if string(svc.UID) != o.uid {
		return true, nil
	}
	// A Service of ours, or one holding our finalizer, is the Service reconciler's business.
	return !ours(&svc, c.cfg.DefaultClass) && !controllerutil.ContainsFinalizer(&svc, Finalizer), nil
}
