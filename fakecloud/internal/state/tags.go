package state

import (
	"maps"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// CreateTags adds or overwrites tags on resources (VPCs, subnets, instances, interfaces).
func (s *Store) CreateTags(c Call, req *api.CreateTagsRequest) (*api.CreateTagsResponse, error) {
	if len(req.Tags) == 0 {
		return nil, api.Errorf(api.CodeMissingParameter, "Tags is required")
	}
	if err := validateTags(req.Tags); err != nil {
		return nil, err
	}
	return write(s, c, api.ActionCreateTags, "", req, func(t *tx) (*api.CreateTagsResponse, error) {
		return &api.CreateTagsResponse{}, t.retag(req.Resources, func(m map[string]string) {
			for _, tg := range req.Tags {
				m[tg.Key] = tg.Value
			}
		})
	})
}

// DeleteTags removes tags; a tag given with an empty value removes the key whatever its value.
func (s *Store) DeleteTags(c Call, req *api.DeleteTagsRequest) (*api.DeleteTagsResponse, error) {
	return write(s, c, api.ActionDeleteTags, "", req, func(t *tx) (*api.DeleteTagsResponse, error) {
		return &api.DeleteTagsResponse{}, t.retag(req.Resources, func(m map[string]string) {
			for _, tg := range req.Tags {
				if v, ok := m[tg.Key]; ok && (tg.Value == "" || tg.Value == v) {
					delete(m, tg.Key)
				}
			}
			if len(req.Tags) == 0 {
				clear(m)
			}
		})
	})
}

// retag applies edit to a copy of each resource's tags and stores the new versions.
func (t *tx) retag(ids []string, edit func(map[string]string)) error {
	if len(ids) == 0 {
		return api.Errorf(api.CodeMissingParameter, "Resources is required")
	}
	if err := noDuplicates("Resources", ids); err != nil {
		return err
	}
	for _, id := range ids {
		if err := t.retagOne(id, edit); err != nil {
			return err
		}
	}
	return nil
}

func edited(tags map[string]string, edit func(map[string]string)) (map[string]string, error) {
	m := maps.Clone(tags)
	if m == nil {
		m = map[string]string{}
	}
	edit(m)
	if len(m) > maxTagsPerResource {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "a resource holds at most %d tags; this would make %d", maxTagsPerResource, len(m))
	}
	return m, nil
}

func (t *tx) retagOne(id string, edit func(map[string]string)) error {
	p := t.call.Principal
	switch {
	case strings.HasPrefix(id, "eni-"):
		e, err := getENI(t.Txn, t.call, id)
		if err != nil {
			return err
		}
		n := *e
		if n.Tags, err = edited(e.Tags, edit); err != nil {
			return err
		}
		return t.putENI(&n)
	case strings.HasPrefix(id, "i-"):
		r, err := getInstance(t.Txn, id)
		if err != nil {
			return err
		}
		if !p.Admin && p.InstanceID != r.ID {
			return api.Errorf(api.CodeUnauthorizedOperation, "instance %s may not tag instance %s", p.InstanceID, r.ID)
		}
		n := *r
		if n.Tags, err = edited(r.Tags, edit); err != nil {
			return err
		}
		return t.put(tableInstances, api.KindInstance, n.ID, &n)
	case strings.HasPrefix(id, "subnet-"):
		if err := requireAdmin(p, "tagging a subnet"); err != nil {
			return err
		}
		r, err := getSubnet(t.Txn, id)
		if err != nil {
			return err
		}
		n := *r
		if n.Tags, err = edited(r.Tags, edit); err != nil {
			return err
		}
		return t.put(tableSubnets, api.KindSubnet, n.ID, &n)
	case strings.HasPrefix(id, "vpc-"):
		if err := requireAdmin(p, "tagging a vpc"); err != nil {
			return err
		}
		r, err := getVpc(t.Txn, id)
		if err != nil {
			return err
		}
		n := *r
		if n.Tags, err = edited(r.Tags, edit); err != nil {
			return err
		}
		return t.put(tableVpcs, api.KindVpc, n.ID, &n)
	}
	return api.Errorf(api.CodeInvalidParameterValue, "%q is not a resource ID fakecloud can tag (vpc-, subnet-, i-, eni-)", id)
}

func (t *tx) put(table, kind, id string, obj any) error {
	if err := t.Insert(table, obj); err != nil {
		return internal(err)
	}
	t.touch(kind, id)
	return nil
}
