package fakecloud

import (
	"context"
	"errors"
	"slices"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/providers"
)

// maxTagResources is the most resources one AddTags or RemoveTags call of fakecloud names
// (docs/fakecloud-api.md); the driver splits longer lists.
const maxTagResources = 1000

// TagResources implements providers.Tagging with AddTags, which takes load balancer, target
// group and certificate IDs alike. fakecloud checks the tags before it changes anything and
// every batch carries the same tags, so a key or value it refuses fails the first batch and
// changes nothing. A resource that would hold more than providers.MaxTags tags fails only its
// own batch: the batches before it stay tagged.
func (d *LoadBalancing) TagResources(ctx context.Context, ids []string, tags map[string]string) error {
	if len(ids) == 0 || len(tags) == 0 {
		return nil
	}
	ts := toTags(tags)
	for batch := range slices.Chunk(distinct(ids), maxTagResources) {
		_, err := do(d, api.ActionAddTags, func() (*api.AddTagsResponse, error) {
			return d.c.AddTags(ctx, &api.AddTagsRequest{ResourceIDs: batch, Tags: ts})
		})
		if err != nil {
			return tagLimitInvalid(err)
		}
	}
	return nil
}

// UntagResources implements providers.Tagging with RemoveTags; a key a resource lacks is no
// error to fakecloud either.
func (d *LoadBalancing) UntagResources(ctx context.Context, ids []string, keys []string) error {
	if len(ids) == 0 || len(keys) == 0 {
		return nil
	}
	for batch := range slices.Chunk(distinct(ids), maxTagResources) {
		_, err := do(d, api.ActionRemoveTags, func() (*api.RemoveTagsResponse, error) {
			return d.c.RemoveTags(ctx, &api.RemoveTagsRequest{ResourceIDs: batch, TagKeys: keys})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// distinct is ids sorted, each once: fakecloud refuses a call naming a resource twice, and
// batches would not see a repeat across them.
func distinct(ids []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(ids)))
}

// tagLimitInvalid makes TooManyTags providers.ErrInvalid, as providers.Tagging has it: the
// limit is per resource and fixed, so the same call never succeeds (a create with too many
// tags stays ErrLimit, as ever).
func tagLimitInvalid(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && pe.Code == api.CodeTooManyTags {
		return &providers.Error{Kind: providers.ErrInvalid, Code: pe.Code, Err: pe.Err}
	}
	return err
}
