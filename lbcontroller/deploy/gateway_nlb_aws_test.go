package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/lbcontroller/deploy"
	"github.com/flatnet/flatnet/lbcontroller/gateway"
	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/aws"
)

// TestGatewaySplitAWSAPI deploys a Gateway mixing HTTP and L4 listeners through the AWS driver
// (fakecloud's ELBv2 facade): the driver refuses L4 listeners on an application load balancer
// and says so in its capabilities; split, the HTTP listener is on the application load
// balancer and the TCP, UDP and TLS-passthrough ones on a network load balancer, which the
// Gateway's delete removes.
func TestGatewaySplitAWSAPI(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	sn, _ := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "t3.small", 1)
	key := servertest.LoadBalancerAWSKey(env.LoadBalancerToken(t))
	cfg := awssdk.Config{
		Region: "us-east-1", BaseEndpoint: awssdk.String(env.URL),
		Credentials: awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) {
			return awssdk.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, SessionToken: key.SessionToken, Source: "fakecloud"}, nil
		}),
	}
	ctx := context.Background()
	d, err := aws.NewLoadBalancing(ctx, aws.LBConfig{Config: aws.Config{AWS: &cfg}, SubnetID: sn.SubnetID, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := providers.NewPolicy(providers.PolicyConfig{}).ApplicationLoadBalancing(d)
	if providers.CapabilitiesOf(p).L4OnApplicationLB {
		t.Fatal("the AWS driver (behind the policy) claims L4 listeners on application load balancers")
	}
	gw := &gateway.GatewayLoadBalancers{Namespace: "infra", Name: "mixed", UID: "uid-mixed"}
	tags := gatewayTags(gw)
	if _, err := deploy.ApplicationLoadBalancer(ctx, p, mixedGateway(), tags, "whole"); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("the whole Gateway on an ELBv2 application load balancer: %v; want the TLS listener refused", err)
	}
	owner := model.Owner{Cluster: "test", Namespace: gw.Namespace, Name: gw.Name, UID: gw.UID}
	l7, nlb, _ := deploy.SplitGateway(mixedGateway(), deploy.NetworkLoadBalancerName("alb-mixed"), owner, tags)
	alb, err := deploy.ApplicationLoadBalancer(ctx, p, l7, tags, "g1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := deploy.NetworkLoadBalancer(ctx, p, nlb, tags, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if !alb.VIP.IsValid() || !res.VIP.IsValid() || alb.VIP == res.VIP {
		t.Errorf("addresses %v and %v; want two", alb.VIP, res.VIP)
	}
	lbs, err := p.ListLoadBalancers(ctx, map[string]string{"flatnet.io/gateway": "infra/mixed", deploy.TagLayer: deploy.LayerL4})
	if err != nil || len(lbs) != 1 {
		t.Fatalf("network load balancers %+v (%v); want one", lbs, err)
	}
	var got []string
	for _, l := range lbs[0].Listeners {
		got = append(got, l.Protocol)
	}
	if len(got) != 3 {
		t.Errorf("listeners %v; want TCP 443, TCP 5432, UDP 5300", got)
	}
	if again, err := deploy.NetworkLoadBalancer(ctx, p, nlb, tags, "g2"); err != nil || again.Created || again.Registered+again.Deregistered != 0 {
		t.Errorf("deployed again: %+v (%v); want no change", again, err)
	}
	if err := deploy.DeleteApplicationLoadBalancer(ctx, p, tags, nil); err != nil {
		t.Fatal(err)
	}
	if err := deploy.DeleteNetworkLoadBalancer(ctx, p, tags); err != nil {
		t.Fatal(err)
	}
	if lbs, err := p.ListLoadBalancers(ctx, map[string]string{"flatnet.io/cluster": "test"}); err != nil || len(lbs) != 0 {
		t.Errorf("load balancers left: %+v (%v)", lbs, err)
	}
	if tgs, err := p.ListTargetGroups(ctx, map[string]string{"flatnet.io/cluster": "test"}); err != nil || len(tgs) != 0 {
		t.Errorf("target groups left: %+v (%v)", tgs, err)
	}
}
