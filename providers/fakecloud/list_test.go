package fakecloud_test

import (
	"context"
	"testing"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// TestListSkipsLoadBalancersDeletedMeanwhile: a load balancer deleted between the describe
// and the look-up of its listeners (another pass, or garbage collection) is simply gone, not an
// error that fails the whole listing.
func TestListSkipsLoadBalancersDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	env, d := startDriver(t)
	tags := map[string]string{"flatnet.io/cluster": "c1"}
	for _, name := range []string{"a", "b"} {
		if _, err := d.CreateLoadBalancer(ctx, providers.LoadBalancerSpec{Name: name, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	lbs, err := d.ListLoadBalancers(ctx, tags)
	if err != nil || len(lbs) != 2 {
		t.Fatalf("before: %d load balancers, %v", len(lbs), err)
	}
	// Every listener look-up now answers as if its load balancer had just been deleted.
	if _, err := env.Admin.SetFault(ctx, &api.SetFaultRequest{Fault: api.Fault{
		Action: api.ActionDescribeListeners, ErrorRate: 1, ErrorCode: api.CodeLoadBalancerNotFound}}); err != nil {
		t.Fatal(err)
	}
	lbs, err = d.ListLoadBalancers(ctx, tags)
	if err != nil {
		t.Fatalf("listing failed because load balancers vanished meanwhile: %v", err)
	}
	if len(lbs) != 0 {
		t.Fatalf("listed %d load balancers that are gone", len(lbs))
	}
}

// startDriver starts a fakecloud with one subnet and the driver on it, with a load balancer
// token.
func startDriver(t *testing.T) (*servertest.Env, *fakecloud.LoadBalancing) {
	t.Helper()
	env := servertest.Start(t, servertest.Options{})
	sn, _ := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "m5.large", 1)
	d, err := fakecloud.NewLoadBalancing(context.Background(), fakecloud.Config{Client: env.Client(env.LoadBalancerToken(t).Token), Settings: providers.Settings{SubnetID: sn.SubnetID}})
	if err != nil {
		t.Fatal(err)
	}
	return env, d
}
