package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// storeTagger holds one resource's tags and fails its first failUntag untag calls.
type storeTagger struct {
	tags      map[string]string
	failUntag int
}

func (s *storeTagger) TagResources(_ context.Context, _ []string, tags map[string]string) error {
	maps.Copy(s.tags, tags)
	return nil
}

func (s *storeTagger) UntagResources(_ context.Context, _ []string, keys []string) error {
	if s.failUntag > 0 {
		s.failUntag--
		return providers.ErrThrottled
	}
	for _, k := range keys {
		delete(s.tags, k)
	}
	return nil
}

// TestDroppedLabelSurvivesNoFailure: a label dropped while others stay is removed even when
// the first removal fails: the pass that failed left the key listed in model.TagManaged, so
// the next one still knows it is the owner's to remove.
func TestDroppedLabelSurvivesNoFailure(t *testing.T) {
	st := &storeTagger{tags: withUserTags(map[string]string{model.TagCluster: "c"}, map[string]string{"team": "a", "env": "prod"}), failUntag: 1}
	want := map[string]string{"team": "a"}
	for pass := range 3 {
		rs := []taggedResource{{kind: "load balancer", id: "lb-1", tags: maps.Clone(st.tags)}}
		err := syncUserTags(context.Background(), st, rs, want, &GatewayResult{})
		if (err != nil) != (pass == 0) {
			t.Fatalf("pass %d: error %v; want one in the first pass only", pass, err)
		}
	}
	if _, ok := st.tags["env"]; ok {
		t.Errorf("after a failed removal and two more passes the dropped label is still there: %v", st.tags)
	}
	if st.tags["team"] != "a" || st.tags[model.TagManaged] != managedValue(want) {
		t.Errorf("tags %v: want team=a and %s for it alone", st.tags, model.TagManaged)
	}
}

// TestManagedTagFits: model.TagManaged for the most user tags a resource takes fits the
// cloud's tag value, and the user tags cannot overwrite an ownership tag of an existing one.
func TestManagedTagFits(t *testing.T) {
	user := map[string]string{}
	for i := range model.MaxUserTags {
		user[fmt.Sprint("key-", i)] = "v"
	}
	if n := len(managedValue(user)); n > providers.MaxTagValueLength {
		t.Errorf("%s for %d keys has %d characters; the cloud takes %d", model.TagManaged, model.MaxUserTags, n, providers.MaxTagValueLength)
	}
	add, remove := tagChanges(map[string]string{model.TagCluster: "c"}, map[string]string{model.TagCluster: "stolen", "team": "a"})
	if _, ok := add[model.TagCluster]; ok || len(remove) > 0 {
		t.Errorf("tagChanges would add %v and remove %v: an ownership key must never change", add, remove)
	}
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
