package awsapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func (w *world) elb(k server.AWSKey, opts ...func(*elb.Options)) *elb.Client {
	return elb.New(elb.Options{Region: region, BaseEndpoint: aws.String(w.URL), Credentials: staticCreds(k)}, opts...)
}

func elbNoRetry(o *elb.Options) { o.RetryMaxAttempts = 1 }

var (
	lbARN       = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/web/[0-9a-f]{17}$`)
	tgARN       = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-tg/[0-9a-f]{17}$`)
	listenerARN = regexp.MustCompile(`^arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/net/web/[0-9a-f]{17}/[0-9a-f]{17}$`)
)

// TestELBv2 walks a network load balancer's life through the SDK's ELBv2 client, checking the
// JSON API sees the same.
func TestELBv2(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 2)
	ctx := context.Background()
	c := w.elb(servertest.AWSKey)

	tgOut := must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{
		Name: aws.String("web-tg"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(8080), VpcId: aws.String(w.subnet.VpcID),
		TargetType: types.TargetTypeEnumIp, HealthCheckProtocol: types.ProtocolEnumHttp, HealthCheckPath: aws.String("/healthz"),
		HealthCheckIntervalSeconds: aws.Int32(15), HealthCheckTimeoutSeconds: aws.Int32(5), Matcher: &types.Matcher{HttpCode: aws.String("200")},
		Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("test")}},
	})).of(t)
	tg := tgOut.TargetGroups[0]
	tgArn := aws.ToString(tg.TargetGroupArn)
	if !tgARN.MatchString(tgArn) || tg.Protocol != types.ProtocolEnumTcp || aws.ToInt32(tg.Port) != 8080 || tg.TargetType != types.TargetTypeEnumIp ||
		tg.HealthCheckProtocol != types.ProtocolEnumHttp || aws.ToString(tg.HealthCheckPath) != "/healthz" || aws.ToInt32(tg.HealthCheckIntervalSeconds) != 15 || aws.ToInt32(tg.HealthCheckTimeoutSeconds) != 5 ||
		aws.ToString(tg.Matcher.HttpCode) != "200" || aws.ToString(tg.HealthCheckPort) != "traffic-port" || len(tg.LoadBalancerArns) != 0 {
		t.Fatalf("target group %+v", tg)
	}

	lbOut := must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
		Name: aws.String("web"), Type: types.LoadBalancerTypeEnumNetwork, Scheme: types.LoadBalancerSchemeEnumInternal,
		Subnets: []string{w.subnet.SubnetID}, Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("test")}},
	})).of(t)
	lb := lbOut.LoadBalancers[0]
	lbArn := aws.ToString(lb.LoadBalancerArn)
	jsonLB := must(w.Admin.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{Names: []string{"web"}})).of(t).LoadBalancers[0]
	if !lbARN.MatchString(lbArn) || !strings.HasSuffix(lbArn, strings.TrimPrefix(jsonLB.LoadBalancerID, "lb-")) || lb.State.Code != types.LoadBalancerStateEnumActive ||
		lb.Type != types.LoadBalancerTypeEnumNetwork || lb.Scheme != types.LoadBalancerSchemeEnumInternal || aws.ToString(lb.VpcId) != w.subnet.VpcID ||
		len(lb.AvailabilityZones) != 1 || aws.ToString(lb.AvailabilityZones[0].SubnetId) != w.subnet.SubnetID ||
		aws.ToString(lb.AvailabilityZones[0].LoadBalancerAddresses[0].PrivateIPv4Address) != jsonLB.PrivateIPAddress || aws.ToString(lb.DNSName) == "" {
		t.Fatalf("load balancer %+v (the JSON API: %+v)", lb, jsonLB)
	}

	lsOut := must(c.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbArn), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(80),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}},
	})).of(t)
	ls := lsOut.Listeners[0]
	if !listenerARN.MatchString(aws.ToString(ls.ListenerArn)) || aws.ToString(ls.LoadBalancerArn) != lbArn || aws.ToInt32(ls.Port) != 80 ||
		len(ls.DefaultActions) != 1 || aws.ToString(ls.DefaultActions[0].TargetGroupArn) != tgArn {
		t.Fatalf("listener %+v", ls)
	}
	// ARNs are the same strings in every answer: clients compare them.
	groups := must(c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lbArn)})).of(t).TargetGroups
	if len(groups) != 1 || aws.ToString(groups[0].TargetGroupArn) != tgArn || !cmp.Equal(groups[0].LoadBalancerArns, []string{lbArn}) {
		t.Fatalf("target groups of the load balancer: %+v", groups)
	}
	listeners := must(c.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbArn)})).of(t).Listeners
	if len(listeners) != 1 || aws.ToString(listeners[0].ListenerArn) != aws.ToString(ls.ListenerArn) {
		t.Fatalf("listeners %+v", listeners)
	}
	byARN := must(c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{aws.ToString(ls.ListenerArn)}})).of(t).Listeners
	if len(byARN) != 1 || aws.ToString(byARN[0].DefaultActions[0].ForwardConfig.TargetGroups[0].TargetGroupArn) != tgArn {
		t.Fatalf("listener by ARN %+v", byARN)
	}
	// A network listener also takes its one group as a ForwardConfig, as the SDKs' users send it.
	viaConfig := must(c.CreateListener(ctx, &elb.CreateListenerInput{
		LoadBalancerArn: aws.String(lbArn), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(81),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: aws.String(tgArn), Weight: aws.Int32(1)}}}}},
	})).of(t).Listeners[0]
	if !listenerARN.MatchString(aws.ToString(viaConfig.ListenerArn)) || aws.ToString(viaConfig.DefaultActions[0].TargetGroupArn) != tgArn {
		t.Fatalf("listener from a ForwardConfig %+v", viaConfig)
	}
	must(c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: viaConfig.ListenerArn})).of(t)

	a, b := w.instances[0].PrivateIPAddress, w.instances[1].PrivateIPAddress
	must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String(a)}, {Id: aws.String(b), Port: aws.Int32(9090)}}})).of(t)
	if _, err := w.Admin.ReportTargetHealth(ctx, &api.ReportTargetHealthRequest{Reports: []api.TargetHealthReport{{TargetGroupID: groupID(tgArn), IP: a, Port: 8080, State: api.TargetHealthHealthy}}}); err != nil {
		t.Fatal(err)
	}
	health := func() map[string]string {
		out := must(c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})).of(t)
		m := map[string]string{}
		for _, d := range out.TargetHealthDescriptions {
			m[aws.ToString(d.Target.Id)+":"+itoa32(d.Target.Port)] = string(d.TargetHealth.State) + "/" + string(d.TargetHealth.Reason)
		}
		return m
	}
	if got, want := health(), map[string]string{a + ":8080": "healthy/", b + ":9090": "initial/Elb.RegistrationInProgress"}; !cmp.Equal(got, want) {
		t.Fatalf("target health %v; want %v", got, want)
	}
	must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String(b), Port: aws.Int32(9090)}}})).of(t)
	if got := health()[b+":9090"]; got != "draining/Target.DeregistrationInProgress" {
		t.Fatalf("deregistered target: %s", got)
	}
	named := must(c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn), Targets: []types.TargetDescription{{Id: aws.String("10.0.0.99"), Port: aws.Int32(1)}}})).of(t)
	if len(named.TargetHealthDescriptions) != 1 || named.TargetHealthDescriptions[0].TargetHealth.Reason != types.TargetHealthReasonEnumNotRegistered {
		t.Fatalf("a target not registered: %+v", named.TargetHealthDescriptions)
	}

	must(c.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{lbArn, tgArn}, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("net")}}})).of(t)
	must(c.RemoveTags(ctx, &elb.RemoveTagsInput{ResourceArns: []string{tgArn}, TagKeys: []string{"owner"}})).of(t)
	tags := must(c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{lbArn, tgArn}})).of(t).TagDescriptions
	got := map[string][]string{}
	for _, d := range tags {
		for _, tg := range d.Tags {
			got[aws.ToString(d.ResourceArn)] = append(got[aws.ToString(d.ResourceArn)], aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
	}
	if want := map[string][]string{lbArn: {"owner=test", "team=net"}, tgArn: {"team=net"}}; !cmp.Equal(got, want) {
		t.Fatalf("tags %v; want %v", got, want)
	}
	if jsonTags := must(w.Admin.DescribeTags(ctx, &api.DescribeTagsRequest{ResourceIDs: []string{jsonLB.LoadBalancerID}})).of(t); len(jsonTags.TagDescriptions[0].Tags) != 2 {
		t.Fatalf("the JSON API sees the load balancer's tags %+v", jsonTags)
	}

	_, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)})
	wantAPIError(t, err, api.CodeResourceInUse, http.StatusBadRequest)
	must(c.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: ls.ListenerArn})).of(t)
	must(c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(tgArn)})).of(t)
	must(c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(lbArn)})).of(t)
	_, err = c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{lbArn}})
	wantAPIError(t, err, api.CodeLoadBalancerNotFound, http.StatusBadRequest)
	if left := must(w.Admin.DescribeLoadBalancers(ctx, &api.DescribeLoadBalancersRequest{})).of(t); len(left.LoadBalancers) != 0 {
		t.Fatalf("the JSON API still sees %+v", left.LoadBalancers)
	}
}

func TestELBv2PagesAndErrors(t *testing.T) {
	w := newWorld(t, servertest.Options{}, "m5.large", 1)
	ctx := context.Background()
	c := w.elb(servertest.AWSKey, elbNoRetry)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := w.Admin.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: name, Scheme: api.SchemeInternal, SubnetID: w.subnet.SubnetID}); err != nil {
			t.Fatal(err)
		}
	}
	p := elb.NewDescribeLoadBalancersPaginator(c, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(2)})
	var names []string
	for p.HasMorePages() {
		page := must(p.NextPage(ctx)).of(t)
		if len(page.LoadBalancers) > 2 {
			t.Fatalf("a page of %d", len(page.LoadBalancers))
		}
		for _, lb := range page.LoadBalancers {
			names = append(names, aws.ToString(lb.LoadBalancerName))
		}
	}
	if len(names) != 3 {
		t.Fatalf("pages held %v; want the 3 load balancers", names)
	}

	vpc := aws.String(w.subnet.VpcID)
	cases := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown load balancer", func() error {
			_, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{"arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/net/x/00000000000000000"}})
			return err
		}, api.CodeLoadBalancerNotFound, 400},
		{"unknown target group", func() error {
			_, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/00000000000000000")})
			return err
		}, api.CodeTargetGroupNotFound, 400},
		{"not an ARN", func() error {
			_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String("lb-0123")})
			return err
		}, api.CodeValidationError, 400},
		{"a target group ARN for a load balancer", func() error {
			_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/00000000000000000")})
			return err
		}, api.CodeValidationError, 400},
		{"gateway load balancer", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("gwlb"), Type: types.LoadBalancerTypeEnumGateway, Subnets: []string{w.subnet.SubnetID}})
			return err
		}, api.CodeValidationError, 400},
		{"unknown subnet", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("n"), Type: types.LoadBalancerTypeEnumNetwork, Subnets: []string{"subnet-00000000000000000"}})
			return err
		}, "SubnetNotFound", 400},
		{"duplicate name", func() error {
			_, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("a"), Type: types.LoadBalancerTypeEnumNetwork, Scheme: types.LoadBalancerSchemeEnumInternetFacing, Subnets: []string{w.subnet.SubnetID}})
			return err
		}, api.CodeDuplicateLoadBalancerName, 400},
		{"instance targets", func() error {
			_, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("i"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(80), VpcId: vpc})
			return err
		}, api.CodeValidationError, 400},
		{"GENEVE target group", func() error {
			_, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("h"), Protocol: types.ProtocolEnumGeneve, Port: aws.Int32(80), VpcId: vpc, TargetType: types.TargetTypeEnumIp})
			return err
		}, api.CodeValidationError, 400},
		{"target outside the VPC", func() error {
			out, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("t"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(80), VpcId: vpc, TargetType: types.TargetTypeEnumIp})
			if err != nil {
				return err
			}
			_, err = c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: out.TargetGroups[0].TargetGroupArn, Targets: []types.TargetDescription{{Id: aws.String("192.0.2.1")}}})
			return err
		}, api.CodeInvalidTarget, 400},
		{"instance credentials", func() error {
			_, err := w.elb(servertest.InstanceAWSKey(t, w.instances[0]), elbNoRetry).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
			return err
		}, "AccessDenied", 403},
		{"wrong secret", func() error {
			k := servertest.AWSKey
			k.SecretAccessKey += "x"
			_, err := w.elb(k, elbNoRetry).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
			return err
		}, "SignatureDoesNotMatch", 403},
		{"unknown key", func() error {
			k := servertest.AWSKey
			k.AccessKeyID = "AKIAUNKNOWNUNKNOWN00"
			_, err := w.elb(k, elbNoRetry).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
			return err
		}, "InvalidClientTokenId", 403},
		{"missing session token", func() error {
			k := servertest.InstanceAWSKey(t, w.instances[0])
			k.SessionToken = ""
			_, err := w.elb(k, elbNoRetry).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
			return err
		}, "InvalidClientTokenId", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, tc.call(), tc.code, tc.status) })
	}

	t.Run("injected throttle", func(t *testing.T) {
		setFault(t, w, api.Fault{Action: api.ActionDescribeTargetGroups, ErrorRate: 1, ErrorCode: api.CodeRequestLimitExceeded})
		_, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
		wantAPIError(t, err, "Throttling", 400)
		if !retry.NewStandard().IsErrorRetryable(err) {
			t.Fatalf("the SDK's retryer does not retry %v", err)
		}
		setFault(t, w, api.Fault{Action: api.ActionDescribeTargetGroups, ErrorRate: 1, ErrorCode: api.CodeInternalError})
		_, err = c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{})
		wantAPIError(t, err, "InternalFailure", 500)
	})
	t.Run("error document", func(t *testing.T) {
		key := servertest.AWSKey
		r := w.send(t, &key, "elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01&Bogus=1", timeZero)
		if r.status != 400 || !strings.Contains(r.body, `<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>ValidationError</Code>`) ||
			!strings.Contains(r.body, "<RequestId>"+r.header.Get("X-Amzn-Requestid")+"</RequestId></ErrorResponse>") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = w.send(t, &key, "elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01", timeZero)
		if r.status != 200 || !strings.HasPrefix(r.body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult><LoadBalancers>`) ||
			!strings.HasSuffix(r.body, "</DescribeLoadBalancersResult><ResponseMetadata><RequestId>"+r.header.Get("X-Amzn-Requestid")+"</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>") {
			t.Fatalf("%d %s", r.status, r.body)
		}
		// Signed for ELBv2, naming EC2's version: EC2 answers, and refuses the scope.
		w.send(t, &key, "elasticloadbalancing", "Action=DescribeSubnets&Version=2016-11-15", timeZero).ec2Error(t, api.CodeAuthFailure, 401)
	})
}

// groupID is the fakecloud ID a target group ARN names.
func groupID(arn string) string { return "tg-" + arn[strings.LastIndex(arn, "/")+1:] }

func itoa32(n *int32) string {
	if n == nil {
		return "nil"
	}
	return strconv.Itoa(int(*n))
}
