package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
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

// Deploy makes the cloud match lb. token distinguishes one intent from another (the Service's
// generation, say): client tokens derive from it and each resource's name, so a create repeated
// after a lost answer is answered, not repeated, while a later intent never replays an old answer.
func Deploy(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer, token string) (Result, error) {
	res := Result{TargetGroups: map[string]string{}}
	owner := ownerTags(lb.Owner)
	lbs, err := p.ListLoadBalancers(ctx, owner)
	if err != nil {
		return res, fmt.Errorf("list the load balancers of %s: %w", lb.Owner.Key(), err)
	}
	tgs, err := p.ListTargetGroups(ctx, owner)
	if err != nil {
		return res, fmt.Errorf("list the target groups of %s: %w", lb.Owner.Key(), err)
	}

	// Load balancers of another name (a scheme change, an earlier incarnation of the Service)
	// go first: their listeners hold target groups that the desired one may need.
	var cur *providers.LoadBalancer
	for i := range lbs {
		if lbs[i].Name == lb.Name && lbs[i].Tags[model.TagServiceUID] == lb.Owner.UID {
			cur = &lbs[i]
			continue
		}
		if err := p.DeleteLoadBalancer(ctx, lbs[i].ID); err != nil {
			return res, fmt.Errorf("delete load balancer %s (replaced by %s): %w", lbs[i].ID, lb.Name, err)
		}
	}
	if cur == nil {
		created, err := p.CreateLoadBalancer(ctx, providers.LoadBalancerSpec{
			Name: lb.Name, Internal: lb.Scheme == model.SchemeInternal, Tags: lb.Tags, ClientToken: clientToken(token, lb.Name),
		})
		if err != nil {
			return res, fmt.Errorf("create load balancer %s: %w", lb.Name, err)
		}
		cur, res.Created = &created, true
	}
	res.LoadBalancerID, res.VIP, res.State, res.StateReason = cur.ID, cur.VIP, cur.State, cur.StateReason
	if !slices.Equal(cur.SourceRanges, lb.SourceRanges) {
		if err := p.SetSourceRanges(ctx, cur.ID, lb.SourceRanges); err != nil {
			return res, fmt.Errorf("set the source ranges of load balancer %s: %w", cur.ID, err)
		}
	}

	if err := ensureTargetGroups(ctx, p, lb, tgs, token, &res); err != nil {
		return res, err
	}
	if err := ensureListeners(ctx, p, lb, cur, token, res.TargetGroups); err != nil {
		return res, err
	}
	for _, tg := range lb.TargetGroups {
		reg, dereg, err := syncTargets(ctx, p, res.TargetGroups[tg.Name], tg.Targets)
		res.Registered += reg
		res.Deregistered += dereg
		if err != nil {
			return res, err
		}
	}
	// Groups no longer wanted go last: by now no listener of ours forwards to them.
	for _, tg := range tgs {
		if id, ok := res.TargetGroups[tg.Name]; ok && id == tg.ID {
			continue
		}
		if err := p.DeleteTargetGroup(ctx, tg.ID); err != nil {
			return res, fmt.Errorf("delete target group %s, no longer used: %w", tg.ID, err)
		}
	}
	return res, nil
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

func ensureTargetGroups(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer, actual []providers.TargetGroup, token string, res *Result) error {
	for _, want := range lb.TargetGroups {
		hc := healthCheck(want.HealthCheck)
		delay := time.Duration(want.DeregistrationDelaySeconds) * time.Second
		i := slices.IndexFunc(actual, func(tg providers.TargetGroup) bool {
			return tg.Name == want.Name && tg.Tags[model.TagServiceUID] == lb.Owner.UID
		})
		if i < 0 {
			tg, err := p.CreateTargetGroup(ctx, providers.TargetGroupSpec{
				Name: want.Name, Protocol: want.Protocol, Port: want.Port, HealthCheck: hc,
				DeregistrationDelay: delay, Tags: want.Tags, ClientToken: clientToken(token, want.Name),
			})
			if err != nil {
				return fmt.Errorf("create target group %s for port %s/%d: %w", want.Name, want.Protocol, want.Port, err)
			}
			res.TargetGroups[want.Name] = tg.ID
			continue
		}
		tg := actual[i]
		res.TargetGroups[want.Name] = tg.ID
		if tg.HealthCheck != hc || tg.DeregistrationDelay != delay {
			if err := p.UpdateTargetGroup(ctx, tg.ID, hc, delay); err != nil {
				return fmt.Errorf("update the health check of target group %s: %w", tg.ID, err)
			}
		}
	}
	return nil
}

func ensureListeners(ctx context.Context, p providers.LoadBalancing, lb *model.LoadBalancer, cur *providers.LoadBalancer, token string, tgIDs map[string]string) error {
	type key struct {
		proto string
		port  int
	}
	want := map[key]string{}
	for _, l := range lb.Listeners {
		want[key{l.Protocol, l.Port}] = tgIDs[l.TargetGroup]
	}
	have := map[key]bool{}
	for _, l := range cur.Listeners {
		k := key{l.Protocol, l.Port}
		if tg, ok := want[k]; ok && tg == l.TargetGroupID {
			have[k] = true
			continue
		}
		if err := p.DeleteListener(ctx, l.ID); err != nil {
			return fmt.Errorf("delete listener %s (%s/%d) of load balancer %s: %w", l.ID, l.Protocol, l.Port, cur.ID, err)
		}
	}
	for _, l := range lb.Listeners {
		k := key{l.Protocol, l.Port}
		if have[k] {
			continue
		}
		spec := providers.ListenerSpec{Protocol: l.Protocol, Port: l.Port, TargetGroupID: want[k],
			ClientToken: clientToken(token, fmt.Sprintf("%s/%s/%d/%s", cur.ID, l.Protocol, l.Port, want[k]))}
		if _, err := p.CreateListener(ctx, cur.ID, spec); err != nil {
			return fmt.Errorf("create listener %s/%d on load balancer %s: %w", l.Protocol, l.Port, cur.ID, err)
		}
	}
	return nil
}

// syncTargets registers the wanted targets that are not live and deregisters the live ones not
// wanted, one call each way. A draining target that is wanted again is registered (live again);
// one not wanted is left to finish draining.
func syncTargets(ctx context.Context, p providers.LoadBalancing, tgID string, want []model.Target) (int, int, error) {
	actual, err := p.DescribeTargets(ctx, tgID)
	if err != nil {
		return 0, 0, fmt.Errorf("describe the targets of target group %s: %w", tgID, err)
	}
	live := make(map[providers.Target]bool, len(actual))
	for _, th := range actual {
		if th.State != providers.HealthDraining {
			live[th.Target] = true
		}
	}
	wanted := make(map[providers.Target]bool, len(want))
	var reg []providers.Target
	for _, t := range want {
		pt := providers.Target{IP: t.IP, Port: t.Port}
		wanted[pt] = true
		if !live[pt] {
			reg = append(reg, pt)
		}
	}
	var dereg []providers.Target
	for _, th := range actual {
		if live[th.Target] && !wanted[th.Target] {
			dereg = append(dereg, th.Target)
		}
	}
	// Deregister first: a group near its target limit makes room before new targets arrive.
	if len(dereg) > 0 {
		if err := p.DeregisterTargets(ctx, tgID, dereg); err != nil {
			return 0, 0, fmt.Errorf("deregister %d targets from target group %s: %w", len(dereg), tgID, err)
		}
	}
	if len(reg) > 0 {
		if err := p.RegisterTargets(ctx, tgID, reg); err != nil {
			return 0, len(dereg), fmt.Errorf("register %d targets in target group %s: %w", len(reg), tgID, err)
		}
	}
	return len(reg), len(dereg), nil
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
