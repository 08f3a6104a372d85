package state

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// maxRewriteLen bounds a rewrite's Regex and Replace, as ELBv2 does.
const maxRewriteLen = 1024

// validateTransforms checks a rule's transforms on their own (what they need of the rule's
// actions and listener is checkTransformsFit) and returns them normalised: deep copies, nil
// for none.
func validateTransforms(ts []api.RuleTransform) ([]api.RuleTransform, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	out := make([]api.RuleTransform, len(ts))
	seen := map[string]int{} // type -> index of the transform of that type
	for i, tr := range ts {
		f := fmt.Sprintf("Transforms[%d]", i)
		var cfg, other *api.RewriteConfig
		var cfgName, otherName string
		switch tr.Type {
		case api.TransformTypeHostHeaderRewrite:
			cfg, cfgName, other, otherName = tr.HostHeaderRewriteConfig, "HostHeaderRewriteConfig", tr.URLRewriteConfig, "UrlRewriteConfig"
		case api.TransformTypeURLRewrite:
			cfg, cfgName, other, otherName = tr.URLRewriteConfig, "UrlRewriteConfig", tr.HostHeaderRewriteConfig, "HostHeaderRewriteConfig"
		case "":
			return nil, invalid("%s.Type is required: host-header-rewrite or url-rewrite", f)
		default:
			return nil, invalid("%s.Type %.30q is not supported: use host-header-rewrite or url-rewrite", f, tr.Type)
		}
		if cfg == nil || other != nil {
			return nil, invalid("%s: a %s transform takes %s only (and not %s)", f, tr.Type, cfgName, otherName)
		}
		if prev, dup := seen[tr.Type]; dup {
			return nil, invalid("%s repeats Transforms[%d]'s type %s: a rule holds at most one transform of each type", f, prev, tr.Type)
		}
		seen[tr.Type] = i
		rw, err := validateRewriteConfig(f+"."+cfgName, *cfg)
		if err != nil {
			return nil, err
		}
		out[i] = api.RuleTransform{Type: tr.Type}
		if tr.Type == api.TransformTypeHostHeaderRewrite {
			out[i].HostHeaderRewriteConfig = rw
		} else {
			out[i].URLRewriteConfig = rw
		}
	}
	return out, nil
}

// validateRewriteConfig checks a transform's config: exactly one rewrite, its Regex an RE2
// expression and its Replace a template whose references name groups the Regex has.
func validateRewriteConfig(f string, rc api.RewriteConfig) (*api.RewriteConfig, error) {
	if len(rc.Rewrites) != 1 {
		return nil, invalid("%s.Rewrites holds %d rewrites; give exactly one (a Regex and its Replace)", f, len(rc.Rewrites))
	}
	rw := rc.Rewrites[0]
	fr := f + ".Rewrites[0]"
	if err := validateRegex(fr+".Regex", rw.Regex); err != nil {
		return nil, err
	}
	if len(rw.Replace) > maxRewriteLen {
		return nil, invalid("%s.Replace holds %d characters; at most %d", fr, len(rw.Replace), maxRewriteLen)
	}
	groups := regexp.MustCompile(rw.Regex).NumSubexp() // validateRegex compiled it
	if err := checkReplace(fr+".Replace", rw.Replace, groups); err != nil {
		return nil, err
	}
	return &api.RewriteConfig{Rewrites: []api.RegexRewrite{rw}}, nil
}

// checkReplace checks a replacement template (api.ScanReplace's syntax).
func checkReplace(f, repl string, groups int) error {
	err := api.ScanReplace(repl, groups, func(string) {}, func(int) {})
	if errors.Is(err, api.ErrReplaceSyntax) {
		return invalid("%s %.60q: %v", f, repl, err)
	} else if err != nil {
		return invalid("%s %.60q %v", f, repl, err)
	}
	return nil
}

// checkTransformsFit checks that a rule's transforms (validated) suit its listener and its
// actions (validated): only a forward of an HTTP or HTTPS listener's rule is transformed, and
// a rule rewrites its host or its URL once, not with both a transform and its action.
func checkTransformsFit(protocol string, ts []api.RuleTransform, acts []api.Action) error {
	if len(ts) == 0 {
		return nil
	}
	if isL4Protocol(protocol) {
		return invalid("Transforms: a %s listener's rules forward connections, not requests; transforms apply to rules of HTTP and HTTPS listeners only", protocol)
	}
	a := acts[0]
	if a.Type != api.ActionTypeForward {
		return invalid("Transforms: a rule with transforms must forward (its action is %s); transforms rewrite the request a rule forwards", a.Type)
	}
	rw := a.URLRewriteConfig
	for i, tr := range ts {
		switch {
		case tr.Type == api.TransformTypeURLRewrite && rw != nil && rw.PathModification != nil:
			return invalid("Transforms[%d]: a rule rewrites its URL with a url-rewrite transform or its action's PathModification, not both (Actions[0].UrlRewriteConfig.PathModification)", i)
		case tr.Type == api.TransformTypeHostHeaderRewrite && rw != nil && rw.Host != "":
			return invalid("Transforms[%d]: a rule rewrites its Host with a host-header-rewrite transform or its action's UrlRewriteConfig.Host, not both (Actions[0].UrlRewriteConfig.Host)", i)
		}
	}
	return nil
}
