package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/flatnet/flatnet/providers"
)

// snapshot is what one poll saw: every load balancer's state and every registered target's
// health.
type snapshot struct {
	lbs     map[string]providers.LoadBalancerState
	targets map[targetKey]providers.TargetHealth
}

type targetKey struct {
	group  string
	target providers.Target
}

// WatchHealth implements providers.LoadBalancing by polling: ELBv2 pushes nothing, so every
// PollInterval the driver reads every load balancer's state and every target group's target
// health and delivers what changed since the poll before. The first poll, and the first after
// failed ones (changes may have been missed), is delivered Full. Throttling and AWS's failures
// are waited out (the next poll tries again); any other error ends the watch.
func (d *LoadBalancing) WatchHealth(ctx context.Context, fn func(providers.HealthEvent)) error {
	var prev *snapshot
	t := time.NewTicker(d.poll)
	defer t.Stop()
	for {
		cur, err := d.poll1(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !providers.Retryable(err):
			return fmt.Errorf("watch target health: %w", err)
		case err != nil:
			prev = nil
		case prev == nil:
			fn(full(cur))
			prev = cur
		default:
			if ev := diff(prev, cur); len(ev.Targets)+len(ev.LoadBalancers) > 0 {
				fn(ev)
			}
			prev = cur
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// poll1 reads one snapshot.
func (d *LoadBalancing) poll1(ctx context.Context) (*snapshot, error) {
	s := &snapshot{lbs: map[string]providers.LoadBalancerState{}, targets: map[targetKey]providers.TargetHealth{}}
	in := &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(400)}
	for {
		resp, err := lbCall(ctx, d, "DescribeLoadBalancers", d.c.DescribeLoadBalancers, in)
		if err != nil {
			return nil, err
		}
		for _, lb := range resp.LoadBalancers {
			st, reason := fromLBState(lb.State)
			id := aws.ToString(lb.LoadBalancerArn)
			s.lbs[id] = providers.LoadBalancerState{ID: id, State: st, Reason: reason}
		}
		if aws.ToString(resp.NextMarker) == "" {
			break
		}
		in.Marker = resp.NextMarker
	}
	tgs, err := d.targetGroups(ctx)
	if err != nil {
		return nil, err
	}
	for i := range tgs {
		id := aws.ToString(tgs[i].TargetGroupArn)
		hs, err := d.DescribeTargets(ctx, id)
		if errors.Is(err, providers.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			s.targets[targetKey{id, h.Target}] = h
		}
	}
	return s, nil
}

func full(s *snapshot) providers.HealthEvent {
	ev := providers.HealthEvent{Full: true, Targets: []providers.TargetHealth{}, LoadBalancers: []providers.LoadBalancerState{}}
	for _, lb := range s.lbs {
		ev.LoadBalancers = append(ev.LoadBalancers, lb)
	}
	for _, h := range s.targets {
		ev.Targets = append(ev.Targets, h)
	}
	return ev
}

// diff is what changed from prev to cur: new and changed entries, and gone ones.
func diff(prev, cur *snapshot) providers.HealthEvent {
	var ev providers.HealthEvent
	for id, lb := range cur.lbs {
		if old, ok := prev.lbs[id]; !ok || old != lb {
			ev.LoadBalancers = append(ev.LoadBalancers, lb)
		}
	}
	for id := range prev.lbs {
		if _, ok := cur.lbs[id]; !ok {
			ev.LoadBalancers = append(ev.LoadBalancers, providers.LoadBalancerState{ID: id, Gone: true})
		}
	}
	for k, h := range cur.targets {
		if old, ok := prev.targets[k]; !ok || old != h {
			ev.Targets = append(ev.Targets, h)
		}
	}
	for k := range prev.targets {
		if _, ok := cur.targets[k]; !ok {
			ev.Targets = append(ev.Targets, providers.TargetHealth{TargetGroupID: k.group, Target: k.target, Gone: true})
		}
	}
	return ev
}
