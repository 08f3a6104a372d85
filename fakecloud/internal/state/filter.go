package state

import (
	"slices"
	"sort"
	"strings"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// attrFunc returns a resource's values for a filter name, and whether the name is known.
type attrFunc func(name string) ([]string, bool)

// tagAttr answers the tag filters every resource supports: tag:<key> and tag-key.
func tagAttr(tags map[string]string, name string) ([]string, bool) {
	if k, ok := strings.CutPrefix(name, "tag:"); ok {
		if v, has := tags[k]; has {
			return []string{v}, true
		}
		return nil, true
	}
	if name == "tag-key" {
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		return keys, true
	}
	return nil, false
}

func validateFilters(filters []api.Filter, probe attrFunc) error {
	for _, f := range filters {
		if _, ok := probe(f.Name); !ok {
			return api.Errorf(api.CodeInvalidParameterValue, "the filter %q is not supported here", f.Name)
		}
		if len(f.Values) == 0 {
			return api.Errorf(api.CodeInvalidParameterValue, "the filter %q has no values", f.Name)
		}
	}
	return nil
}

// matches reports whether a resource passes every filter (values within one filter are ORed).
func matches(filters []api.Filter, attr attrFunc) bool {
	for _, f := range filters {
		have, _ := attr(f.Name)
		if !slices.ContainsFunc(f.Values, func(v string) bool { return slices.Contains(have, v) }) {
			return false
		}
	}
	return true
}

// page cuts a list sorted by id into the page after token; the page is never nil, so that it
// encodes as an empty list.
func page[T any](items []T, id func(T) string, maxResults int, token string) ([]T, string, error) {
	if items == nil {
		items = []T{}
	}
	if maxResults != 0 && (maxResults < 5 || maxResults > 1000) {
		return nil, "", api.Errorf(api.CodeInvalidParameterValue, "MaxResults must be between 5 and 1000 (got %d)", maxResults)
	}
	sort.Slice(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	if token != "" {
		i := sort.Search(len(items), func(i int) bool { return id(items[i]) > token })
		items = items[i:]
	}
	if maxResults == 0 || len(items) <= maxResults {
		return items, "", nil
	}
	return items[:maxResults], id(items[maxResults-1]), nil
}
