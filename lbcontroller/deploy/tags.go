package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/flatnet/flatnet/lbcontroller/model"
	"github.com/flatnet/flatnet/providers"
)

// User tags (model.UserTagProblem) may change while the resources live: a pass adds and
// overwrites them where they differ, and removes the ones the owner no longer asks for. Tags
// that neither the owner nor flatnet put there (a person's, or a cloud-wide tagging policy's)
// are left alone: model.TagManaged lists the keys that were the owner's, each as the first 8
// hex digits of its SHA-256, space-separated and sorted (8 keys, the most a Gateway has, take
// 71 of the cloud's 256 characters; model.MaxUserTags, 28, fit), so that only those are ever
// removed. (Someone else's key whose hash prefix is a removed label's would go too: one chance
// in 4 billion per pair.)

func tagHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// reserved: key is flatnet's own or the cloud's, never a user tag.
func reserved(key string) bool {
	return strings.HasPrefix(key, model.TagPrefix) || strings.HasPrefix(key, model.CloudTagPrefix)
}

// managedValue is model.TagManaged's value for user tags user ("" when there are none).
func managedValue(user map[string]string) string {
	hs := make([]string, 0, len(user))
	for k := range user {
		hs = append(hs, tagHash(k))
	}
	slices.Sort(hs)
	return strings.Join(slices.Compact(hs), " ")
}

// withUserTags is what a resource is created with (a new map): its ownership tags, the user tags, and
// model.TagManaged naming them. Ownership tags win over a user tag of the same key (the translator
// refuses such keys; this keeps a bug there from breaking ownership).
func withUserTags(own, user map[string]string) map[string]string {
	if len(user) == 0 {
		return maps.Clone(own)
	}
	out := make(map[string]string, len(own)+len(user)+1)
	for k, v := range user {
		if !reserved(k) {
			out[k] = v
		}
	}
	maps.Copy(out, own)
	out[model.TagManaged] = managedValue(user)
	return out
}

// tagChanges is what makes the tags have of one resource carry the user tags user: the tags
// to add or overwrite (model.TagManaged among them when it changes) and the keys to remove (user
// tags applied before, as model.TagManaged records, that user no longer has; model.TagManaged itself
// when user is empty). Keys of flatnet's own are never touched here.
func tagChanges(have, user map[string]string) (add map[string]string, remove []string) {
	add = map[string]string{}
	for k, v := range user {
		if reserved(k) {
			continue // the translator refuses them; ownership must not hang on it
		}
		if cur, ok := have[k]; !ok || cur != v {
			add[k] = v
		}
	}
	applied := map[string]bool{}
	for _, h := range strings.Fields(have[model.TagManaged]) {
		applied[h] = true
	}
	for k := range have {
		if _, wanted := user[k]; wanted || reserved(k) {
			continue
		}
		if applied[tagHash(k)] {
			remove = append(remove, k)
		}
	}
	switch mv := managedValue(user); {
	case mv == "" && have[model.TagManaged] != "":
		remove = append(remove, model.TagManaged)
	case mv != "" && have[model.TagManaged] != mv:
		add[model.TagManaged] = mv
	}
	slices.Sort(remove)
	return add, remove
}

// taggedResource is one existing resource whose tags a pass keeps in step with the user tags.
type taggedResource struct {
	kind, id string
	tags     map[string]string
}

// tagChange is one change of tags, for resources that all need the same.
type tagChange struct {
	Add    map[string]string
	Remove []string
	IDs    []string
	// What names the resources, for errors and the pass's list of changes.
	What string
}

// planTagChanges is what makes each of rs carry the user tags user: at most one change per
// distinct difference (resources needing the same one share its calls).
func planTagChanges(rs []taggedResource, user map[string]string) []tagChange {
	var out []tagChange
	var names [][]string
	for _, r := range rs {
		add, remove := tagChanges(r.tags, user)
		if len(add) == 0 && len(remove) == 0 {
			continue
		}
		i := slices.IndexFunc(out, func(c tagChange) bool { return maps.Equal(c.Add, add) && slices.Equal(c.Remove, remove) })
		if i < 0 {
			out = append(out, tagChange{Add: add, Remove: remove})
			names = append(names, nil)
			i = len(out) - 1
		}
		out[i].IDs = append(out[i].IDs, r.id)
		names[i] = append(names[i], r.kind+" "+r.id)
	}
	for i := range out {
		out[i].What = strings.Join(names[i], ", ")
	}
	return out
}

// apply makes the change's calls: the removes, then the adds. In that order a pass cut short
// between them leaves the dropped keys gone, or still listed in model.TagManaged (the add
// rewrites it): the adds the other way round would leave a dropped key that TagManaged no
// longer names, which no later pass would remove.
func (c tagChange) apply(ctx context.Context, p providers.Tagging) error {
	if len(c.Remove) > 0 {
		if err := p.UntagResources(ctx, c.IDs, c.Remove); err != nil {
			return fmt.Errorf("remove the tags %s from %s: %w", strings.Join(c.Remove, ", "), c.What, err)
		}
	}
	if len(c.Add) > 0 {
		if err := p.TagResources(ctx, c.IDs, c.Add); err != nil {
			return fmt.Errorf("tag %s: %w", c.What, err)
		}
	}
	return nil
}

// syncUserTags makes each of rs carry the user tags user.
func syncUserTags(ctx context.Context, p providers.Tagging, rs []taggedResource, user map[string]string, res *GatewayResult) error {
	for _, c := range planTagChanges(rs, user) {
		if err := c.apply(ctx, p); err != nil {
			return err
		}
		res.did("retag %s", c.What)
	}
	return nil
}
