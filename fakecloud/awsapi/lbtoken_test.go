package awsapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// TestLoadBalancerKeyIsScoped (finding 6 of issue 18) on the AWS front end: a load-balancer
// token's key pair may drive ELBv2 and ACM and look up subnets, as the aws driver of
// lbcontroller does, and is refused (UnauthorizedOperation, 403) what only the admin may do:
// describe instances (with their tokens), create or describe interfaces, assign addresses. A
// revoked token's key is unknown.
func TestLoadBalancerKeyIsScoped(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	tok := w.LoadBalancerToken(t)
	key := servertest.LoadBalancerAWSKey(tok)
	e, lb, c := w.ec2Client(key, noRetry), w.elb(key, elbNoRetry), w.acmClient(key)

	_, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = e.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(w.subnet.SubnetID)})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	_, err = e.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(w.instances[0].NetworkInterfaces[0].NetworkInterfaceID), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	wantAPIError(t, err, "UnauthorizedOperation", http.StatusForbidden)
	if got := must(w.Admin.DescribeInstances(ctx, &api.DescribeInstancesRequest{})).of(t); len(got.Instances) != 1 || got.Instances[0].State != w.instances[0].State {
		t.Fatalf("the refused calls changed the instances: %+v", got.Instances)
	}

	subnets := must(e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{w.subnet.SubnetID}})).of(t)
	if len(subnets.Subnets) != 1 {
		t.Fatalf("DescribeSubnets with the load-balancer key answered %d subnets", len(subnets.Subnets))
	}
	tg := must(lb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web-tg"), Protocol: elbtypes.ProtocolEnumTcp, Port: aws.Int32(80),
		VpcId: subnets.Subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumIp,
	})).of(t)
	must(lb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Type: elbtypes.LoadBalancerTypeEnumNetwork, Subnets: []string{w.subnet.SubnetID}})).of(t)
	must(lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroups[0].TargetGroupArn})).of(t)
	must(c.ListCertificates(ctx, &acm.ListCertificatesInput{})).of(t)

	must(w.Admin.DeleteLoadBalancerToken(ctx, &api.DeleteLoadBalancerTokenRequest{TokenID: tok.TokenID})).of(t)
	_, err = e.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{}})
	wantAPIError(t, err, "AuthFailure", http.StatusUnauthorized)
}
