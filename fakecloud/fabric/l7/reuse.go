package l7

import (
	"bytes"
	"slices"
)

// Reuse across configurations: what one Apply compiled that the next can take as it is
// (Rule.Revision, target groups given as before).

// compiled is what a configuration's compilation leaves for the next one to reuse: its
// target groups by name, with the configuration each was compiled from, and its rules with
// a Revision (Rule.Revision). Reused groups keep their round-robin position; reused rules
// whose groups were all reused are the same (immutable) rules in both snapshots.
type compiled struct {
	groups map[string]keptGroup
	rules  map[listenerKey]map[string]*rule // by listener, by Name (each knows its Revision)
}

// listenerKey is a listener's port and protocol, and whether it terminates TLS (a TLS
// listener with certificates): a rule is reused only on the same, since what a rule may
// forward to depends on them (TLS groups from a terminating listener only).
type listenerKey struct {
	port        portKey
	proto       Protocol
	terminating bool
}

// keptGroup is a compiled group and a copy of the configuration it was compiled from.
type keptGroup struct {
	cfg TargetGroup
	g   *group
}

func newCompiled() *compiled {
	return &compiled{groups: map[string]keptGroup{}, rules: map[listenerKey]map[string]*rule{}}
}

// revisedRule is c.rule, reusing the last configuration's compilation of the listener's
// rule with the same Name and Revision as a copy pointing at this configuration's groups
// (unchanged, called first, reuses it as it is when they are the same groups). A compilation is kept only when it
// found nothing wrong; one whose groups are now missing is compiled again, to say so.
func (c *checker) revisedRule(f string, prev, next map[string]*rule, r *Rule, groups map[string]*group) *rule {
	if r.Name == "" || r.Revision == "" {
		return c.rule(f, r, groups)
	}
	if t := prev[r.Name]; t != nil && t.revision == r.Revision {
		if cr := relink(t, groups); cr != nil {
			next[r.Name] = cr
			return cr
		}
	}
	n := len(c.errs)
	cr := c.rule(f, r, groups)
	if len(c.errs) == n {
		cr.revision = r.Revision
		next[r.Name] = cr
	}
	return cr
}

// unchanged is the last configuration's compilation of the listener's rule with r's Name and
// Revision (prev) if it points at the very groups of this one (reused as they were), else nil. Such a
// rule needs no check: its listener, its content and its groups are those of a configuration
// the engine took.
func unchanged(prev, next map[string]*rule, r *Rule, groups map[string]*group) *rule {
	if r.Name == "" || r.Revision == "" {
		return nil
	}
	t := prev[r.Name]
	if t == nil || t.revision != r.Revision || !sameGroups(t, groups) {
		return nil
	}
	next[r.Name] = t
	return t
}

// sameGroups reports whether t's backends and mirrors point at the very groups of groups.
func sameGroups(t *rule, groups map[string]*group) bool {
	for _, b := range t.action.backends {
		if b.group != nil && groups[b.group.name] != b.group {
			return false
		}
	}
	for _, m := range t.action.mirrors {
		if groups[m.group.name] != m.group {
			return false
		}
	}
	return true
}

// relink is a copy of t pointing at groups' groups (unchanged took t as it is when they are
// the same); nil if one of them is missing or speaks another protocol now (what a rule may
// forward to depends on it: the rule is checked again).
func relink(t *rule, groups map[string]*group) *rule {
	cr := *t
	cr.series = nil // set by Apply
	cr.action.backends = slices.Clone(t.action.backends)
	for i := range cr.action.backends {
		b := &cr.action.backends[i]
		if b.group == nil {
			continue // no group named: an invalid backend (500), as compiled
		}
		g := groups[b.group.name]
		if g == nil || g.proto != b.group.proto {
			return nil
		}
		b.group = g
	}
	cr.action.mirrors = slices.Clone(t.action.mirrors)
	for i := range cr.action.mirrors {
		m := &cr.action.mirrors[i]
		g := groups[m.group.name]
		if g == nil || g.proto != m.group.proto {
			return nil
		}
		m.group = g
	}
	return &cr
}

// keptGroup is c.group, reusing the last configuration's compilation of a group given the
// same configuration (its targets and their states included).
func (c *checker) keptGroup(f string, tg TargetGroup, seen map[string]*group) *group {
	if k, ok := c.prev.groups[tg.Name]; ok && seen[tg.Name] == nil && sameGroup(k.cfg, tg) {
		c.next.groups[tg.Name] = k
		return k.g
	}
	n := len(c.errs)
	g := c.group(f, tg, seen)
	if g != nil && len(c.errs) == n {
		kept := tg
		kept.Targets = slices.Clone(tg.Targets) // Apply keeps no reference to the caller's
		if tg.TLS != nil {
			t := *tg.TLS
			t.CAPEM = slices.Clone(t.CAPEM)
			t.SubjectAltNames = slices.Clone(t.SubjectAltNames)
			t.ClientCertPEM, t.ClientKeyPEM = slices.Clone(t.ClientCertPEM), slices.Clone(t.ClientKeyPEM)
			kept.TLS = &t
		}
		c.next.groups[tg.Name] = keptGroup{cfg: kept, g: g}
	}
	return g
}

func sameGroup(a, b TargetGroup) bool {
	if a.Name != b.Name || a.Protocol != b.Protocol || !slices.Equal(a.Targets, b.Targets) || (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	return a.TLS == nil || (a.TLS.ServerName == b.TLS.ServerName && a.TLS.InsecureSkipVerify == b.TLS.InsecureSkipVerify &&
		bytes.Equal(a.TLS.CAPEM, b.TLS.CAPEM) && slices.Equal(a.TLS.SubjectAltNames, b.TLS.SubjectAltNames) &&
		bytes.Equal(a.TLS.ClientCertPEM, b.TLS.ClientCertPEM) && bytes.Equal(a.TLS.ClientKeyPEM, b.TLS.ClientKeyPEM))
}
