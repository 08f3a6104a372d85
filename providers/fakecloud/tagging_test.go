package fakecloud_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/providers"
	"github.com/flatnet/flatnet/providers/fakecloud"
)

// TestTaggingRepeatedIDs: an ID given twice is tagged and untagged once (fakecloud refuses a
// call naming a resource twice; the driver does not pass that on).
func TestTaggingRepeatedIDs(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t, servertest.Options{})
	sn, _ := env.Launch(t, "10.0.0.0/16", "10.0.0.0/20", "m5.large", 1)
	d, err := fakecloud.NewLoadBalancing(ctx, fakecloud.Config{Client: env.Client(env.LoadBalancerToken(t).Token), Settings: providers.Settings{SubnetID: sn.SubnetID}})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{"flatnet.io/cluster": "c1"}
	lb, err := d.CreateLoadBalancer(ctx, providers.LoadBalancerSpec{Name: "web", Tags: owner})
	if err != nil {
		t.Fatal(err)
	}
	tags := func() map[string]string {
		t.Helper()
		lbs, err := d.ListLoadBalancers(ctx, owner)
		if err != nil || len(lbs) != 1 {
			t.Fatalf("list: %+v, %v", lbs, err)
		}
		return lbs[0].Tags
	}
	if err := d.TagResources(ctx, []string{lb.ID, lb.ID}, map[string]string{"env": "prod"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"flatnet.io/cluster": "c1", "env": "prod"}, tags()); diff != "" {
		t.Errorf("tagged (-want +got):\n%s", diff)
	}
	if err := d.UntagResources(ctx, []string{lb.ID, lb.ID}, []string{"env"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(owner, tags()); diff != "" {
		t.Errorf("untagged (-want +got):\n%s", diff)
	}
}
