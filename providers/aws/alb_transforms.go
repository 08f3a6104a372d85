package aws

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/flatnet/flatnet/providers"
)

// A rule's rewrite, seam <-> ELBv2's rule transforms: a regex and its replacement for the Host
// header (host-header-rewrite) and for the URL, the path and "?query" (url-rewrite), the first
// match replaced. The driver writes a few fixed shapes and reads back exactly those, so that a
// rule reads back as it was written (lbcontroller compares them):
//
//   - Host h: host-header-rewrite ^.*$ -> h.
//   - ReplaceFullPath v: url-rewrite ^[^?]* -> v (the path; the query stays).
//   - ReplacePrefixMatch v, under the rule's Prefix condition P (P' is P without its trailing
//     "/", "" for "/"): url-rewrite ^P'/? -> v when v ends in "/" ("" is "/"), else ^P' -> v.
//     So /foo/bar under /foo becomes /xyz/bar for /xyz and /xyz/, and /bar for /; /foo becomes
//     /xyz for /xyz and / for /, but /xyz/ for /xyz/ (fakecloud's own rewrite gives /xyz; Gateway
//     API leaves that case open).
//
// ELBv2 reads $ in a replacement as a group of the match and documents no escape, so a value
// holding $ is refused; so is a rewrite on a listener's default action, which takes no transform.

// Regexes of the transforms the driver writes.
const (
	hostRewriteRegex = "^.*$"
	fullPathRegex    = "^[^?]*"
)

// toELBTransforms is ELBv2's transforms for a rule's rewrite under its path condition; none
// without a rewrite.
func toELBTransforms(a providers.RuleAction, path *providers.StringMatch) ([]elbtypes.RuleTransform, error) {
	rw := a.Rewrite
	if rw == nil {
		return nil, nil
	}
	if a.Redirect != nil || a.FixedResponse != nil {
		return nil, unsupported("a URL rewrite on a rule that does not forward (ELBv2 transforms a forwarded request)")
	}
	if *rw == (providers.Rewrite{}) {
		// It would write no transform and read back as no rewrite: a rule that never matches.
		return nil, invalid(codeUnsupported, "an empty rewrite (neither a host nor a path): give one, or no rewrite")
	}
	var out []elbtypes.RuleTransform
	if rw.Host != "" {
		if strings.Contains(rw.Host, "$") {
			return nil, unsupported("the host rewrite %q: ELBv2 reads $ in a replacement as a group of the match and has no escape", rw.Host)
		}
		out = append(out, elbtypes.RuleTransform{Type: elbtypes.TransformTypeEnumHostHeaderRewrite,
			HostHeaderRewriteConfig: &elbtypes.HostHeaderRewriteConfig{Rewrites: oneRewrite(hostRewriteRegex, rw.Host)}})
	}
	if pm := rw.Path; pm != nil {
		re, repl, err := urlRewrite(*pm, path)
		if err != nil {
			return nil, err
		}
		out = append(out, elbtypes.RuleTransform{Type: elbtypes.TransformTypeEnumUrlRewrite,
			UrlRewriteConfig: &elbtypes.UrlRewriteConfig{Rewrites: oneRewrite(re, repl)}})
	}
	return out, nil
}

func oneRewrite(re, repl string) []elbtypes.RewriteConfig {
	return []elbtypes.RewriteConfig{{Regex: aws.String(re), Replace: aws.String(repl)}}
}

// urlRewrite is the url-rewrite regex and replacement of a path modifier.
func urlRewrite(pm providers.PathModifier, path *providers.StringMatch) (string, string, error) {
	if strings.Contains(pm.Value, "$") {
		return "", "", unsupported("the path rewrite %q: ELBv2 reads $ in a replacement as a group of the match and has no escape", pm.Value)
	}
	switch pm.Type {
	case providers.ReplaceFullPath:
		return fullPathRegex, pm.Value, nil
	case providers.ReplacePrefixMatch:
		if path == nil || path.Type != providers.MatchPrefix {
			return "", "", invalid(codeUnsupported, "a path rewrite replacing the matched prefix needs the rule's path condition to be a Prefix")
		}
		v := pm.Value
		if v == "" {
			v = "/" // the same rewrite, as Gateway API defines it
		}
		return prefixRewriteRegex(path.Value, v), v, nil
	}
	return "", "", unsupported("a path rewrite of type %q", pm.Type)
}

// prefixRewriteRegex matches the prefix p at the start of the path, with the "/" after it when
// the replacement v ends in one (so that no "//" is left).
func prefixRewriteRegex(p, v string) string {
	re := "^" + regexp.QuoteMeta(strings.TrimSuffix(p, "/"))
	if strings.HasSuffix(v, "/") {
		re += "/?"
	}
	return re
}

// fromELBTransforms reads toELBTransforms' shapes back, under the rule's read-back path
// condition; nil for none.
func fromELBTransforms(ts []elbtypes.RuleTransform, path *providers.StringMatch) (*providers.Rewrite, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	rw := &providers.Rewrite{}
	for _, t := range ts {
		var rs []elbtypes.RewriteConfig
		switch {
		case t.Type == elbtypes.TransformTypeEnumHostHeaderRewrite && t.HostHeaderRewriteConfig != nil && t.UrlRewriteConfig == nil:
			rs = t.HostHeaderRewriteConfig.Rewrites
		case t.Type == elbtypes.TransformTypeEnumUrlRewrite && t.UrlRewriteConfig != nil && t.HostHeaderRewriteConfig == nil:
			rs = t.UrlRewriteConfig.Rewrites
		}
		if len(rs) != 1 {
			return nil, fmt.Errorf("a %s transform the driver does not write", t.Type)
		}
		re, repl := aws.ToString(rs[0].Regex), aws.ToString(rs[0].Replace)
		if strings.Contains(repl, "$") {
			return nil, fmt.Errorf("a %s transform %q -> %q, which the driver does not write", t.Type, re, repl)
		}
		if t.Type == elbtypes.TransformTypeEnumHostHeaderRewrite {
			if rw.Host != "" || re != hostRewriteRegex || repl == "" {
				return nil, fmt.Errorf("a %s transform %q -> %q, which the driver does not write", t.Type, re, repl)
			}
			rw.Host = repl
			continue
		}
		pm, ok := fromURLRewrite(re, repl, path)
		if rw.Path != nil || !ok {
			return nil, fmt.Errorf("a %s transform %q -> %q, which the driver does not write", t.Type, re, repl)
		}
		rw.Path = pm
	}
	return rw, nil
}

// fromURLRewrite reads urlRewrite's shapes back: the full path, or the rule's Prefix as
// prefixRewriteRegex writes it for this replacement.
func fromURLRewrite(re, repl string, path *providers.StringMatch) (*providers.PathModifier, bool) {
	if re == fullPathRegex {
		return &providers.PathModifier{Type: providers.ReplaceFullPath, Value: repl}, true
	}
	if path == nil || path.Type != providers.MatchPrefix || repl == "" || re != prefixRewriteRegex(path.Value, repl) {
		return nil, false
	}
	return &providers.PathModifier{Type: providers.ReplacePrefixMatch, Value: repl}, true
}
