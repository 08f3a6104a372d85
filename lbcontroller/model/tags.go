package model

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/flatnet/flatnet/providers"
)

// User tags are the tags an owner asks for on its cloud resources (a Gateway's
// spec.infrastructure.labels), beside the ownership tags the controller selects by.
const (
	// TagPrefix is the prefix of every tag key of flatnet's own: never a user tag.
	TagPrefix = "flatnet.io/"
	// CloudTagPrefix is the prefix the cloud reserves for its own tags.
	CloudTagPrefix = "aws:"
	// TagManaged records which user tags the controller applied to a resource (deploy's
	// tag sync): the only ones it ever removes.
	TagManaged = TagPrefix + "managed-tags"
	// MaxUserTags is the most user tags one resource takes: TagManaged lists each in 9
	// characters (less one) of the cloud's MaxTagValueLength.
	MaxUserTags = (providers.MaxTagValueLength + 1) / 9
)

// UserTagProblem says why key=value cannot be a user tag ("" when it can): flatnet's and the
// cloud's own prefixes, and the cloud's limits (providers.MaxTagKeyLength and
// MaxTagValueLength).
func UserTagProblem(key, value string) string {
	switch {
	case key == "":
		return "a tag key cannot be empty"
	case strings.HasPrefix(key, TagPrefix):
		return "keys starting with " + TagPrefix + " are flatnet's own tags"
	case strings.HasPrefix(key, CloudTagPrefix):
		return "keys starting with " + CloudTagPrefix + " are reserved by the cloud"
	case len(key) > providers.MaxTagKeyLength:
		return fmt.Sprintf("the cloud takes tag keys of at most %d characters; this one has %d", providers.MaxTagKeyLength, len(key))
	case len(value) > providers.MaxTagValueLength:
		return fmt.Sprintf("the cloud takes tag values of at most %d characters; this one has %d", providers.MaxTagValueLength, len(value))
	case !tagChars(key):
		return "the cloud takes tag keys of letters, digits, spaces and _ . : / = + - @ only"
	case !tagChars(value):
		return "the cloud takes tag values of letters, digits, spaces and _ . : / = + - @ only"
	}
	return ""
}

// tagChars: s holds only what ELBv2 and ACM take in a tag (Unicode letters, digits and
// separators, and _ . : / = + - @).
func tagChars(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Z, r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}
