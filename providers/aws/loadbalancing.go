package aws

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/providers"
)

// The load balancer and target group attributes the driver sets. AttrSourceRanges is
// fakecloud's stand-in for a real NLB's security group rules: on AWS itself SetSourceRanges is
// refused (ValidationError) until the driver manages a security group (docs/providers.md).
const (
	AttrSourceRanges        = "source_ranges.cidr_blocks"
	AttrDeregistrationDelay = "deregistration_delay.timeout_seconds"
)

// LoadBalancing implements providers.LoadBalancing on ELBv2: network load balancers in one
// subnet, target groups of type ip in its VPC; and providers.ApplicationLoadBalancing:
// application load balancers with rules (alb.go) and ACM's certificates. IDs are ARNs.
type LoadBalancing struct {
	c        *elbv2.Client
	acm      *acm.Client
	observe  func(string, time.Duration, error)
	subnetID string
	vpcID    string
	// poll is WatchHealth's period: ELBv2 pushes nothing, so health is polled.
	poll time.Duration
}

var _ providers.LoadBalancing = (*LoadBalancing)(nil)

// LBConfig adds to Config what the load balancer side needs.
type LBConfig struct {
	Config
	// SubnetID is where load balancers are created; target groups go to its VPC.
	SubnetID string
	// PollInterval is how often WatchHealth reads target health (default 5s).
	PollInterval time.Duration
}

// NewLoadBalancing builds lbcontroller's driver; it looks the subnet's VPC up.
func NewLoadBalancing(ctx context.Context, c LBConfig) (*LoadBalancing, error) {
	if c.SubnetID == "" {
		return nil, errors.New("aws: a subnet ID is required: load balancers are created in it")
	}
	cfg, err := load(ctx, c.Config)
	if err != nil {
		return nil, err
	}
	obs := c.Observe
	if obs == nil {
		obs = func(string, time.Duration, error) {}
	}
	cl := newClients(cfg)
	out, err := call(ctx, obs, "DescribeSubnets", cl.ec2.DescribeSubnets, &ec2.DescribeSubnetsInput{SubnetIds: []string{c.SubnetID}})
	if err != nil {
		return nil, fmt.Errorf("aws: look up subnet %s (check the subnet ID and the credentials): %w", c.SubnetID, err)
	}
	if len(out.Subnets) != 1 {
		return nil, fmt.Errorf("aws: subnet %s not found: check the subnet ID", c.SubnetID)
	}
	poll := c.PollInterval
	if poll <= 0 {
		poll = 5 * time.Second
	}
	return &LoadBalancing{c: cl.elbv2, acm: cl.acm, observe: obs, subnetID: c.SubnetID, vpcID: aws.ToString(out.Subnets[0].VpcId), poll: poll}, nil
}

// lbCall runs one ELBv2 operation, classifies its error and tells the observer.
func lbCall[In, Out any](ctx context.Context, d *LoadBalancing, op string,
	fn func(context.Context, *In, ...func(*elbv2.Options)) (*Out, error), in *In,
) (*Out, error) {
	start := time.Now()
	out, err := fn(ctx, in)
	err = classify(err)
	d.observe(op, time.Since(start), err)
	return out, err
}

func goneOK(err error) error {
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	return err
}

// toTags is nil for no tags: the SDK sends an empty list as an empty parameter.
func toTags(m map[string]string) []elbtypes.Tag {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]elbtypes.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, elbtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

func hasTags(have []elbtypes.Tag, want map[string]string) bool {
	m := fromTags(have)
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func fromTags(ts []elbtypes.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// tagsOf reads the tags of resources by ARN, 20 at a time (ELBv2's limit).
func (d *LoadBalancing) tagsOf(ctx context.Context, arns []string) (map[string][]elbtypes.Tag, error) {
	out := map[string][]elbtypes.Tag{}
	for chunk := range slices.Chunk(arns, 20) {
		resp, err := lbCall(ctx, d, "DescribeTags", d.c.DescribeTags, &elbv2.DescribeTagsInput{ResourceArns: chunk})
		if err != nil {
			return nil, err
		}
		for _, td := range resp.TagDescriptions {
			out[aws.ToString(td.ResourceArn)] = td.Tags
		}
	}
	return out, nil
}

// ListLoadBalancers implements providers.LoadBalancing: every load balancer (paged), their
// tags, and for those carrying tags their listeners and source ranges. One deleted meanwhile is
// left out.
func (d *LoadBalancing) ListLoadBalancers(ctx context.Context, tags map[string]string) ([]providers.LoadBalancer, error) {
	var lbs []elbtypes.LoadBalancer
	in := &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(400)}
	for {
		resp, err := lbCall(ctx, d, "DescribeLoadBalancers", d.c.DescribeLoadBalancers, in)
		if err != nil {
			return nil, err
		}
		lbs = append(lbs, resp.LoadBalancers...)
		if aws.ToString(resp.NextMarker) == "" {
			break
		}
		in.Marker = resp.NextMarker
	}
	arns := make([]string, 0, len(lbs))
	for _, lb := range lbs {
		if lb.Type == elbtypes.LoadBalancerTypeEnumNetwork {
			arns = append(arns, aws.ToString(lb.LoadBalancerArn))
		}
	}
	tagged, err := d.tagsOf(ctx, arns)
	if err != nil {
		return nil, err
	}
	out := []providers.LoadBalancer{}
	for i := range lbs {
		arn := aws.ToString(lbs[i].LoadBalancerArn)
		ts, ok := tagged[arn]
		if !ok || !hasTags(ts, tags) {
			continue
		}
		p, err := d.complete(ctx, &lbs[i], ts)
		if errors.Is(err, providers.ErrNotFound) {
			continue // deleted between the calls (another pass, garbage collection): gone
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// complete reads a load balancer's listeners and source ranges.
func (d *LoadBalancing) complete(ctx context.Context, lb *elbtypes.LoadBalancer, tags []elbtypes.Tag) (providers.LoadBalancer, error) {
	p, err := fromLB(lb)
	if err != nil {
		return p, err
	}
	p.Tags = fromTags(tags)
	in := &elbv2.DescribeListenersInput{LoadBalancerArn: lb.LoadBalancerArn}
	for {
		ls, err := lbCall(ctx, d, "DescribeListeners", d.c.DescribeListeners, in)
		if err != nil {
			return p, err
		}
		for i := range ls.Listeners {
			p.Listeners = append(p.Listeners, fromListener(&ls.Listeners[i]))
		}
		if aws.ToString(ls.NextMarker) == "" {
			break
		}
		in.Marker = ls.NextMarker
	}
	attrs, err := lbCall(ctx, d, "DescribeLoadBalancerAttributes", d.c.DescribeLoadBalancerAttributes,
		&elbv2.DescribeLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil {
		return p, err
	}
	for _, a := range attrs.Attributes {
		if aws.ToString(a.Key) != AttrSourceRanges || aws.ToString(a.Value) == "" {
			continue
		}
		for _, r := range strings.Split(aws.ToString(a.Value), ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(r))
			if err != nil {
				return p, fmt.Errorf("load balancer %s has a source range %q that is not a CIDR: %w", p.ID, r, err)
			}
			p.SourceRanges = append(p.SourceRanges, pfx)
		}
	}
	return p, nil
}

func fromLB(lb *elbtypes.LoadBalancer) (providers.LoadBalancer, error) {
	p := providers.LoadBalancer{
		ID: aws.ToString(lb.LoadBalancerArn), Name: aws.ToString(lb.LoadBalancerName),
		Internal: lb.Scheme == elbtypes.LoadBalancerSchemeEnumInternal,
	}
	p.State, p.StateReason = fromLBState(lb.State)
	for _, z := range lb.AvailabilityZones {
		for _, a := range z.LoadBalancerAddresses {
			s := aws.ToString(a.PrivateIPv4Address)
			if !p.Internal && aws.ToString(a.IpAddress) != "" {
				s = aws.ToString(a.IpAddress)
			}
			if s == "" || p.VIP.IsValid() {
				continue
			}
			vip, err := netip.ParseAddr(s)
			if err != nil {
				return p, fmt.Errorf("load balancer %s has an address %q that is not one: %w", p.ID, s, err)
			}
			p.VIP = vip
		}
	}
	return p, nil
}

// fromLBState maps ELBv2's state onto the seam's; one it does not know is provisioning (never
// active: that would claim traffic flows).
func fromLBState(s *elbtypes.LoadBalancerState) (state, reason string) {
	if s == nil {
		return providers.LBProvisioning, "ELBv2 reports no state"
	}
	switch s.Code {
	case elbtypes.LoadBalancerStateEnumActive, elbtypes.LoadBalancerStateEnumActiveImpaired:
		return providers.LBActive, aws.ToString(s.Reason)
	case elbtypes.LoadBalancerStateEnumFailed:
		return providers.LBFailed, aws.ToString(s.Reason)
	case elbtypes.LoadBalancerStateEnumProvisioning:
		return providers.LBProvisioning, ""
	}
	return providers.LBProvisioning, fmt.Sprintf("ELBv2 reports the unknown state %q", s.Code)
}

func fromListener(l *elbtypes.Listener) providers.Listener {
	p := providers.Listener{ID: aws.ToString(l.ListenerArn), Protocol: string(l.Protocol), Port: int(aws.ToInt32(l.Port))}
	for _, a := range l.DefaultActions {
		if a.Type == elbtypes.ActionTypeEnumForward {
			p.TargetGroupID = aws.ToString(a.TargetGroupArn)
			if p.TargetGroupID == "" && a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
				p.TargetGroupID = aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn)
			}
		}
	}
	return p
}

// CreateLoadBalancer implements providers.LoadBalancing. ELBv2 answers the existing load
// balancer to a create of the same name and settings, which makes a repeat idempotent (it has
// no client token).
func (d *LoadBalancing) CreateLoadBalancer(ctx context.Context, spec providers.LoadBalancerSpec) (providers.LoadBalancer, error) {
	if spec.Address.IsValid() {
		return providers.LoadBalancer{}, invalid(codeUnsupported, "a network load balancer at a chosen address (%s): the AWS driver does not map addresses to subnet mappings and Elastic IP allocations yet", spec.Address)
	}
	scheme := elbtypes.LoadBalancerSchemeEnumInternetFacing
	if spec.Internal {
		scheme = elbtypes.LoadBalancerSchemeEnumInternal
	}
	resp, err := lbCall(ctx, d, "CreateLoadBalancer", d.c.CreateLoadBalancer, &elbv2.CreateLoadBalancerInput{
		Name: aws.String(spec.Name), Type: elbtypes.LoadBalancerTypeEnumNetwork, Scheme: scheme,
		Subnets: []string{d.subnetID}, IpAddressType: elbtypes.IpAddressTypeIpv4, Tags: toTags(spec.Tags),
	})
	if err != nil {
		return providers.LoadBalancer{}, err
	}
	if len(resp.LoadBalancers) != 1 {
		return providers.LoadBalancer{}, fmt.Errorf("ELBv2 answered CreateLoadBalancer %s with %d load balancers", spec.Name, len(resp.LoadBalancers))
	}
	p, err := fromLB(&resp.LoadBalancers[0])
	p.Tags = spec.Tags
	return p, err
}

// SetSourceRanges implements providers.LoadBalancing with fakecloud's source-ranges attribute.
func (d *LoadBalancing) SetSourceRanges(ctx context.Context, id string, ranges []netip.Prefix) error {
	_, err := lbCall(ctx, d, "ModifyLoadBalancerAttributes", d.c.ModifyLoadBalancerAttributes, &elbv2.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: aws.String(id),
		Attributes:      []elbtypes.LoadBalancerAttribute{{Key: aws.String(AttrSourceRanges), Value: aws.String(strings.Join(strs(ranges), ","))}},
	})
	return err
}

// DeleteLoadBalancer implements providers.LoadBalancing (ELBv2 deletes the listeners with it).
func (d *LoadBalancing) DeleteLoadBalancer(ctx context.Context, id string) error {
	_, err := lbCall(ctx, d, "DeleteLoadBalancer", d.c.DeleteLoadBalancer, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(id)})
	return goneOK(err)
}

// CreateListener implements providers.LoadBalancing; ELBv2 answers an identical listener that
// exists.
func (d *LoadBalancing) CreateListener(ctx context.Context, lbID string, l providers.ListenerSpec) (providers.Listener, error) {
	resp, err := lbCall(ctx, d, "CreateListener", d.c.CreateListener, &elbv2.CreateListenerInput{
		LoadBalancerArn: aws.String(lbID), Protocol: elbtypes.ProtocolEnum(l.Protocol), Port: aws.Int32(int32(l.Port)),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(l.TargetGroupID)}},
	})
	if err != nil {
		return providers.Listener{}, err
	}
	if len(resp.Listeners) != 1 {
		return providers.Listener{}, fmt.Errorf("ELBv2 answered CreateListener with %d listeners", len(resp.Listeners))
	}
	return fromListener(&resp.Listeners[0]), nil
}

// DeleteListener implements providers.LoadBalancing.
func (d *LoadBalancing) DeleteListener(ctx context.Context, id string) error {
	_, err := lbCall(ctx, d, "DeleteListener", d.c.DeleteListener, &elbv2.DeleteListenerInput{ListenerArn: aws.String(id)})
	return goneOK(err)
}

// ListTargetGroups implements providers.LoadBalancing: every target group (paged), their tags,
// and for those carrying tags their deregistration delay.
func (d *LoadBalancing) ListTargetGroups(ctx context.Context, tags map[string]string) ([]providers.TargetGroup, error) {
	tgs, err := d.targetGroups(ctx)
	if err != nil {
		return nil, err
	}
	arns := make([]string, len(tgs))
	for i := range tgs {
		arns[i] = aws.ToString(tgs[i].TargetGroupArn)
	}
	tagged, err := d.tagsOf(ctx, arns)
	if err != nil {
		return nil, err
	}
	out := []providers.TargetGroup{}
	for i := range tgs {
		ts, ok := tagged[arns[i]]
		if !ok || !hasTags(ts, tags) {
			continue
		}
		tg := fromTargetGroup(&tgs[i])
		tg.Tags = fromTags(ts)
		attrs, err := lbCall(ctx, d, "DescribeTargetGroupAttributes", d.c.DescribeTargetGroupAttributes,
			&elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: tgs[i].TargetGroupArn})
		if errors.Is(err, providers.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, a := range attrs.Attributes {
			if aws.ToString(a.Key) == AttrDeregistrationDelay {
				s, _ := strconv.Atoi(aws.ToString(a.Value))
				tg.DeregistrationDelay = time.Duration(s) * time.Second
			}
		}
		out = append(out, tg)
	}
	return out, nil
}

func (d *LoadBalancing) targetGroups(ctx context.Context) ([]elbtypes.TargetGroup, error) {
	var tgs []elbtypes.TargetGroup
	in := &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(400)}
	for {
		resp, err := lbCall(ctx, d, "DescribeTargetGroups", d.c.DescribeTargetGroups, in)
		if err != nil {
			return nil, err
		}
		tgs = append(tgs, resp.TargetGroups...)
		if aws.ToString(resp.NextMarker) == "" {
			return tgs, nil
		}
		in.Marker = resp.NextMarker
	}
}

func fromTargetGroup(tg *elbtypes.TargetGroup) providers.TargetGroup {
	port, _ := strconv.Atoi(aws.ToString(tg.HealthCheckPort)) // traffic-port: 0, each target's port
	hc := providers.HealthCheck{
		Protocol: string(tg.HealthCheckProtocol), Port: port,
		Interval:           time.Duration(aws.ToInt32(tg.HealthCheckIntervalSeconds)) * time.Second,
		Timeout:            time.Duration(aws.ToInt32(tg.HealthCheckTimeoutSeconds)) * time.Second,
		HealthyThreshold:   int(aws.ToInt32(tg.HealthyThresholdCount)),
		UnhealthyThreshold: int(aws.ToInt32(tg.UnhealthyThresholdCount)),
	}
	if tg.HealthCheckProtocol == elbtypes.ProtocolEnumHttp || tg.HealthCheckProtocol == elbtypes.ProtocolEnumHttps {
		hc.Path = aws.ToString(tg.HealthCheckPath)
	}
	return providers.TargetGroup{
		ID: aws.ToString(tg.TargetGroupArn), Name: aws.ToString(tg.TargetGroupName),
		Protocol: string(tg.Protocol), ProtocolVersion: aws.ToString(tg.ProtocolVersion), Port: int(aws.ToInt32(tg.Port)), HealthCheck: hc,
	}
}

// optional is nil for "": a parameter left out.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// healthCheck are the health-check parameters of a create or modify; zero values are left to
// ELBv2's defaults (a modify keeps them).
type healthCheck struct {
	protocol                              elbtypes.ProtocolEnum
	port, path                            *string
	interval, timeout, healthy, unhealthy *int32
}

func toHealthCheck(hc providers.HealthCheck) healthCheck {
	out := healthCheck{protocol: elbtypes.ProtocolEnum(hc.Protocol), port: aws.String("traffic-port")}
	if hc.Port != 0 {
		out.port = aws.String(strconv.Itoa(hc.Port))
	}
	if hc.Path != "" {
		out.path = aws.String(hc.Path)
	}
	pos := func(n int) *int32 {
		if n <= 0 {
			return nil
		}
		return aws.Int32(int32(n))
	}
	out.interval, out.timeout = pos(int(hc.Interval/time.Second)), pos(int(hc.Timeout/time.Second))
	out.healthy, out.unhealthy = pos(hc.HealthyThreshold), pos(hc.UnhealthyThreshold)
	return out
}

// CreateTargetGroup implements providers.LoadBalancing: a group of type ip in the subnet's VPC
// (ELBv2 answers an identical one that exists), then its deregistration delay, an attribute;
// a crash between the two leaves a group the next pass finds with the wrong delay and corrects.
// ELBv2 verifies no target's certificate and presents none to them, so a spec with TLS or a
// ClientCertificateID is refused (ErrInvalid), never created without them.
func (d *LoadBalancing) CreateTargetGroup(ctx context.Context, spec providers.TargetGroupSpec) (providers.TargetGroup, error) {
	if spec.TLS != nil {
		return providers.TargetGroup{}, invalid(codeUnsupported, "target group %s verifying its targets' certificates (TLS): ELBv2 verifies no target's certificate", spec.Name)
	}
	if spec.ClientCertificateID != "" {
		return providers.TargetGroup{}, invalid(codeUnsupported, "target group %s presenting client certificate %s to its targets: ELBv2 presents no certificate to targets", spec.Name, spec.ClientCertificateID)
	}
	hc := toHealthCheck(spec.HealthCheck)
	resp, err := lbCall(ctx, d, "CreateTargetGroup", d.c.CreateTargetGroup, &elbv2.CreateTargetGroupInput{
		Name: aws.String(spec.Name), Protocol: elbtypes.ProtocolEnum(spec.Protocol), Port: aws.Int32(int32(spec.Port)),
		VpcId: aws.String(d.vpcID), TargetType: elbtypes.TargetTypeEnumIp, Tags: toTags(spec.Tags), ProtocolVersion: optional(spec.ProtocolVersion),
		HealthCheckProtocol: hc.protocol, HealthCheckPort: hc.port, HealthCheckPath: hc.path,
		HealthCheckIntervalSeconds: hc.interval, HealthCheckTimeoutSeconds: hc.timeout,
		HealthyThresholdCount: hc.healthy, UnhealthyThresholdCount: hc.unhealthy,
	})
	if err != nil {
		return providers.TargetGroup{}, err
	}
	if len(resp.TargetGroups) != 1 {
		return providers.TargetGroup{}, fmt.Errorf("ELBv2 answered CreateTargetGroup %s with %d groups", spec.Name, len(resp.TargetGroups))
	}
	tg := fromTargetGroup(&resp.TargetGroups[0])
	if err := d.setDeregistrationDelay(ctx, tg.ID, spec.DeregistrationDelay); err != nil {
		return providers.TargetGroup{}, err
	}
	tg.DeregistrationDelay, tg.Tags = spec.DeregistrationDelay, spec.Tags
	return tg, nil
}

func (d *LoadBalancing) setDeregistrationDelay(ctx context.Context, id string, delay time.Duration) error {
	_, err := lbCall(ctx, d, "ModifyTargetGroupAttributes", d.c.ModifyTargetGroupAttributes, &elbv2.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(id),
		Attributes:     []elbtypes.TargetGroupAttribute{{Key: aws.String(AttrDeregistrationDelay), Value: aws.String(strconv.Itoa(int(delay / time.Second)))}},
	})
	return err
}

// UpdateTargetGroup implements providers.LoadBalancing.
func (d *LoadBalancing) UpdateTargetGroup(ctx context.Context, id string, spec providers.HealthCheck, delay time.Duration) error {
	hc := toHealthCheck(spec)
	if _, err := lbCall(ctx, d, "ModifyTargetGroup", d.c.ModifyTargetGroup, &elbv2.ModifyTargetGroupInput{
		TargetGroupArn: aws.String(id), HealthCheckProtocol: hc.protocol, HealthCheckPort: hc.port, HealthCheckPath: hc.path,
		HealthCheckIntervalSeconds: hc.interval, HealthCheckTimeoutSeconds: hc.timeout,
		HealthyThresholdCount: hc.healthy, UnhealthyThresholdCount: hc.unhealthy,
	}); err != nil {
		return err
	}
	return d.setDeregistrationDelay(ctx, id, delay)
}

// DeleteTargetGroup implements providers.LoadBalancing; a group already gone is done.
func (d *LoadBalancing) DeleteTargetGroup(ctx context.Context, id string) error {
	_, err := lbCall(ctx, d, "DeleteTargetGroup", d.c.DeleteTargetGroup, &elbv2.DeleteTargetGroupInput{TargetGroupArn: aws.String(id)})
	return goneOK(err)
}

func toTargets(ts []providers.Target) []elbtypes.TargetDescription {
	out := make([]elbtypes.TargetDescription, len(ts))
	for i, t := range ts {
		out[i] = elbtypes.TargetDescription{Id: aws.String(t.IP.String()), Port: aws.Int32(int32(t.Port))}
	}
	return out
}

// DescribeTargets implements providers.LoadBalancing with DescribeTargetHealth.
func (d *LoadBalancing) DescribeTargets(ctx context.Context, id string) ([]providers.TargetHealth, error) {
	resp, err := lbCall(ctx, d, "DescribeTargetHealth", d.c.DescribeTargetHealth, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(id)})
	if err != nil {
		return nil, err
	}
	out := make([]providers.TargetHealth, 0, len(resp.TargetHealthDescriptions))
	for _, th := range resp.TargetHealthDescriptions {
		h, err := fromTargetHealth(id, th)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func fromTargetHealth(tgID string, th elbtypes.TargetHealthDescription) (providers.TargetHealth, error) {
	if th.Target == nil {
		return providers.TargetHealth{}, fmt.Errorf("target group %s lists a target without its description", tgID)
	}
	ip, err := netip.ParseAddr(aws.ToString(th.Target.Id))
	if err != nil {
		return providers.TargetHealth{}, fmt.Errorf("target group %s has a target %q that is not an address: %w", tgID, aws.ToString(th.Target.Id), err)
	}
	h := providers.TargetHealth{TargetGroupID: tgID, Target: providers.Target{IP: ip, Port: int(aws.ToInt32(th.Target.Port))}, State: providers.HealthUnhealthy}
	if th.TargetHealth != nil {
		h.Reason = string(th.TargetHealth.Reason)
		switch s := string(th.TargetHealth.State); s {
		case providers.HealthInitial, providers.HealthHealthy, providers.HealthDraining, providers.HealthUnused, providers.HealthUnhealthy:
			h.State = s
		}
	}
	return h, nil
}

// RegisterTargets implements providers.LoadBalancing.
func (d *LoadBalancing) RegisterTargets(ctx context.Context, id string, ts []providers.Target) error {
	_, err := lbCall(ctx, d, "RegisterTargets", d.c.RegisterTargets, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(id), Targets: toTargets(ts)})
	return err
}

// DeregisterTargets implements providers.LoadBalancing.
func (d *LoadBalancing) DeregisterTargets(ctx context.Context, id string, ts []providers.Target) error {
	_, err := lbCall(ctx, d, "DeregisterTargets", d.c.DeregisterTargets, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(id), Targets: toTargets(ts)})
	return err
}
