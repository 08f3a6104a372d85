package state

import (
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// AddTags adds or overwrites tags on load balancers, target groups and certificates.
func (s *Store) AddTags(c Call, req *api.AddTagsRequest) (*api.AddTagsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionAddTags); err != nil {
		return nil, err
	}
	if len(req.Tags) == 0 {
		return nil, invalid("Tags is required")
	}
	if err := validateLBTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionAddTags, "", req, func(t *tx) (*api.AddTagsResponse, error) {
		return &api.AddTagsResponse{}, t.retagLB(req.ResourceIDs, func(m map[string]string) {
			for _, tg := range req.Tags {
				m[tg.Key] = tg.Value
			}
		})
	})
}

// RemoveTags removes tag keys from load balancers, target groups and certificates.
func (s *Store) RemoveTags(c Call, req *api.RemoveTagsRequest) (*api.RemoveTagsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionRemoveTags); err != nil {
		return nil, err
	}
	if len(req.TagKeys) == 0 {
		return nil, invalid("TagKeys is required")
	}
	return write(s, c, api.ActionRemoveTags, "", req, func(t *tx) (*api.RemoveTagsResponse, error) {
		return &api.RemoveTagsResponse{}, t.retagLB(req.ResourceIDs, func(m map[string]string) {
			for _, k := range req.TagKeys {
				delete(m, k)
			}
		})
	})
}

// DescribeTags answers the tags of up to 20 load balancers, target groups and certificates.
func (s *Store) DescribeTags(c Call, req *api.DescribeTagsRequest) (*api.DescribeTagsResponse, error) {
	if err := requireLoadBalancing(c.Principal, api.ActionDescribeTags); err != nil {
		return nil, err
	}
	if err := checkTagResources(req.ResourceIDs, maxDescribeTags); err != nil {
		return nil, err
	}
	txn := s.read()
	out := &api.DescribeTagsResponse{TagDescriptions: []api.TagDescription{}}
	for _, id := range req.ResourceIDs {
		tags, err := lbTags(txn, id)
		if err != nil {
			return nil, err
		}
		list := tagList(tags)
		if list == nil {
			list = []api.Tag{}
		}
		out.TagDescriptions = append(out.TagDescriptions, api.TagDescription{ResourceID: id, Tags: list})
	}
	return out, nil
}

func checkTagResources(ids []string, most int) error {
	if len(ids) == 0 {
		return invalid("ResourceIds is required")
	}
	if len(ids) > most {
		return invalid("ResourceIds lists %d resources; at most %d", len(ids), most)
	}
	if err := noDuplicates("ResourceIds", ids); err != nil {
		return invalid("ResourceIds lists a resource twice")
	}
	return nil
}

func lbTags(txn *memdb.Txn, id string) (map[string]string, error) {
	switch {
	case strings.HasPrefix(id, "lb-"):
		r, err := getLB(txn, id)
		if err != nil {
			return nil, err
		}
		return r.Tags, nil
	case strings.HasPrefix(id, "tg-"):
		r, err := getTG(txn, id)
		if err != nil {
			return nil, err
		}
		return r.Tags, nil
	case strings.HasPrefix(id, "cert-"):
		r, err := getCert(txn, id)
		if err != nil {
			return nil, err
		}
		return r.Tags, nil
	}
	return nil, invalid("ResourceIds: %.40q is not a load balancer (lb-), target group (tg-) or certificate (cert-) ID", id)
}

// retagLB applies edit to a copy of each resource's tags and stores the new versions.
func (t *tx) retagLB(ids []string, edit func(map[string]string)) error {
	if err := checkTagResources(ids, maxCount); err != nil {
		return err
	}
	for _, id := range ids {
		old, err := lbTags(t.Txn, id)
		if err != nil {
			return err
		}
		tags, err := edited(old, edit)
		if err != nil {
			return api.Errorf(api.CodeTooManyTags, "%s: a resource holds at most %d tags", id, maxTagsPerResource)
		}
		switch {
		case strings.HasPrefix(id, "lb-"):
			n := *first[lbRec](t.Txn, tableLoadBalancers, indexID, id)
			n.Tags = tags
			err = t.put(tableLoadBalancers, api.KindLoadBalancer, id, &n)
		case strings.HasPrefix(id, "cert-"):
			n := *first[certRec](t.Txn, tableCertificates, indexID, id)
			n.Tags = tags
			err = t.put(tableCertificates, api.KindCertificate, id, &n)
		default:
			n := *first[tgRec](t.Txn, tableTargetGroups, indexID, id)
			n.Tags = tags
			err = t.put(tableTargetGroups, api.KindTargetGroup, id, &n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
