package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// Result is what a deploy left in the cloud.
type Result struct {
	LoadBalancerID string
	VIP            netip.Addr
	// TargetGroups maps each model target group's name to its cloud ID.
	TargetGroups map[string]string
	// Registered and Deregistered count the targets this pass changed.
	Registered, Deregistered int
	// Created is true when this pass created the load balancer.
	Created bool
	// State and StateReason are the load balancer's state as the cloud last showed it
	// (providers.LB*): the resources exist, but only an active one forwards traffic.
	State, StateReason string
}

// Deploy makes the cloud match lb: it observes the Service's resources, plans, and applies the
// plan. token distinguishes one intent from another (the Service's generation, say): client tokens
// derive from it and each resource's name, so a create repeated after a lost answer is answered,
// not repeated, while a later intent never replays an old answer.
//
// When the cloud refuses a new static address (providers.ErrAddressUnusable), the load balancer
// it was to replace serves on: Deploy then makes that one match lb, its address aside (targets,
// health checks, listeners, source ranges), and returns its result with the refusal, so that a
// rollout behind a Service waiting for its address is not left on gone pods.
func Deploy(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer, token string) (Result, error) {
	obs, err := Observe(ctx, p, lb)
	if err != nil {
		return Result{TargetGroups: map[string]string{}}, err
	}
	pl := PlanDeploy(lb, obs, token)
	res, err := Apply(ctx, p, pl)
	if err == nil || pl.LoadBalancer != nil || !errors.Is(err, providers.ErrAddressUnusable) {
		return res, err
	}
	held := *lb
	held.Address = netip.Addr{}
	now, oerr := Observe(ctx, p, &held) // the failed pass may have deleted some
	if oerr != nil {
		return res, errors.Join(err, oerr)
	}
	if keptService(now.LoadBalancers, &held) < 0 {
		return res, err
	}
	hres, herr := Apply(ctx, p, PlanDeploy(&held, now, token))
	return hres, errors.Join(err, herr)
}

// ownerTags find every resource of the Service, whatever its incarnation (UID).
func ownerTags(o model.Owner) map[string]string {
	return map[string]string{model.TagCluster: o.Cluster, model.TagService: o.Key()}
}

func clientToken(token, name string) string {
	sum := sha256.Sum256([]byte(token + "\x00" + name))
	return hex.EncodeToString(sum[:16])
}

func healthCheck(hc model.HealthCheck) providers.HealthCheck {
	return providers.HealthCheck{
		Protocol: hc.Protocol, Port: hc.Port, Path: hc.Path,
		Interval: time.Duration(hc.IntervalSeconds) * time.Second, Timeout: time.Duration(hc.TimeoutSeconds) * time.Second,
		HealthyThreshold: hc.HealthyThresholdCount, UnhealthyThreshold: hc.UnhealthyThresholdCount,
	}
}

// Delete removes every load balancer and target group carrying all of tags (ownership tags of
// one Service, or of one incarnation of it): load balancers first, which frees their groups.
// It reports whether anything was there.
func Delete(ctx context.Context, p providers.LoadBalancing, tags map[string]string) (bool, error) {
	lbs, err := p.ListLoadBalancers(ctx, tags)
	if err != nil {
		return false, fmt.Errorf("list load balancers to delete: %w", err)
	}
	for _, lb := range lbs {
		if err := p.DeleteLoadBalancer(ctx, lb.ID); err != nil {
			return true, fmt.Errorf("delete load balancer %s: %w", lb.ID, err)
		}
	}
	tgs, err := p.ListTargetGroups(ctx, tags)
	if err != nil {
		return len(lbs) > 0, fmt.Errorf("list target groups to delete: %w", err)
	}
	for _, tg := range tgs {
		if err := p.DeleteTargetGroup(ctx, tg.ID); err != nil {
			return true, fmt.Errorf("delete target group %s: %w", tg.ID, err)
		}
	}
	return len(lbs)+len(tgs) > 0, nil
}
