package awsapi_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestELBv2Attributes: source ranges and the deregistration delay set as ELBv2 attributes are
// what the JSON API sees and what the Describe*Attributes answer; ModifyTargetGroup changes the
// settings it is given and keeps the others.
func TestELBv2Attributes(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	c := w.elb(servertest.AWSKey, elbNoRetry)
	lb := must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String("web"), Type: types.LoadBalancerTypeEnumNetwork, Subnets: []string{w.subnet.SubnetID},
	})).of(t).LoadBalancers[0]
	must(c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: lb.LoadBalancerArn,
		Attributes:      []types.LoadBalancerAttribute{{Key: aws.String(api.AttributeSourceRanges), Value: aws.String("203.0.113.0/24,198.51.100.7/32")}},
	})).of(t)
	attrs := must(c.DescribeLoadBalancerAttributes(ctx, &elb.DescribeLoadBalancerAttributesInput{LoadBalancerArn: lb.LoadBalancerArn})).of(t)
	if len(attrs.Attributes) != 1 || aws.ToString(attrs.Attributes[0].Value) != "203.0.113.0/24,198.51.100.7/32" {
		t.Fatalf("load balancer attributes %+v", attrs.Attributes)
	}
	js := must(w.Admin.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})).of(t)
	if len(js.LoadBalancers) != 1 || len(js.LoadBalancers[0].SourceRanges) != 2 {
		t.Fatalf("the JSON API sees %+v", js.LoadBalancers)
	}
	_, err := c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: lb.LoadBalancerArn,
		Attributes:      []types.LoadBalancerAttribute{{Key: aws.String(api.AttributeSourceRanges), Value: aws.String("not-a-cidr")}},
	})
	wantAPIError(t, err, "ValidationError", 400)
	_, err = c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: lb.LoadBalancerArn,
		Attributes:      []types.LoadBalancerAttribute{{Key: aws.String(api.AttributeAccessLogs), Value: aws.String("true")}},
	})
	wantAPIError(t, err, "ValidationError", 400) // a network load balancer has no access log here

	// An application load balancer's access log is switched on and off on its own: the source
	// ranges set before stay.
	alb := must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String("app"), Type: types.LoadBalancerTypeEnumApplication, Subnets: []string{w.subnet.SubnetID},
	})).of(t).LoadBalancers[0]
	setALB := func(key, value string) {
		t.Helper()
		must(c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{LoadBalancerArn: alb.LoadBalancerArn,
			Attributes: []types.LoadBalancerAttribute{{Key: aws.String(key), Value: aws.String(value)}}})).of(t)
	}
	albAttrs := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, a := range must(c.DescribeLoadBalancerAttributes(ctx, &elb.DescribeLoadBalancerAttributesInput{LoadBalancerArn: alb.LoadBalancerArn})).of(t).Attributes {
			out[aws.ToString(a.Key)] = aws.ToString(a.Value)
		}
		return out
	}
	if got := albAttrs(); got[api.AttributeAccessLogs] != "false" {
		t.Fatalf("a new application load balancer's attributes %v: want %s false", got, api.AttributeAccessLogs)
	}
	setALB(api.AttributeSourceRanges, "203.0.113.0/24")
	setALB(api.AttributeAccessLogs, "true")
	if got := albAttrs(); got[api.AttributeAccessLogs] != "true" || got[api.AttributeSourceRanges] != "203.0.113.0/24" {
		t.Fatalf("after switching the access log on: %v", got)
	}
	for _, l := range must(w.Admin.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})).of(t).LoadBalancers {
		if l.AccessLogs != (l.LoadBalancerName == "app") {
			t.Fatalf("the JSON API sees %s with AccessLogs %v", l.LoadBalancerName, l.AccessLogs)
		}
	}
	setALB(api.AttributeSourceRanges, "")
	if got := albAttrs(); got[api.AttributeAccessLogs] != "true" || got[api.AttributeSourceRanges] != "" {
		t.Fatalf("after clearing the source ranges: %v", got)
	}
	_, err = c.ModifyLoadBalancerAttributes(ctx, &elb.ModifyLoadBalancerAttributesInput{
		LoadBalancerArn: alb.LoadBalancerArn,
		Attributes:      []types.LoadBalancerAttribute{{Key: aws.String(api.AttributeAccessLogs), Value: aws.String("yes")}},
	})
	wantAPIError(t, err, "ValidationError", 400)
	setALB(api.AttributeAccessLogs, "false")
	if got := albAttrs(); got[api.AttributeAccessLogs] != "false" {
		t.Fatalf("after switching the access log off: %v", got)
	}

	tg := must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web-tg"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(80), VpcId: aws.String(w.subnet.VpcID),
		TargetType: types.TargetTypeEnumIp, HealthCheckIntervalSeconds: aws.Int32(15), HealthyThresholdCount: aws.Int32(2),
	})).of(t).TargetGroups[0]
	must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{
		TargetGroupArn: tg.TargetGroupArn,
		Attributes:     []types.TargetGroupAttribute{{Key: aws.String(api.AttributeDeregistrationDelay), Value: aws.String("7")}},
	})).of(t)
	tgAttrs := must(c.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn})).of(t)
	if len(tgAttrs.Attributes) != 1 || aws.ToString(tgAttrs.Attributes[0].Value) != "7" {
		t.Fatalf("target group attributes %+v", tgAttrs.Attributes)
	}
	mod := must(c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{
		TargetGroupArn: tg.TargetGroupArn, HealthCheckProtocol: types.ProtocolEnumHttp, HealthCheckPath: aws.String("/ready"),
	})).of(t).TargetGroups[0]
	if mod.HealthCheckProtocol != types.ProtocolEnumHttp || aws.ToString(mod.HealthCheckPath) != "/ready" ||
		aws.ToInt32(mod.HealthCheckIntervalSeconds) != 15 || aws.ToInt32(mod.HealthyThresholdCount) != 2 {
		t.Fatalf("modified %+v; want HTTP /ready and the interval and threshold kept", mod)
	}
	_, err = c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/00000000000000000")})
	wantAPIError(t, err, "TargetGroupNotFound", 400)
	_, err = w.elb(servertest.InstanceAWSKey(t, w.instances[0]), elbNoRetry).DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn})
	wantAPIError(t, err, "AccessDenied", 403)
}

// TestDescribeVpcs: the VPC's CIDR as EC2 shows it, to an instance too.
func TestDescribeVpcs(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	out := must(w.instanceClient(t, 0).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{w.subnet.VpcID}})).of(t)
	if len(out.Vpcs) != 1 || aws.ToString(out.Vpcs[0].CidrBlock) != "10.0.0.0/16" || len(out.Vpcs[0].CidrBlockAssociationSet) != 1 ||
		aws.ToString(out.Vpcs[0].CidrBlockAssociationSet[0].CidrBlock) != "10.0.0.0/16" {
		t.Fatalf("vpcs %+v", out.Vpcs)
	}
	_, err := w.admin().DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-00000000000000000"}}, noRetry)
	wantAPIError(t, err, "InvalidVpcID.NotFound", 400)
}
