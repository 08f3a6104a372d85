package fakecloud_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flatnet/flatnet/providers"
)

// TestTaggingRepeatedIDs: an ID given twice is tagged and untagged once (fakecloud refuses a
// call naming a resource twice; the driver does not pass that on).
func TestTaggingRepeatedIDs(t *testing.T) {
	ctx := context.Background()
	_, d := startDriver(t)
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
