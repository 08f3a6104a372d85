package fakecloud

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
	"github.com/flatnet/flatnet/providers"
)

// LoadBalancing implements providers.LoadBalancing on fakecloud, with the account's token:
// load balancers are account-level.
type LoadBalancing struct {
	c        *client.Client
	subnetID string
	vpcID    string
	observe  providers.Observer
	wait     time.Duration
}

var _ providers.LoadBalancing = (*LoadBalancing)(nil)

// NewLoadBalancing checks the subnet and returns a driver creating load balancers in it.
func NewLoadBalancing(ctx context.Context, cfg Config) (*LoadBalancing, error) {
	c, err := cfg.client("pass --cloud-endpoint")
	if err != nil {
		return nil, err
	}
	if cfg.SubnetID == "" {
		return nil, errors.New("no subnet: load balancers need one (--subnet-id)")
	}
	d := &LoadBalancing{c: c, subnetID: cfg.SubnetID, observe: cfg.observer(), wait: cfg.WatchWait}
	if d.wait <= 0 {
		d.wait = 25 * time.Second
	}
	resp, err := do(d, api.ActionDescribeSubnets, func() (*api.DescribeSubnetsResponse, error) {
		return d.c.DescribeSubnets(ctx, &api.DescribeSubnetsRequest{SubnetIDs: []string{cfg.SubnetID}})
	})
	if err != nil {
		return nil, fmt.Errorf("look up subnet %s (check --subnet-id): %w", cfg.SubnetID, err)
	}
	if len(resp.Subnets) != 1 {
		return nil, fmt.Errorf("subnet %s not found: check --subnet-id", cfg.SubnetID)
	}
	d.vpcID = resp.Subnets[0].VpcID
	return d, nil
}

// do runs one client call, reports it and classifies its error.
func do[Resp any](d *LoadBalancing, action string, call func() (*Resp, error)) (*Resp, error) {
	start := time.Now()
	resp, err := call()
	err = classify(err)
	d.observe(action, time.Since(start), err)
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

// ListLoadBalancers implements providers.LoadBalancers.
func (d *LoadBalancing) ListLoadBalancers(ctx context.Context, tags map[string]string) ([]providers.LoadBalancer, error) {
	resp, err := do(d, api.ActionDescribeLoadBalancers, func() (*api.DescribeLoadBalancersResponse, error) {
		// Network load balancers only: application ones are ListApplicationLoadBalancers'.
		return d.c.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{
			Filters: append(tagFilters(tags), api.Filter{Name: "type", Values: []string{api.LoadBalancerTypeNetwork}})})
	})
	if err != nil {
		return nil, err
	}
	out := make([]providers.LoadBalancer, 0, len(resp.LoadBalancers))
	for _, lb := range resp.LoadBalancers {
		ls, err := do(d, api.ActionDescribeListeners, func() (*api.DescribeListenersResponse, error) {
			return d.c.DescribeListeners(ctx, &api.DescribeListenersRequest{LoadBalancerID: lb.LoadBalancerID})
		})
		if errors.Is(err, providers.ErrNotFound) {
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

func fromLB(lb api.LoadBalancer) (providers.LoadBalancer, error) {
	p := providers.LoadBalancer{ID: lb.LoadBalancerID, Name: lb.LoadBalancerName, Internal: lb.Scheme == api.SchemeInternal, Tags: fromTags(lb.Tags)}
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

func fromListener(l api.Listener) providers.Listener {
	p := providers.Listener{ID: l.ListenerID, Protocol: l.Protocol, Port: l.Port}
	if len(l.DefaultActions) > 0 {
		p.TargetGroupID = l.DefaultActions[0].TargetGroupID
	}
	return p
}

// CreateLoadBalancer implements providers.LoadBalancers.
func (d *LoadBalancing) CreateLoadBalancer(ctx context.Context, spec providers.LoadBalancerSpec) (providers.LoadBalancer, error) {
	scheme := api.SchemeInternetFacing
	if spec.Internal {
		scheme = api.SchemeInternal
	}
	resp, err := do(d, api.ActionCreateLoadBalancer, func() (*api.CreateLoadBalancerResponse, error) {
		req := &api.CreateLoadBalancerRequest{
			Name: spec.Name, Scheme: scheme, Type: api.LoadBalancerTypeNetwork, SubnetID: d.subnetID,
			Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		}
		requestAddress(req, spec)
		return d.c.CreateLoadBalancer(ctx, req)
	})
	if err != nil {
		return providers.LoadBalancer{}, err
	}
	return fromLB(resp.LoadBalancer)
}

// requestAddress asks for spec's Address: the public one of an internet-facing load balancer,
// the private one of an internal one.
func requestAddress(req *api.CreateLoadBalancerRequest, spec providers.LoadBalancerSpec) {
	switch {
	case !spec.Address.IsValid():
	case spec.Internal:
		req.PrivateIPv4Address = spec.Address.String()
	default:
		req.PublicIPv4Address = spec.Address.String()
	}
}

// SetSourceRanges implements providers.LoadBalancers.
func (d *LoadBalancing) SetSourceRanges(ctx context.Context, id string, ranges []netip.Prefix) error {
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

// DeleteLoadBalancer implements providers.LoadBalancers; one already gone is done.
func (d *LoadBalancing) DeleteLoadBalancer(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteLoadBalancer, func() (*api.DeleteLoadBalancerResponse, error) {
		return d.c.DeleteLoadBalancer(ctx, &api.DeleteLoadBalancerRequest{LoadBalancerID: id})
	})
	return gone(err)
}

// gone makes a delete of what does not exist a success.
func gone(err error) error {
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	return err
}

// CreateListener implements providers.LoadBalancers.
func (d *LoadBalancing) CreateListener(ctx context.Context, lbID string, l providers.ListenerSpec) (providers.Listener, error) {
	resp, err := do(d, api.ActionCreateListener, func() (*api.CreateListenerResponse, error) {
		return d.c.CreateListener(ctx, &api.CreateListenerRequest{
			LoadBalancerID: lbID, Protocol: l.Protocol, Port: l.Port, ClientToken: l.ClientToken,
			DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: l.TargetGroupID}},
		})
	})
	if err != nil {
		return providers.Listener{}, err
	}
	return fromListener(resp.Listener), nil
}

// DeleteListener implements providers.LoadBalancers; one already gone is done.
func (d *LoadBalancing) DeleteListener(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteListener, func() (*api.DeleteListenerResponse, error) {
		return d.c.DeleteListener(ctx, &api.DeleteListenerRequest{ListenerID: id})
	})
	return gone(err)
}

// ListTargetGroups implements providers.TargetGroups.
func (d *LoadBalancing) ListTargetGroups(ctx context.Context, tags map[string]string) ([]providers.TargetGroup, error) {
	resp, err := do(d, api.ActionDescribeTargetGroups, func() (*api.DescribeTargetGroupsResponse, error) {
		return d.c.DescribeTargetGroups(ctx, &api.DescribeTargetGroupsRequest{Filters: tagFilters(tags)})
	})
	if err != nil {
		return nil, err
	}
	out := make([]providers.TargetGroup, 0, len(resp.TargetGroups))
	for _, tg := range resp.TargetGroups {
		out = append(out, fromTargetGroup(tg))
	}
	return out, nil
}

func fromTargetGroup(tg api.TargetGroup) providers.TargetGroup {
	return providers.TargetGroup{
		ID: tg.TargetGroupID, Name: tg.TargetGroupName, Protocol: tg.Protocol, ProtocolVersion: tg.ProtocolVersion, Port: tg.Port,
		HealthCheck:         fromHealthCheck(tg.HealthCheck),
		DeregistrationDelay: time.Duration(tg.DeregistrationDelaySeconds) * time.Second,
		TLS:                 fromBackendTLS(tg.TLSVerification),
		ClientCertificateID: tg.ClientCertificateID,
		Tags:                fromTags(tg.Tags),
	}
}

// toTLSVerification is a group's BackendTLS as fakecloud takes it; the SAN types are named alike.
func toTLSVerification(t *providers.BackendTLS) *api.TLSVerification {
	if t == nil {
		return nil
	}
	v := &api.TLSVerification{ServerName: t.ServerName, CACertificatesPEM: string(t.CAPEM), UseSystemRoots: t.SystemRoots}
	for _, san := range t.SubjectAltNames {
		v.SubjectAltNames = append(v.SubjectAltNames, api.SubjectAltName{Type: san.Type, Value: san.Value})
	}
	return v
}

func fromBackendTLS(v *api.TLSVerification) *providers.BackendTLS {
	if v == nil {
		return nil
	}
	t := &providers.BackendTLS{ServerName: v.ServerName, SystemRoots: v.UseSystemRoots}
	if v.CACertificatesPEM != "" {
		t.CAPEM = []byte(v.CACertificatesPEM)
	}
	for _, san := range v.SubjectAltNames {
		t.SubjectAltNames = append(t.SubjectAltNames, providers.SubjectAltName{Type: san.Type, Value: san.Value})
	}
	return t
}

func fromHealthCheck(hc api.HealthCheck) providers.HealthCheck {
	port, _ := strconv.Atoi(hc.Port) // "traffic-port" (or empty) is 0: each target's port
	p := providers.HealthCheck{
		Protocol: hc.Protocol, Port: port,
		Interval: time.Duration(hc.IntervalSeconds) * time.Second, Timeout: time.Duration(hc.TimeoutSeconds) * time.Second,
		HealthyThreshold: hc.HealthyThresholdCount, UnhealthyThreshold: hc.UnhealthyThresholdCount,
	}
	if hc.Protocol == api.ProtocolHTTP {
		p.Path = hc.Path
	}
	return p
}

func toHealthCheck(hc providers.HealthCheck) api.HealthCheck {
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

// CreateTargetGroup implements providers.TargetGroups; the deregistration delay is set right
// after (fakecloud takes it as an attribute), so a crash between the two leaves a group that
// the next pass finds with the wrong delay and corrects.
func (d *LoadBalancing) CreateTargetGroup(ctx context.Context, spec providers.TargetGroupSpec) (providers.TargetGroup, error) {
	resp, err := do(d, api.ActionCreateTargetGroup, func() (*api.CreateTargetGroupResponse, error) {
		return d.c.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{
			Name: spec.Name, Protocol: spec.Protocol, ProtocolVersion: spec.ProtocolVersion, Port: spec.Port, VpcID: d.vpcID, TargetType: api.TargetTypeIP,
			HealthCheck: toHealthCheck(spec.HealthCheck), TLSVerification: toTLSVerification(spec.TLS), ClientCertificateID: spec.ClientCertificateID,
			Tags: toTags(spec.Tags), ClientToken: spec.ClientToken,
		})
	})
	if err != nil {
		return providers.TargetGroup{}, err
	}
	tg := resp.TargetGroup
	if tg.DeregistrationDelaySeconds != int(spec.DeregistrationDelay/time.Second) {
		if err := d.setDeregistrationDelay(ctx, tg.TargetGroupID, spec.DeregistrationDelay); err != nil {
			return providers.TargetGroup{}, err
		}
	}
	out := fromTargetGroup(tg)
	out.DeregistrationDelay = spec.DeregistrationDelay
	return out, nil
}

func (d *LoadBalancing) setDeregistrationDelay(ctx context.Context, id string, delay time.Duration) error {
	_, err := do(d, api.ActionModifyTargetGroupAttributes, func() (*api.ModifyTargetGroupAttributesResponse, error) {
		return d.c.ModifyTargetGroupAttributes(ctx, &api.ModifyTargetGroupAttributesRequest{
			TargetGroupID: id,
			Attributes:    []api.Attribute{{Key: api.AttributeDeregistrationDelay, Value: strconv.Itoa(int(delay / time.Second))}},
		})
	})
	return err
}

// UpdateTargetGroup implements providers.TargetGroups.
func (d *LoadBalancing) UpdateTargetGroup(ctx context.Context, id string, hc providers.HealthCheck, delay time.Duration) error {
	_, err := do(d, api.ActionModifyTargetGroup, func() (*api.ModifyTargetGroupResponse, error) {
		return d.c.ModifyTargetGroup(ctx, &api.ModifyTargetGroupRequest{TargetGroupID: id, HealthCheck: toHealthCheck(hc)})
	})
	if err != nil {
		return err
	}
	return d.setDeregistrationDelay(ctx, id, delay)
}

// DeleteTargetGroup implements providers.TargetGroups; a group already gone is done.
func (d *LoadBalancing) DeleteTargetGroup(ctx context.Context, id string) error {
	_, err := do(d, api.ActionDeleteTargetGroup, func() (*api.DeleteTargetGroupResponse, error) {
		return d.c.DeleteTargetGroup(ctx, &api.DeleteTargetGroupRequest{TargetGroupID: id})
	})
	return gone(err)
}

func toTargets(ts []providers.Target) []api.Target {
	out := make([]api.Target, len(ts))
	for i, t := range ts {
		out[i] = api.Target{IP: t.IP.String(), Port: t.Port}
	}
	return out
}

// DescribeTargets implements providers.Targets.
func (d *LoadBalancing) DescribeTargets(ctx context.Context, id string) ([]providers.TargetHealth, error) {
	resp, err := do(d, api.ActionDescribeTargetHealth, func() (*api.DescribeTargetHealthResponse, error) {
		return d.c.DescribeTargetHealth(ctx, &api.DescribeTargetHealthRequest{TargetGroupID: id})
	})
	if err != nil {
		return nil, err
	}
	out := make([]providers.TargetHealth, 0, len(resp.TargetHealthDescriptions))
	for _, th := range resp.TargetHealthDescriptions {
		h, err := fromTargetHealth(th)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func fromTargetHealth(th api.TargetHealthDescription) (providers.TargetHealth, error) {
	ip, err := netip.ParseAddr(th.Target.IP)
	if err != nil {
		return providers.TargetHealth{}, fmt.Errorf("fakecloud target group %s has a target %q that is not an address: %w", th.TargetGroupID, th.Target.IP, err)
	}
	state := th.TargetHealth.State
	switch state {
	case api.TargetHealthInitial, api.TargetHealthHealthy, api.TargetHealthDraining, api.TargetHealthUnused:
	default:
		state = providers.HealthUnhealthy
	}
	return providers.TargetHealth{
		TargetGroupID: th.TargetGroupID, Target: providers.Target{IP: ip, Port: th.Target.Port},
		State: state, Reason: th.TargetHealth.Reason,
	}, nil
}

// RegisterTargets implements providers.Targets.
func (d *LoadBalancing) RegisterTargets(ctx context.Context, id string, ts []providers.Target) error {
	_, err := do(d, api.ActionRegisterTargets, func() (*api.RegisterTargetsResponse, error) {
		return d.c.RegisterTargets(ctx, &api.RegisterTargetsRequest{TargetGroupID: id, Targets: toTargets(ts)})
	})
	return err
}

// DeregisterTargets implements providers.Targets.
func (d *LoadBalancing) DeregisterTargets(ctx context.Context, id string, ts []providers.Target) error {
	_, err := do(d, api.ActionDeregisterTargets, func() (*api.DeregisterTargetsResponse, error) {
		return d.c.DeregisterTargets(ctx, &api.DeregisterTargetsRequest{TargetGroupID: id, Targets: toTargets(ts)})
	})
	return err
}

// fromLBState maps fakecloud's load balancer state onto the provider's; one it does not know
// is provisioning (never active: that would claim traffic flows).
func fromLBState(lb api.LoadBalancer) (state, reason string) {
	switch lb.State {
	case api.LoadBalancerStateActive, api.LoadBalancerStateActiveImpaired: // traffic flows (as the AWS driver reads ELBv2's)
		return providers.LBActive, ""
	case api.LoadBalancerStateFailed:
		return providers.LBFailed, lb.StateReason
	case api.LoadBalancerStateProvisioning:
		return providers.LBProvisioning, ""
	}
	return providers.LBProvisioning, fmt.Sprintf("fakecloud reports the unknown state %q", lb.State)
}
