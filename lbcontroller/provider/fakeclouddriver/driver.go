package fakeclouddriver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/client"
	"github.com/flatnet/flatnet/lbcontroller/provider"
)

// Name is the driver's name for --cloud.
const Name = "fakecloud"

// Config configures the driver.
type Config struct {
	// Client calls fakecloud with the account's (admin) token: load balancers are account-level.
	Client *client.Client
	// SubnetID is where load balancers are created; target groups go to its VPC.
	SubnetID string
	// OnCall, when set, is told the outcome of every cloud call (metrics); err is nil or a
	// *provider.Error.
	OnCall func(action string, err error)
	// WatchWait is how long one change-stream poll waits (default 25 s, fakecloud caps at 30 s).
	WatchWait time.Duration
}

// Driver implements provider.Provider on fakecloud.
type Driver struct {
	c        *client.Client
	subnetID string
	vpcID    string
	onCall   func(string, error)
	wait     time.Duration
}

var _ provider.Provider = (*Driver)(nil)

// New checks the subnet and returns a driver creating load balancers in it.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Client == nil || cfg.SubnetID == "" {
		return nil, fmt.Errorf("fakecloud provider: a client and a subnet ID are required")
	}
	d := &Driver{c: cfg.Client, subnetID: cfg.SubnetID, onCall: cfg.OnCall, wait: cfg.WatchWait}
	if d.wait <= 0 {
		d.wait = 25 * time.Second
	}
	resp, err := d.c.DescribeSubnets(ctx, &api.DescribeSubnetsRequest{SubnetIDs: []string{cfg.SubnetID}})
	err = classify(err)
	d.observe(api.ActionDescribeSubnets, err)
	if err != nil {
		return nil, fmt.Errorf("fakecloud provider: look up subnet %s (check --subnet-id): %w", cfg.SubnetID, err)
	}
	if len(resp.Subnets) != 1 {
		return nil, fmt.Errorf("fakecloud provider: subnet %s not found: check --subnet-id", cfg.SubnetID)
	}
	d.vpcID = resp.Subnets[0].VpcID
	return d, nil
}

func (d *Driver) observe(action string, err error) {
	if d.onCall != nil {
		d.onCall(action, err)
	}
}

// do runs one client call, reports it and classifies its error.
func do[Resp any](d *Driver, action string, call func() (*Resp, error)) (*Resp, error) {
	resp, err := call()
	err = classify(err)
	d.observe(action, err)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func tagFilters(tags map[string]string) []api.Filter {
	var fs []api.Filter
	for _, k := range sortedKeys(tags) {
		fs = append(fs, api.Filter{Name: "tag:" + k, Values: []string{tags[k]}})
	}
	return fs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func toTags(m map[string]string) []api.Tag {
	var ts []api.Tag
	for _, k := range sortedKeys(m) {
		ts = append(ts, api.Tag{Key: k, Value: m[k]})
	}
	return ts
}

func fromTags(ts []api.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

// ListLoadBalancers implements provider.LoadBalancers.
func (d *Driver) ListLoadBalancers(ctx context.Context, tags map[string]string) ([]provider.LoadBalancer, error) {
	resp, err := do(d, api.ActionDescribeLoadBalancers, func() (*api.DescribeLoadBalancersResponse, error) {
		return d.c.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{Filters: tagFilters(tags)})
	})
	if err != nil {
		return nil, err
	}
	out := make([]provider.LoadBalancer, 0, len(resp.LoadBalancers))
	for _, lb := range resp.LoadBalancers {
		ls, err := do(d, api.ActionDescribeListeners, func() (*api.DescribeListenersResponse, error) {
			return d.c.DescribeListeners(ctx, &api.DescribeListenersRequest{LoadBalancerID: lb.LoadBalancerID})
		})
		if errors.Is(err, provider.ErrNotFound) {
			continue // deleted between the two calls (by another pass, or garbage collection): gone
		}
		if err != nil {
			return nil, err
		}
		p, err := fromLB(lb)
		if err != nil {
			return nil, err
		}
		for _, l := range ls.Listeners {
			p.Listeners = append(p.Listeners, fromListener(l))
		}
		out = append(out, p)
	}
	return out, nil
}

func fromLB(lb api.LoadBalancer) (provider.LoadBalancer, error) {
	p := provider.LoadBalancer{ID: lb.LoadBalancerID, Name: lb.LoadBalancerName, Internal: lb.Scheme == api.SchemeInternal, Tags: fromTags(lb.Tags)}
	p.State, p.StateReason = fromLBState(lb)
	if lb.VIP != "" {
		vip, err := netip.ParseAddr(lb.VIP)
		if err != nil {
			return p, fmt.Errorf("fakecloud load balancer %s has a VIP %q that is not an address: %w", lb.LoadBalancerID, lb.VIP, err)
		}
		p.VIP = vip
	}
	for _, r := range lb.SourceRanges {
		pfx, err := netip.ParsePrefix(r)
		if err != nil {
			return p, fmt.Errorf("fakecloud load balancer %s has a source range %q that is not a CIDR: %w", lb.LoadBalancerID, r, err)
		}
		p.SourceRanges = append(p.SourceRanges, pfx)
	}
	return p, nil
}

func fromListener(l api.Listener) provider.Listener {
	p := provider.Listener{ID: l.ListenerID, Protocol: l.Protocol, Port: l.Port}
	if len(l.DefaultActions) > 0 {
		p.TargetGroupID = l.DefaultActions[0].TargetGroupID
	}
	return p
}

// CreateLoadBalancer implements provider.LoadBalancers.
func (d *Driver) CreateLoadBalancer(ctx context.Context, spec provider.LoadBalancerSpec) (provider.LoadBalancer, error) {
	scheme := api.SchemeInternetFacing
	if spec.Internal {
		scheme = api.SchemeInternal
	}
	resp, err := do(d, api.ActionCreateLoadBalancer, func() (*api.CreateLoadBalancerResponse, error) {
		return d.c.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{
			Name: spec.Name, Scheme: scheme, Type: api.LoadBalancerTypeNetwork, SubnetID: d.subnetID,
			Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		})
	})
	if err != nil {
		return provider.LoadBalancer{}, err
	}
	return fromLB(resp.LoadBalancer)
}

// SetSourceRanges implements provider.LoadBalancers.
func (d *Driver) SetSourceRanges(ctx context.Context, id string, ranges []netip.Prefix) error {
	s := make([]string, len(ranges))
	for i, r := range ranges {
		s[i] = r.String()
	}
	_, err := do(d, api.ActionModifyLoadBalancerAttributes, func() (*api.ModifyLoadBalancerAttributesResponse, error) {
		return d.c.ModifyLoadBalancerAttributes(ctx, &api.ModifyLoadBalancerAttributesRequest{
			LoadBalancerID: id, Attributes: []api.Attribute{{Key: api.AttributeSourceRanges, Value: strings.Join(s, ",")}},
		})
	})
	return err
}

// DeleteLoadBalancer implements provider.LoadBalancers.
func (d *Driver) DeleteLoadBalancer(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteLoadBalancer, func() (*api.DeleteLoadBalancerResponse, error) {
		return d.c.DeleteLoadBalancer(ctx, &api.DeleteLoadBalancerRequest{LoadBalancerID: id})
	})
	return err
}

// CreateListener implements provider.LoadBalancers.
func (d *Driver) CreateListener(ctx context.Context, lbID string, l provider.ListenerSpec) (provider.Listener, error) {
	resp, err := do(d, api.ActionCreateListener, func() (*api.CreateListenerResponse, error) {
		return d.c.CreateListener(ctx, &api.CreateListenerRequest{
			LoadBalancerID: lbID, Protocol: l.Protocol, Port: l.Port, ClientToken: l.ClientToken,
			DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: l.TargetGroupID}},
		})
	})
	if err != nil {
		return provider.Listener{}, err
	}
	return fromListener(resp.Listener), nil
}

// DeleteListener implements provider.LoadBalancers.
func (d *Driver) DeleteListener(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteListener, func() (*api.DeleteListenerResponse, error) {
		return d.c.DeleteListener(ctx, &api.DeleteListenerRequest{ListenerID: id})
	})
	return err
}

// ListTargetGroups implements provider.TargetGroups.
func (d *Driver) ListTargetGroups(ctx context.Context, tags map[string]string) ([]provider.TargetGroup, error) {
	resp, err := do(d, api.ActionDescribeTargetGroups, func() (*api.DescribeTargetGroupsResponse, error) {
		return d.c.DescribeTargetGroups(ctx, &api.DescribeTargetGroupsRequest{Filters: tagFilters(tags)})
	})
	if err != nil {
		return nil, err
	}
	out := make([]provider.TargetGroup, 0, len(resp.TargetGroups))
	for _, tg := range resp.TargetGroups {
		out = append(out, provider.TargetGroup{
			ID: tg.TargetGroupID, Name: tg.TargetGroupName, Protocol: tg.Protocol, Port: tg.Port,
			HealthCheck:         fromHealthCheck(tg.HealthCheck),
			DeregistrationDelay: time.Duration(tg.DeregistrationDelaySeconds) * time.Second,
			Tags:                fromTags(tg.Tags),
		})
	}
	return out, nil
}

func fromHealthCheck(hc api.HealthCheck) provider.HealthCheck {
	port, _ := strconv.Atoi(hc.Port) // "traffic-port" (or empty) is 0: each target's port
	p := provider.HealthCheck{
		Protocol: hc.Protocol, Port: port,
		Interval: time.Duration(hc.IntervalSeconds) * time.Second, Timeout: time.Duration(hc.TimeoutSeconds) * time.Second,
		HealthyThreshold: hc.HealthyThresholdCount, UnhealthyThreshold: hc.UnhealthyThresholdCount,
	}
	if hc.Protocol == api.ProtocolHTTP {
		p.Path = hc.Path
	}
	return p
}

func toHealthCheck(hc provider.HealthCheck) api.HealthCheck {
	port := api.HealthCheckPortTraffic
	if hc.Port != 0 {
		port = strconv.Itoa(hc.Port)
	}
	return api.HealthCheck{
		Protocol: hc.Protocol, Port: port, Path: hc.Path,
		IntervalSeconds: int(hc.Interval / time.Second), TimeoutSeconds: int(hc.Timeout / time.Second),
		HealthyThresholdCount: hc.HealthyThreshold, UnhealthyThresholdCount: hc.UnhealthyThreshold,
	}
}

// CreateTargetGroup implements provider.TargetGroups; the deregistration delay is set right
// after (fakecloud takes it as an attribute), so a crash between the two leaves a group that
// the next pass finds with the wrong delay and corrects.
func (d *Driver) CreateTargetGroup(ctx context.Context, spec provider.TargetGroupSpec) (provider.TargetGroup, error) {
	resp, err := do(d, api.ActionCreateTargetGroup, func() (*api.CreateTargetGroupResponse, error) {
		return d.c.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{
			Name: spec.Name, Protocol: spec.Protocol, Port: spec.Port, VpcID: d.vpcID, TargetType: api.TargetTypeIP,
			HealthCheck: toHealthCheck(spec.HealthCheck), Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		})
	})
	if err != nil {
		return provider.TargetGroup{}, err
	}
	tg := resp.TargetGroup
	if tg.DeregistrationDelaySeconds != int(spec.DeregistrationDelay/time.Second) {
		if err := d.setDeregistrationDelay(ctx, tg.TargetGroupID, spec.DeregistrationDelay); err != nil {
			return provider.TargetGroup{}, err
		}
	}
	return provider.TargetGroup{
		ID: tg.TargetGroupID, Name: tg.TargetGroupName, Protocol: tg.Protocol, Port: tg.Port,
		HealthCheck: fromHealthCheck(tg.HealthCheck), DeregistrationDelay: spec.DeregistrationDelay, Tags: fromTags(tg.Tags),
	}, nil
}

func (d *Driver) setDeregistrationDelay(ctx context.Context, id string, delay time.Duration) error {
	_, err := do(d, api.ActionModifyTargetGroupAttributes, func() (*api.ModifyTargetGroupAttributesResponse, error) {
		return d.c.ModifyTargetGroupAttributes(ctx, &api.ModifyTargetGroupAttributesRequest{
			TargetGroupID: id,
			Attributes:    []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: strconv.Itoa(int(delay / time.Second))}},
		})
	})
	return err
}

// UpdateTargetGroup implements provider.TargetGroups.
func (d *Driver) UpdateTargetGroup(ctx context.Context, id string, hc provider.HealthCheck, delay time.Duration) error {
	_, err := do(d, api.ActionModifyTargetGroup, func() (*api.ModifyTargetGroupResponse, error) {
		return d.c.ModifyTargetGroup(ctx, &api.ModifyTargetGroupRequest{TargetGroupID: id, HealthCheck: toHealthCheck(hc)})
	})
	if err != nil {
		return err
	}
	return d.setDeregistrationDelay(ctx, id, delay)
}

// DeleteTargetGroup implements provider.TargetGroups; a group already gone is done.
func (d *Driver) DeleteTargetGroup(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteTargetGroup, func() (*api.DeleteTargetGroupResponse, error) {
		return d.c.DeleteTargetGroup(ctx, &api.DeleteTargetGroupRequest{TargetGroupID: id})
	})
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	return err
}

func toTargets(ts []provider.Target) []api.Target {
	out := make([]api.Target, len(ts))
	for i, t := range ts {
		out[i] = api.Target{IP: t.IP.String(), Port: t.Port}
	}
	return out
}

// DescribeTargets implements provider.Targets.
func (d *Driver) DescribeTargets(ctx context.Context, id string) ([]provider.TargetHealth, error) {
	resp, err := do(d, api.ActionDescribeTargetHealth, func() (*api.DescribeTargetHealthResponse, error) {
		return d.c.DescribeTargetHealth(ctx, &api.DescribeTargetHealthRequest{TargetGroupID: id})
	})
	if err != nil {
		return nil, err
	}
	out := make([]provider.TargetHealth, 0, len(resp.TargetHealthDescriptions))
	for _, th := range resp.TargetHealthDescriptions {
		h, err := fromTargetHealth(th)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func fromTargetHealth(th api.TargetHealthDescription) (provider.TargetHealth, error) {
	ip, err := netip.ParseAddr(th.Target.IP)
	if err != nil {
		return provider.TargetHealth{}, fmt.Errorf("fakecloud target group %s has a target %q that is not an address: %w", th.TargetGroupID, th.Target.IP, err)
	}
	state := th.TargetHealth.State
	switch state {
	case api.TargetHealthInitial, api.TargetHealthHealthy, api.TargetHealthDraining, api.TargetHealthUnused:
	default:
		state = provider.HealthUnhealthy
	}
	return provider.TargetHealth{
		TargetGroupID: th.TargetGroupID, Target: provider.Target{IP: ip, Port: th.Target.Port},
		State: state, Reason: th.TargetHealth.Reason,
	}, nil
}

// RegisterTargets implements provider.Targets.
func (d *Driver) RegisterTargets(ctx context.Context, id string, ts []provider.Target) error {
	_, err := do(d, api.ActionRegisterTargets, func() (*api.RegisterTargetsResponse, error) {
		return d.c.RegisterTargets(ctx, &api.RegisterTargetsRequest{TargetGroupID: id, Targets: toTargets(ts)})
	})
	return err
}

// DeregisterTargets implements provider.Targets.
func (d *Driver) DeregisterTargets(ctx context.Context, id string, ts []provider.Target) error {
	_, err := do(d, api.ActionDeregisterTargets, func() (*api.DeregisterTargetsResponse, error) {
		return d.c.DeregisterTargets(ctx, &api.DeregisterTargetsRequest{TargetGroupID: id, Targets: toTargets(ts)})
	})
	return err
}

// fromLBState maps fakecloud's load balancer state onto the provider's; one it does not know
// is provisioning (never active: that would claim traffic flows).
func fromLBState(lb api.LoadBalancer) (state, reason string) {
	switch lb.State {
	case api.LoadBalancerStateActive:
		return provider.LBActive, ""
	case api.LoadBalancerStateFailed:
		return provider.LBFailed, lb.StateReason
	case api.LoadBalancerStateProvisioning:
		return provider.LBProvisioning, ""
	}
	return provider.LBProvisioning, fmt.Sprintf("fakecloud reports the unknown state %q", lb.State)
}
