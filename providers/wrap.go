package providers

import (
	"context"
	"net/netip"
	"time"
)

// IPAM returns d with every call made under the policy; creates and assignments without a
// client token get one, kept across the attempts.
func (p *Policy) IPAM(d IPAM) IPAM { return policyIPAM{p: p, d: d} }

type policyIPAM struct {
	p *Policy
	d IPAM
}

func (w policyIPAM) DescribeInstance(ctx context.Context, id string) (*Instance, error) {
	var out *Instance
	err := w.p.Do(ctx, func(ctx context.Context) (err error) {
		out, err = w.d.DescribeInstance(ctx, id)
		return err
	})
	return out, err
}

func (w policyIPAM) CreateInterface(ctx context.Context, req CreateInterfaceRequest) (*Interface, error) {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	var out *Interface
	err := w.p.Do(ctx, func(ctx context.Context) (err error) {
		out, err = w.d.CreateInterface(ctx, req)
		return err
	})
	return out, err
}

func (w policyIPAM) DeleteInterface(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteInterface(ctx, id) })
}

func (w policyIPAM) Assign(ctx context.Context, req AssignRequest) (*Assigned, error) {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	var out *Assigned
	err := w.p.Do(ctx, func(ctx context.Context) (err error) {
		out, err = w.d.Assign(ctx, req)
		return err
	})
	return out, err
}

func (w policyIPAM) Unassign(ctx context.Context, req UnassignRequest) error {
	if req.ClientToken == "" {
		req.ClientToken = NewToken()
	}
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.Unassign(ctx, req) })
}

// LoadBalancing returns d with every call made under the policy; creates without a client
// token get one, kept across the attempts. WatchHealth is handed through: a stream keeps
// itself alive (see LoadBalancing).
func (p *Policy) LoadBalancing(d LoadBalancing) LoadBalancing { return policyLB{p: p, d: d} }

type policyLB struct {
	p *Policy
	d LoadBalancing
}

// do1 runs a call that answers a value under the policy.
func do1[T any](ctx context.Context, p *Policy, fn func(context.Context) (T, error)) (T, error) {
	var out T
	err := p.Do(ctx, func(ctx context.Context) (err error) {
		out, err = fn(ctx)
		return err
	})
	return out, err
}

func (w policyLB) ListLoadBalancers(ctx context.Context, tags map[string]string) ([]LoadBalancer, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]LoadBalancer, error) { return w.d.ListLoadBalancers(ctx, tags) })
}

func (w policyLB) CreateLoadBalancer(ctx context.Context, spec LoadBalancerSpec) (LoadBalancer, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (LoadBalancer, error) { return w.d.CreateLoadBalancer(ctx, spec) })
}

func (w policyLB) SetSourceRanges(ctx context.Context, id string, ranges []netip.Prefix) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.SetSourceRanges(ctx, id, ranges) })
}

func (w policyLB) DeleteLoadBalancer(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteLoadBalancer(ctx, id) })
}

func (w policyLB) CreateListener(ctx context.Context, lbID string, l ListenerSpec) (Listener, error) {
	if l.ClientToken == "" {
		l.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (Listener, error) { return w.d.CreateListener(ctx, lbID, l) })
}

func (w policyLB) DeleteListener(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteListener(ctx, id) })
}

func (w policyLB) ListTargetGroups(ctx context.Context, tags map[string]string) ([]TargetGroup, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]TargetGroup, error) { return w.d.ListTargetGroups(ctx, tags) })
}

func (w policyLB) CreateTargetGroup(ctx context.Context, spec TargetGroupSpec) (TargetGroup, error) {
	if spec.ClientToken == "" {
		spec.ClientToken = NewToken()
	}
	return do1(ctx, w.p, func(ctx context.Context) (TargetGroup, error) { return w.d.CreateTargetGroup(ctx, spec) })
}

func (w policyLB) UpdateTargetGroup(ctx context.Context, id string, hc HealthCheck, delay time.Duration) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.UpdateTargetGroup(ctx, id, hc, delay) })
}

func (w policyLB) DeleteTargetGroup(ctx context.Context, id string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeleteTargetGroup(ctx, id) })
}

func (w policyLB) DescribeTargets(ctx context.Context, id string) ([]TargetHealth, error) {
	return do1(ctx, w.p, func(ctx context.Context) ([]TargetHealth, error) { return w.d.DescribeTargets(ctx, id) })
}

func (w policyLB) RegisterTargets(ctx context.Context, id string, ts []Target) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.RegisterTargets(ctx, id, ts) })
}

func (w policyLB) DeregisterTargets(ctx context.Context, id string, ts []Target) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.DeregisterTargets(ctx, id, ts) })
}

func (w policyLB) WatchHealth(ctx context.Context, fn func(HealthEvent)) error {
	return w.d.WatchHealth(ctx, fn)
}

func (w policyLB) TagResources(ctx context.Context, ids []string, tags map[string]string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.TagResources(ctx, ids, tags) })
}

func (w policyLB) UntagResources(ctx context.Context, ids []string, keys []string) error {
	return w.p.Do(ctx, func(ctx context.Context) error { return w.d.UntagResources(ctx, ids, keys) })
}
