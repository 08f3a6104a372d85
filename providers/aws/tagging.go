package aws

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/flatnet/flatnet/providers"
)

// maxTagARNs is the most ARNs one ELBv2 AddTags or RemoveTags call names: ELBv2 documents 20
// for DescribeTags, and the driver keeps to it for the changes too.
const maxTagARNs = 20

// TagResources implements providers.Tagging: load balancers and target groups with ELBv2's
// AddTags, maxTagARNs at a time, then certificates (ACM ARNs) with ACM's AddTagsToCertificate,
// one a call. ELBv2 and ACM check keys and values alike, and every call carries the same tags,
// so a key or value they refuse fails the first call and changes nothing. A resource that
// would hold more than providers.MaxTags tags fails only its own call: those before it stay
// tagged.
func (d *LoadBalancing) TagResources(ctx context.Context, ids []string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	elbARNs, certARNs := byService(ids)
	elbTags, certTags := toTags(tags), toACMTags(tags)
	for batch := range slices.Chunk(elbARNs, maxTagARNs) {
		if _, err := lbCall(ctx, d, "AddTags", d.c.AddTags, &elbv2.AddTagsInput{ResourceArns: batch, Tags: elbTags}); err != nil {
			return tagLimitInvalid(err)
		}
	}
	for _, id := range certARNs {
		in := &acm.AddTagsToCertificateInput{CertificateArn: aws.String(id), Tags: certTags}
		if _, err := acmCall(ctx, d, "AddTagsToCertificate", d.acm.AddTagsToCertificate, in); err != nil {
			return tagLimitInvalid(err)
		}
	}
	return nil
}

// UntagResources implements providers.Tagging: ELBv2's RemoveTags, maxTagARNs at a time, and
// ACM's RemoveTagsFromCertificate with keys alone (which ACM removes whatever their values).
func (d *LoadBalancing) UntagResources(ctx context.Context, ids []string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	elbARNs, certARNs := byService(ids)
	for batch := range slices.Chunk(elbARNs, maxTagARNs) {
		if _, err := lbCall(ctx, d, "RemoveTags", d.c.RemoveTags, &elbv2.RemoveTagsInput{ResourceArns: batch, TagKeys: keys}); err != nil {
			return err
		}
	}
	certKeys := make([]acmtypes.Tag, len(keys))
	for i, k := range keys {
		certKeys[i] = acmtypes.Tag{Key: aws.String(k)}
	}
	for _, id := range certARNs {
		in := &acm.RemoveTagsFromCertificateInput{CertificateArn: aws.String(id), Tags: certKeys}
		if _, err := acmCall(ctx, d, "RemoveTagsFromCertificate", d.acm.RemoveTagsFromCertificate, in); err != nil {
			return err
		}
	}
	return nil
}

// byService splits IDs, each once, into ELBv2's ARNs and ACM's (certificates). An ID that is
// no ARN goes to ELBv2, which refuses it (ErrInvalid).
func byService(ids []string) (elbARNs, certARNs []string) {
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		if a, err := arn.Parse(id); err == nil && a.Service == "acm" {
			certARNs = append(certARNs, id)
		} else {
			elbARNs = append(elbARNs, id)
		}
	}
	return elbARNs, certARNs
}

// toACMTags is m as ACM's tags, sorted by key.
func toACMTags(m map[string]string) []acmtypes.Tag {
	var out []acmtypes.Tag
	for _, t := range toTags(m) {
		out = append(out, acmtypes.Tag{Key: t.Key, Value: t.Value})
	}
	return out
}

// tagLimitInvalid makes ELBv2's TooManyTags and ACM's TooManyTagsException
// providers.ErrInvalid, as providers.Tagging has it: the limit is per resource and fixed, so
// the same call never succeeds (a create with too many tags stays ErrLimit, as ever).
func tagLimitInvalid(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) && (pe.Code == "TooManyTags" || pe.Code == "TooManyTagsException") {
		return &providers.Error{Kind: providers.ErrInvalid, Code: pe.Code, Err: pe.Err}
	}
	return err
}
