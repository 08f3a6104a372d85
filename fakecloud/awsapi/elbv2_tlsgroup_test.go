package awsapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// TestELBv2TLSTargetGroup: the ELBv2 front end carries fakecloud's TLS target groups as it
// does the others: created with Protocol TLS, described with HealthCheckProtocol TLS (the
// default: a verified handshake) and no path or matcher, checked by TCP after a
// ModifyTargetGroup. What ELBv2 can make forward to one is refused with the reason (its
// application load balancers have HTTP and HTTPS listeners, its network ones do not terminate
// TLS); a terminating TLS listener made with fakecloud's own API serves it, and the group
// then names the application load balancer.
func TestELBv2TLSTargetGroup(t *testing.T) {
	a := newALB(t)
	ctx := context.Background()
	g := must(a.c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("db"), Protocol: types.ProtocolEnumTls, Port: aws.Int32(5432),
		VpcId: aws.String(a.w.subnet.VpcID), TargetType: types.TargetTypeEnumIp})).of(t).TargetGroups[0]
	if g.Protocol != types.ProtocolEnumTls || g.ProtocolVersion != nil || g.HealthCheckProtocol != types.ProtocolEnumTls || g.HealthCheckPath != nil ||
		g.Matcher != nil || aws.ToString(g.HealthCheckPort) != api.HealthCheckPortTraffic {
		t.Fatalf("TLS target group %+v; want Protocol and HealthCheckProtocol TLS, no version, path or matcher", g)
	}
	arn := aws.ToString(g.TargetGroupArn)
	_, err := a.c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("db-http"), Protocol: types.ProtocolEnumTls, Port: aws.Int32(5432),
		VpcId: aws.String(a.w.subnet.VpcID), TargetType: types.TargetTypeEnumIp, HealthCheckProtocol: types.ProtocolEnumHttp})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "not supported for TLS target groups")
	m := must(a.c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn), HealthCheckProtocol: types.ProtocolEnumTcp})).of(t).TargetGroups[0]
	if m.HealthCheckProtocol != types.ProtocolEnumTcp || m.Matcher != nil {
		t.Errorf("after ModifyTargetGroup to TCP: %+v", m)
	}

	_, err = a.c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: aws.String(a.listener), DefaultActions: forwardTo(arn)})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "is a TLS group: only a TLS listener's rule that terminates TLS can forward to it (an HTTP listener")
	_, err = a.c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: aws.String(a.listener), Priority: aws.Int32(1), Actions: forwardTo(arn),
		Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), PathPatternConfig: &types.PathPatternConditionConfig{Values: []string{"/db"}}}}})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "is a TLS group")
	nlb := must(a.c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("nlb"), Type: types.LoadBalancerTypeEnumNetwork,
		Subnets: []string{a.w.subnet.SubnetID}})).of(t).LoadBalancers[0]
	_, err = a.c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: nlb.LoadBalancerArn, Protocol: types.ProtocolEnumTcp, Port: aws.Int32(5432), DefaultActions: forwardTo(arn)})
	wantAPIErrorNaming(t, err, api.CodeValidationError, "network load balancer's TCP listener")

	certPEM, keyPEM := selfSignedPEM(t, "db.example.com")
	cert := must(a.w.Admin.ImportCertificate(ctx, &api.ImportCertificateRequest{Certificate: certPEM, PrivateKey: keyPEM})).of(t).Certificate
	lbID := "lb-" + lastSegment(a.lb)
	must(a.w.Admin.CreateListener(ctx, &api.CreateListenerRequest{LoadBalancerID: lbID, Protocol: api.ProtocolTLS, Port: 5432,
		Certificates:   []api.ListenerCertificate{{CertificateID: cert.CertificateID}},
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: "tg-" + lastSegment(arn)}}})).of(t)
	served := must(a.c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})).of(t).TargetGroups[0]
	if diff := cmp.Diff([]string{a.lb}, served.LoadBalancerArns); diff != "" || !strings.Contains(a.lb, ":loadbalancer/app/") {
		t.Errorf("the TLS group's load balancers (-want +got):\n%s", diff)
	}
}
