package cli

import (
	"strings"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
)

func TestLoadBalancerCommands(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	vpc := mustJSON[api.CreateVpcResponse](t, env, "vpc", "create", "--cidr", "10.0.0.0/16").Vpc
	sn := mustJSON[api.CreateSubnetResponse](t, env, "subnet", "create", "--vpc", vpc.VpcID, "--cidr", "10.0.0.0/24").Subnet
	lb := mustJSON[api.CreateLoadBalancerResponse](t, env, "lb", "create", "web", "--subnet", sn.SubnetID, "--tag", "owner=flatnet").LoadBalancer
	if lb.Scheme != api.SchemeInternetFacing || lb.PublicIPAddress == "" {
		t.Errorf("lb create: %+v, want an internet-facing load balancer with a public VIP", lb)
	}
	tg := mustJSON[api.CreateTargetGroupResponse](t, env, "tg", "create", "web", "--vpc", vpc.VpcID, "--port", "8080",
		"--hc-protocol", "HTTP", "--hc-path", "/healthz").TargetGroup
	if tg.HealthCheck.Path != "/healthz" || tg.HealthCheck.Matcher != "200-399" {
		t.Errorf("tg create health check: %+v", tg.HealthCheck)
	}
	mustJSON[api.CreateListenerResponse](t, env, "lb", "listener", "create", lb.LoadBalancerID, "--port", "80", "--target-group", tg.TargetGroupID)
	mustJSON[api.ModifyLoadBalancerAttributesResponse](t, env, "lb", "source-ranges", lb.LoadBalancerID, "203.0.113.0/24")
	mustJSON[api.ModifyTargetGroupAttributesResponse](t, env, "tg", "deregistration-delay", tg.TargetGroupID, "30")
	mustJSON[api.RegisterTargetsResponse](t, env, "tg", "register", tg.TargetGroupID, "10.0.0.20", "10.0.0.21:9090")
	mustJSON[api.DeregisterTargetsResponse](t, env, "tg", "deregister", tg.TargetGroupID, "10.0.0.20")
	health := mustJSON[api.DescribeTargetHealthResponse](t, env, "tg", "health", tg.TargetGroupID).TargetHealthDescriptions
	if len(health) != 2 || health[0].TargetHealth.State != api.TargetHealthDraining || health[1].TargetHealth.State != api.TargetHealthInitial {
		t.Errorf("tg health: %+v, want 10.0.0.20 draining and 10.0.0.21:9090 initial", health)
	}
	out, err := run(t, env, "lb", "list", "--tag", "owner=flatnet")
	if err != nil || !strings.Contains(out, lb.LoadBalancerID) || !strings.Contains(out, "203.0.113.0/24") {
		t.Errorf("lb list printed %q, %v; want the load balancer with its source range", out, err)
	}
	out, err = run(t, env, "tg", "health", tg.TargetGroupID)
	if err != nil || !strings.Contains(out, "Target.DeregistrationInProgress") {
		t.Errorf("tg health printed %q, %v", out, err)
	}
	if _, err := run(t, env, "tg", "delete", tg.TargetGroupID); err == nil || !strings.Contains(err.Error(), api.CodeResourceInUse) {
		t.Errorf("deleting a target group in use: %v, want ResourceInUse", err)
	}
	if _, err := run(t, env, "lb", "delete", lb.LoadBalancerID); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, env, "tg", "delete", tg.TargetGroupID); err != nil {
		t.Fatal(err)
	}
}
