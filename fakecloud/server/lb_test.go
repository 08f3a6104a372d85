package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

// lbFixture adds a load balancer with a TCP listener on port 80 forwarding to a target group.
type lbFixture struct {
	*fixture
	lb       api.LoadBalancer
	tg       api.TargetGroup
	listener api.Listener
}

func newLBFixture(t *testing.T, o servertest.Options) *lbFixture {
	t.Helper()
	f := newFixture(t, o)
	ctx := context.Background()
	lb, err := f.Admin.CreateLoadBalancer(ctx, &api.CreateLoadBalancerRequest{Name: "web", SubnetID: f.subnet.SubnetID})
	if err != nil {
		t.Fatalf("CreateLoadBalancer: %v", err)
	}
	tg, err := f.Admin.CreateTargetGroup(ctx, &api.CreateTargetGroupRequest{Name: "web", Protocol: api.ProtocolTCP, Port: 8080, VpcID: f.vpc.VpcID})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	l, err := f.Admin.CreateListener(ctx, &api.CreateListenerRequest{LoadBalancerID: lb.LoadBalancer.LoadBalancerID, Protocol: api.ProtocolTCP, Port: 80,
		DefaultActions: []api.Action{{Type: api.ActionTypeForward, TargetGroupID: tg.TargetGroup.TargetGroupID}}})
	if err != nil {
		t.Fatalf("CreateListener: %v", err)
	}
	_, err = f.Admin.RegisterTargets(ctx, &api.RegisterTargetsRequest{TargetGroupID: tg.TargetGroup.TargetGroupID, Targets: []api.Target{{IP: "10.0.0.50"}}})
	if err != nil {
		t.Fatalf("RegisterTargets: %v", err)
	}
	return &lbFixture{fixture: f, lb: lb.LoadBalancer, tg: tg.TargetGroup, listener: l.Listener}
}

func TestLoadBalancerBadInputIsRefusedAndChangesNothing(t *testing.T) {
	f := newLBFixture(t, servertest.Options{})
	lb, tg, vpc, sn := f.lb.LoadBalancerID, f.tg.TargetGroupID, f.vpc.VpcID, f.subnet.SubnetID
	fwd := `"DefaultActions": [{"Type": "forward", "TargetGroupId": "` + tg + `"}]`
	tests := []struct {
		name, action, body string
		status             int
		code, mentions     string
	}{
		{"lb name missing", api.ActionCreateLoadBalancer, `{"SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "Name"},
		{"lb name bad characters", api.ActionCreateLoadBalancer, `{"Name": "a_b", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "a_b"},
		{"lb name too long", api.ActionCreateLoadBalancer, `{"Name": "` + strings.Repeat("a", 33) + `", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "32"},
		{"lb name hyphen", api.ActionCreateLoadBalancer, `{"Name": "-a", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "hyphen"},
		{"lb name internal-", api.ActionCreateLoadBalancer, `{"Name": "internal-a", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "internal-"},
		{"lb scheme", api.ActionCreateLoadBalancer, `{"Name": "a", "Scheme": "public", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "Scheme"},
		{"lb type", api.ActionCreateLoadBalancer, `{"Name": "a", "Type": "gateway", "SubnetId": "` + sn + `"}`, 400, api.CodeValidationError, "Type"},
		{"lb subnet missing", api.ActionCreateLoadBalancer, `{"Name": "a"}`, 400, api.CodeValidationError, "SubnetId"},
		{"lb subnet unknown", api.ActionCreateLoadBalancer, `{"Name": "a", "SubnetId": "subnet-nope"}`, 400, api.CodeInvalidSubnetIDNotFound, "subnet-nope"},
		{"lb duplicate name", api.ActionCreateLoadBalancer, `{"Name": "web", "Scheme": "internal", "SubnetId": "` + sn + `"}`, 409, api.CodeDuplicateLoadBalancerName, "web"},
		{"lb bad tag", api.ActionCreateLoadBalancer, `{"Name": "a", "SubnetId": "` + sn + `", "Tags": [{"Key": ""}]}`, 400, api.CodeValidationError, "Tags"},
		{"lb unknown field", api.ActionCreateLoadBalancer, `{"Name": "a", "SubnetId": "` + sn + `", "Subnets": []}`, 400, api.CodeInvalidRequest, "Subnets"},
		{"describe unknown lb", api.ActionDescribeLoadBalancers, `{"LoadBalancerIds": ["lb-nope"]}`, 400, api.CodeLoadBalancerNotFound, "lb-nope"},
		{"describe bad filter", api.ActionDescribeLoadBalancers, `{"Filters": [{"Name": "color", "Values": ["red"]}]}`, 400, api.CodeValidationError, "color"},
		{"delete lb no id", api.ActionDeleteLoadBalancer, `{}`, 400, api.CodeValidationError, "LoadBalancerId"},
		{"source range not a CIDR", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `", "Attributes": [{"Key": "source_ranges.cidr_blocks", "Value": "10.0.0.0/8,banana"}]}`, 400, api.CodeValidationError, "banana"},
		{"source range host bits", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `", "Attributes": [{"Key": "source_ranges.cidr_blocks", "Value": "10.0.0.1/8"}]}`, 400, api.CodeValidationError, "10.0.0.0/8"},
		{"unknown lb attribute", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `", "Attributes": [{"Key": "idle_timeout", "Value": "1"}]}`, 400, api.CodeValidationError, "idle_timeout"},
		{"access log on a network lb", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `", "Attributes": [{"Key": "access_logs.enabled", "Value": "true"}]}`, 400, api.CodeValidationError, "application"},
		{"access log not a bool", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `", "Attributes": [{"Key": "access_logs.enabled", "Value": "on"}]}`, 400, api.CodeValidationError, "on"},
		{"no lb attributes", api.ActionModifyLoadBalancerAttributes, `{"LoadBalancerId": "` + lb + `"}`, 400, api.CodeValidationError, "Attributes"},
		{"tg protocol", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "SCTP", "Port": 1, "VpcId": "` + vpc + `"}`, 400, api.CodeValidationError, "SCTP"},
		{"tg port", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 70000, "VpcId": "` + vpc + `"}`, 400, api.CodeValidationError, "70000"},
		{"tg target type", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "TargetType": "instance"}`, 400, api.CodeValidationError, "instance"},
		{"tg vpc unknown", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "vpc-nope"}`, 400, api.CodeInvalidVpcIDNotFound, "vpc-nope"},
		{"hc protocol", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"Protocol": "HTTPS"}}`, 400, api.CodeValidationError, "HealthCheck.Protocol"},
		{"hc port", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"Port": "eighty"}}`, 400, api.CodeValidationError, "HealthCheck.Port"},
		{"hc path on tcp", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"Path": "/x"}}`, 400, api.CodeValidationError, "HealthCheck.Path"},
		{"hc path relative", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"Protocol": "HTTP", "Path": "x"}}`, 400, api.CodeValidationError, "HealthCheck.Path"},
		{"hc matcher", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"Protocol": "HTTP", "Matcher": "299-200"}}`, 400, api.CodeValidationError, "HealthCheck.Matcher"},
		{"hc interval", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"IntervalSeconds": 1}}`, 400, api.CodeValidationError, "HealthCheck.IntervalSeconds"},
		{"hc timeout", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"TimeoutSeconds": 200}}`, 400, api.CodeValidationError, "HealthCheck.TimeoutSeconds"},
		{"hc thresholds", api.ActionCreateTargetGroup, `{"Name": "a", "Protocol": "TCP", "Port": 1, "VpcId": "` + vpc + `", "HealthCheck": {"HealthyThresholdCount": 11}}`, 400, api.CodeValidationError, "HealthCheck.HealthyThresholdCount"},
		{"tg duplicate name", api.ActionCreateTargetGroup, `{"Name": "web", "Protocol": "UDP", "Port": 1, "VpcId": "` + vpc + `"}`, 409, api.CodeDuplicateTargetGroupName, "web"},
		{"modify unknown tg", api.ActionModifyTargetGroup, `{"TargetGroupId": "tg-nope", "HealthCheck": {}}`, 400, api.CodeTargetGroupNotFound, "tg-nope"},
		{"delay not a number", api.ActionModifyTargetGroupAttributes, `{"TargetGroupId": "` + tg + `", "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "soon"}]}`, 400, api.CodeValidationError, "soon"},
		{"delay too long", api.ActionModifyTargetGroupAttributes, `{"TargetGroupId": "` + tg + `", "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "3601"}]}`, 400, api.CodeValidationError, "3601"},
		{"tg in use", api.ActionDeleteTargetGroup, `{"TargetGroupId": "` + tg + `"}`, 409, api.CodeResourceInUse, f.listener.ListenerID},
		{"target not an IP", api.ActionRegisterTargets, `{"TargetGroupId": "` + tg + `", "Targets": [{"Ip": "pod-a"}]}`, 400, api.CodeValidationError, "Targets[0].Ip"},
		{"target outside vpc", api.ActionRegisterTargets, `{"TargetGroupId": "` + tg + `", "Targets": [{"Ip": "192.168.1.1"}]}`, 400, api.CodeInvalidTarget, "192.168.1.1"},
		{"target port", api.ActionRegisterTargets, `{"TargetGroupId": "` + tg + `", "Targets": [{"Ip": "10.0.0.9", "Port": 65536}]}`, 400, api.CodeValidationError, "Targets[0].Port"},
		{"no targets", api.ActionRegisterTargets, `{"TargetGroupId": "` + tg + `"}`, 400, api.CodeValidationError, "Targets"},
		{"deregister unknown target", api.ActionDeregisterTargets, `{"TargetGroupId": "` + tg + `", "Targets": [{"Ip": "10.0.0.9"}]}`, 400, api.CodeInvalidTarget, "10.0.0.9"},
		{"health of unknown tg", api.ActionDescribeTargetHealth, `{"TargetGroupId": "tg-nope"}`, 400, api.CodeTargetGroupNotFound, "tg-nope"},
		{"listener protocol", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "HTTP", "Port": 81, ` + fwd + `}`, 400, api.CodeValidationError, "HTTP"},
		{"listener port", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "TCP", "Port": 0, ` + fwd + `}`, 400, api.CodeValidationError, "Port"},
		{"listener no action", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "TCP", "Port": 81}`, 400, api.CodeValidationError, "DefaultActions"},
		{"listener action type", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "TCP", "Port": 81, "DefaultActions": [{"Type": "redirect", "TargetGroupId": "` + tg + `"}]}`, 400, api.CodeValidationError, "redirect"},
		{"listener unknown lb", api.ActionCreateListener, `{"LoadBalancerId": "lb-nope", "Protocol": "TCP", "Port": 81, ` + fwd + `}`, 400, api.CodeLoadBalancerNotFound, "lb-nope"},
		{"listener unknown tg", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "TCP", "Port": 81, "DefaultActions": [{"Type": "forward", "TargetGroupId": "tg-nope"}]}`, 400, api.CodeTargetGroupNotFound, "tg-nope"},
		{"listener protocols", api.ActionCreateListener, `{"LoadBalancerId": "` + lb + `", "Protocol": "UDP", "Port": 81, ` + fwd + `}`, 400, api.CodeIncompatibleProtocols, "UDP"},
		{"delete unknown listener", api.ActionDeleteListener, `{"ListenerId": "listener-nope"}`, 400, api.CodeListenerNotFound, "listener-nope"},
		{"describe listeners both", api.ActionDescribeListeners, `{"LoadBalancerId": "` + lb + `", "ListenerIds": ["x"]}`, 400, api.CodeValidationError, "not both"},
		{"tag unknown kind", api.ActionAddTags, `{"ResourceIds": ["eni-1"], "Tags": [{"Key": "a"}]}`, 400, api.CodeValidationError, "eni-1"},
		{"tag no resources", api.ActionAddTags, `{"Tags": [{"Key": "a"}]}`, 400, api.CodeValidationError, "ResourceIds"},
		{"remove no keys", api.ActionRemoveTags, `{"ResourceIds": ["` + lb + `"]}`, 400, api.CodeValidationError, "TagKeys"},
		{"describe tags unknown", api.ActionDescribeTags, `{"ResourceIds": ["lb-nope"]}`, 400, api.CodeLoadBalancerNotFound, "lb-nope"},
		{"report bad state", api.ActionReportTargetHealth, `{"Reports": [{"TargetGroupId": "` + tg + `", "Ip": "10.0.0.50", "Port": 8080, "State": "draining"}]}`, 400, api.CodeValidationError, "Reports[0].State"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot(t)
			a := post(t, f.URL, servertest.AdminToken, tt.action, []byte(tt.body))
			if a.status != tt.status {
				t.Errorf("status %d, want %d; body %s", a.status, tt.status, a.body)
			}
			e := a.errorOf(t)
			if e.Code != tt.code {
				t.Errorf("code %q, want %q; message %q", e.Code, tt.code, e.Message)
			}
			if !strings.Contains(e.Message, tt.mentions) {
				t.Errorf("message %q does not mention %q", e.Message, tt.mentions)
			}
			mustUnchanged(t, before, f.snapshot(t))
		})
	}
}

func TestLoadBalancerActionsNeedTheAdminToken(t *testing.T) {
	f := newLBFixture(t, servertest.Options{})
	inst := f.Client(f.instances[0].Token)
	_, err := inst.DescribeLoadBalancers(context.Background(), &api.DescribeLoadBalancersRequest{})
	if !errors.Is(err, api.ErrUnauthorizedOperation) {
		t.Errorf("an instance token described load balancers: %v", err)
	}
	_, err = inst.ReportTargetHealth(context.Background(), &api.ReportTargetHealthRequest{})
	if !errors.Is(err, api.ErrUnauthorizedOperation) {
		t.Errorf("an instance token reported target health: %v", err)
	}
}

func TestLoadBalancerActionsAreThrottledAndFaulted(t *testing.T) {
	f := newLBFixture(t, servertest.Options{Throttle: &server.ThrottleConfig{
		Overrides: map[string]server.ThrottleLimit{api.ActionRegisterTargets: {Burst: 1, Rate: 0.001}},
	}})
	ctx := context.Background()
	reg := &api.RegisterTargetsRequest{TargetGroupID: f.tg.TargetGroupID, Targets: []api.Target{{IP: "10.0.0.51"}}}
	if _, err := f.Admin.RegisterTargets(ctx, reg); !errors.Is(err, api.ErrRequestLimitExceeded) {
		t.Errorf("RegisterTargets past its bucket: %v, want RequestLimitExceeded", err)
	}
	if _, err := f.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{Action: api.ActionDescribeTargetHealth, ErrorRate: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err := f.Admin.DescribeTargetHealth(ctx, &api.DescribeTargetHealthRequest{TargetGroupID: f.tg.TargetGroupID})
	if !errors.Is(err, api.ErrInternalError) {
		t.Errorf("DescribeTargetHealth under a 100%% fault: %v, want InternalError", err)
	}
}

// A client watching the change stream sees a target's health move without polling.
func TestTargetHealthIsInTheChangeStream(t *testing.T) {
	f := newLBFixture(t, servertest.Options{})
	ctx := context.Background()
	since := f.snapshot(t).Seq
	a := post(t, f.URL, servertest.AdminToken, api.ActionReportTargetHealth, []byte(`{"Reports": [{"TargetGroupId": "`+
		f.tg.TargetGroupID+`", "Ip": "10.0.0.50", "Port": 8080, "State": "healthy"}]}`))
	if a.status != 200 {
		t.Fatalf("ReportTargetHealth: %d %s", a.status, a.body)
	}
	ch, err := f.Admin.GetChanges(ctx, &api.GetChangesRequest{Since: since, WaitMillis: 5000})
	if err != nil {
		t.Fatal(err)
	}
	want := api.TargetID(f.tg.TargetGroupID, "10.0.0.50", 8080)
	if len(ch.Changes) != 1 || ch.Changes[0].ID != want || ch.Changes[0].Target == nil || ch.Changes[0].Target.TargetHealth.State != api.TargetHealthHealthy {
		body, _ := json.Marshal(ch.Changes)
		t.Fatalf("changes after the report: %s; want one healthy change of %s", body, want)
	}
	snap := f.snapshot(t)
	if len(snap.Targets) != 1 || snap.Targets[0].TargetHealth.State != api.TargetHealthHealthy || len(snap.LoadBalancers) != 1 {
		t.Errorf("snapshot after the report: %+v", snap.Targets)
	}
}
