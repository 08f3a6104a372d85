package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

func TestTagChanges(t *testing.T) {
	own := map[string]string{model.TagCluster: "c", TagLayer: LayerL7}
	applied := func(user map[string]string, extra map[string]string) map[string]string {
		out := withUserTags(own, user)
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		have, user map[string]string
		add        map[string]string
		remove     []string
	}{
		{name: "none wanted, none there", have: own, add: map[string]string{}},
		{name: "first labels", have: own, user: map[string]string{"team": "a"},
			add: map[string]string{"team": "a", model.TagManaged: managedValue(map[string]string{"team": "a"})}},
		{name: "in step", have: applied(map[string]string{"team": "a", "env": "prod"}, nil), user: map[string]string{"team": "a", "env": "prod"}, add: map[string]string{}},
		{name: "value changed", have: applied(map[string]string{"team": "a"}, nil), user: map[string]string{"team": "b"}, add: map[string]string{"team": "b"}},
		// A label dropped goes; a tag someone else put there stays, whatever its key.
		{name: "label dropped, foreign tag kept", have: applied(map[string]string{"team": "a", "env": "prod"}, map[string]string{"cost-center": "42"}),
			user: map[string]string{"team": "a"},
			add:  map[string]string{model.TagManaged: managedValue(map[string]string{"team": "a"})}, remove: []string{"env"}},
		{name: "all dropped", have: applied(map[string]string{"team": "a"}, map[string]string{"aws:cloudformation:stack": "s"}),
			remove: []string{model.TagManaged, "team"}, add: map[string]string{}},
		// A foreign tag whose key the owner then asks for becomes the owner's.
		{name: "foreign key adopted", have: applied(nil, map[string]string{"team": "x"}), user: map[string]string{"team": "a"},
			add: map[string]string{"team": "a", model.TagManaged: managedValue(map[string]string{"team": "a"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add, remove := tagChanges(tc.have, tc.user)
			if diff := cmp.Diff(tc.add, add); diff != "" {
				t.Errorf("add (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.remove, remove, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("remove (-want +got):\n%s", diff)
			}
			// Applying the change leaves nothing to change.
			after := map[string]string{}
			for k, v := range tc.have {
				after[k] = v
			}
			for k, v := range add {
				after[k] = v
			}
			for _, k := range remove {
				delete(after, k)
			}
			if add, remove := tagChanges(after, tc.user); len(add) > 0 || len(remove) > 0 {
				t.Errorf("after the change, still: add %v, remove %v", add, remove)
			}
			for k, v := range own {
				if after[k] != v {
					t.Errorf("ownership tag %s changed to %q", k, after[k])
				}
			}
		})
	}
}

func TestWithUserTags(t *testing.T) {
	own := map[string]string{model.TagCluster: "c"}
	if got := withUserTags(own, nil); !cmp.Equal(got, own) {
		t.Errorf("no user tags: %v, want the ownership tags alone", got)
	}
	got := withUserTags(own, map[string]string{"team": "a", model.TagCluster: "stolen"})
	if got[model.TagCluster] != "c" || got["team"] != "a" || got[model.TagManaged] == "" {
		t.Errorf("withUserTags = %v: want the ownership tag kept, team=a and %s", got, model.TagManaged)
	}
	if own[model.TagManaged] != "" || len(own) != 1 {
		t.Errorf("the ownership tags given were changed: %v", own)
	}
}

// recordingTagger records the tag calls and fails those on failID.
type recordingTagger struct {
	calls  []string
	failID string
}

func (r *recordingTagger) TagResources(_ context.Context, ids []string, tags map[string]string) error {
	r.calls = append(r.calls, "tag "+fmt.Sprint(ids)+" "+fmt.Sprint(tags))
	for _, id := range ids {
		if id == r.failID {
			return providers.ErrInvalid
		}
	}
	return nil
}

func (r *recordingTagger) UntagResources(_ context.Context, ids []string, keys []string) error {
	r.calls = append(r.calls, "untag "+fmt.Sprint(ids)+" "+fmt.Sprint(keys))
	return nil
}

func TestSyncUserTags(t *testing.T) {
	own := map[string]string{model.TagCluster: "c"}
	user := map[string]string{"team": "a"}
	stale := withUserTags(own, map[string]string{"team": "old"})
	rs := []taggedResource{
		{kind: "load balancer", id: "lb-1", tags: stale},
		{kind: "target group", id: "tg-1", tags: stale},
		{kind: "target group", id: "tg-2", tags: withUserTags(own, user)}, // in step
		{kind: "certificate", id: "cert-1", tags: own},                    // never labelled
	}
	r := &recordingTagger{}
	var res GatewayResult
	if err := syncUserTags(context.Background(), r, rs, user, &res); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"tag [lb-1 tg-1] map[team:a]",
		fmt.Sprintf("tag [cert-1] map[%s:%s team:a]", model.TagManaged, managedValue(user)),
	}
	if diff := cmp.Diff(want, r.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(res.Changes) != 2 {
		t.Errorf("changes %q: want one per call", res.Changes)
	}

	r = &recordingTagger{failID: "cert-1"}
	err := syncUserTags(context.Background(), r, rs, user, &GatewayResult{})
	if !errors.Is(err, providers.ErrInvalid) || !strings.Contains(err.Error(), "certificate cert-1") {
		t.Errorf("error %v: want ErrInvalid naming certificate cert-1", err)
	}
}
