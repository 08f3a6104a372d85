package deploy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/flatnet/flatnet/providers"
)

// RuleCache is an ApplicationLoadBalancing that keeps each listener's rules between passes, so
// that a route change on a listener of 1,000 rules does not list the 1,000 rules again (with
// 1,000 HTTPRoutes on one Gateway, listing, encoding and decoding them was a large part of a
// pass). ListRules answers from the cache while its entry is younger than the resync period;
// the rule writes made through it (create, modify, delete, move) update the entry with the
// cloud's answers. An error of any write drops the listener's entry (the next pass lists the
// rules again), as do the listener's and its load balancer's deletion. Rules changed out of
// band (by someone else, in the console) are seen again at the latest after the resync
// period, when a pass lists them anew and plans against what the cloud holds.
// ApplicationLoadBalancer, given a RuleCache, also keeps in it what a pass read of a load
// balancer besides its rules (passMemo), so that a pass that changes only rules reads nothing
// else; the same discipline holds (dropped on errors, listener changes, deletions, after resync).
// Everything else passes through to the wrapped driver.
type RuleCache struct {
	providers.ApplicationLoadBalancing
	resync time.Duration
	now    func() time.Time

	mu        sync.Mutex
	listeners map[string]*cachedRules // listener ID -> its rules
	owner     map[string]string       // rule ID -> listener ID, of cached rules
	passes    map[string]*passMemo    // load balancer name -> what its last pass read
	// reports are the change stream's reports of load balancer states (LoadBalancerStates): a
	// pass that began before a report about its load balancer does not leave its memo behind.
	reports StateReports
}

// passMemo is what a Gateway deploy pass read of one application load balancer besides its
// rules (see ApplicationLoadBalancer): remembered after a pass that ended without an error, with
// the load balancer active, having changed no more than rules; answered to the next pass of the
// same shape (the model without its rules) instead of the five reads, until the resync period
// since the reads has passed or anything failed or changed the load balancer's listeners.
type passMemo struct {
	shape   string
	cur     providers.ApplicationLoadBalancer
	certs   map[string]string
	groups  map[string]string // model target group name -> ID
	fetched time.Time         // when the pass read them from the cloud
	began   uint64            // RuleCache.reports.Count() when the pass began
}

type cachedRules struct {
	rules   []providers.Rule // by ascending priority
	fetched time.Time        // when they were last listed from the cloud
}

// NewRuleCache wraps p; a listener's cached rules are listed again resync after they were
// listed last (0: every ListRules lists). now is the clock (nil: time.Now).
func NewRuleCache(p providers.ApplicationLoadBalancing, resync time.Duration, now func() time.Time) *RuleCache {
	if now == nil {
		now = time.Now
	}
	return &RuleCache{ApplicationLoadBalancing: p, resync: resync, now: now, listeners: map[string]*cachedRules{}, owner: map[string]string{}, passes: map[string]*passMemo{}}
}

// Capabilities forwards the wrapped driver's.
func (c *RuleCache) Capabilities() providers.Capabilities {
	return providers.CapabilitiesOf(c.ApplicationLoadBalancing)
}

// CheckRule forwards the wrapped driver's (providers.CheckRule).
func (c *RuleCache) CheckRule(spec providers.RuleSpec) error {
	return providers.CheckRule(c.ApplicationLoadBalancing, spec)
}

// Invalidate drops every cached listener and remembered pass: the next ListRules of each lists
// from the cloud, and the next deploy of each load balancer reads it all.
func (c *RuleCache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.listeners)
	clear(c.owner)
	clear(c.passes)
}

// LoadBalancerStates is told the load balancer states the cloud's change stream reported as
// changed (Gone: deleted): a remembered pass of a load balancer whose state is not the one it
// saw (or that is gone) is forgotten, so that the next pass reads the load balancer again; so
// is the memo a pass of that load balancer that began before the report would leave. A
// remembered pass takes the load balancer's state from the memo, kept true this way, rather
// than reading it after each rule change.
func (c *RuleCache) LoadBalancerStates(changed []providers.LoadBalancerState) {
	if len(changed) == 0 {
		return
	}
	seen := make(map[string]providers.LoadBalancerState, len(changed))
	for _, lb := range changed {
		seen[lb.ID] = lb
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports.Record(changed, func() map[string]bool {
		inUse := map[string]bool{}
		for _, m := range c.passes {
			inUse[m.cur.ID] = true
		}
		return inUse
	})
	for name, m := range c.passes {
		now, ok := seen[m.cur.ID]
		if ok && (now.Gone || now.State != m.cur.State || now.Reason != m.cur.StateReason) {
			delete(c.passes, name)
		}
	}
}

// recall answers the remembered pass of load balancer name when it has shape, is younger than
// the resync period and saw the load balancer active; nil otherwise.
func (c *RuleCache) recall(name, shape string) *passMemo {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.passes[name]
	if m == nil || m.shape != shape || c.now().Sub(m.fetched) >= c.resync || m.cur.State != providers.LBActive {
		return nil
	}
	m.began = c.reports.Count()
	return m
}

// begin marks a pass that reads everything beginning (see RuleCache.reports).
func (c *RuleCache) begin(m *passMemo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.began = c.reports.Count()
}

// remember keeps m as load balancer name's pass (nil: forgets it). A memo recalled again keeps
// the time of its reads.
func (c *RuleCache) remember(name string, m *passMemo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m == nil || c.reports.Since(m.cur.ID, m.began) {
		delete(c.passes, name)
		return
	}
	if m.fetched.IsZero() {
		m.fetched = c.now()
	}
	c.passes[name] = m
}

// ListRules implements providers.Rules: the cached rules while fresh, else the cloud's. The
// slice is the caller's; the rules' conditions and actions share the cache's (syncRules only
// reads them): a caller must not change them in place.
func (c *RuleCache) ListRules(ctx context.Context, listenerID string) ([]providers.Rule, error) {
	c.mu.Lock()
	if e := c.listeners[listenerID]; e != nil && c.now().Sub(e.fetched) < c.resync {
		out := slices.Clone(e.rules)
		c.mu.Unlock()
		return out, nil
	}
	c.mu.Unlock()
	rules, err := c.ApplicationLoadBalancing.ListRules(ctx, listenerID)
	if err != nil {
		c.drop(listenerID)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(listenerID)
	c.listeners[listenerID] = &cachedRules{rules: slices.Clone(rules), fetched: c.now()}
	for _, r := range rules {
		c.owner[r.ID] = listenerID
	}
	return rules, nil
}

// CreateRule implements providers.Rules.
func (c *RuleCache) CreateRule(ctx context.Context, listenerID string, spec providers.RuleSpec) (providers.Rule, error) {
	r, err := c.ApplicationLoadBalancing.CreateRule(ctx, listenerID, spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.listeners[listenerID]
	if e == nil {
		return r, err
	}
	if err != nil || r.ID == "" {
		c.dropLocked(listenerID)
		return r, err
	}
	e.rules = slices.DeleteFunc(e.rules, func(h providers.Rule) bool { return h.ID == r.ID }) // an idempotent retry
	e.rules = append(e.rules, r)
	sortRules(e.rules)
	c.owner[r.ID] = listenerID
	return r, nil
}

// ModifyRule implements providers.Rules.
func (c *RuleCache) ModifyRule(ctx context.Context, ruleID string, spec providers.RuleSpec) (providers.Rule, error) {
	r, err := c.ApplicationLoadBalancing.ModifyRule(ctx, ruleID, spec)
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.owner[ruleID]
	if !ok {
		return r, err
	}
	e := c.listeners[l]
	i := slices.IndexFunc(e.rules, func(h providers.Rule) bool { return h.ID == ruleID })
	if err != nil || r.ID != ruleID || i < 0 {
		c.dropLocked(l)
		return r, err
	}
	r.Priority = e.rules[i].Priority // a modify keeps the priority
	e.rules[i] = r
	return r, nil
}

// DeleteRule implements providers.Rules.
func (c *RuleCache) DeleteRule(ctx context.Context, ruleID string) error {
	err := c.ApplicationLoadBalancing.DeleteRule(ctx, ruleID)
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.owner[ruleID]
	if !ok {
		return err
	}
	if err != nil {
		c.dropLocked(l)
		return err
	}
	e := c.listeners[l]
	e.rules = slices.DeleteFunc(e.rules, func(h providers.Rule) bool { return h.ID == ruleID })
	delete(c.owner, ruleID)
	return nil
}

// SetRulePriorities implements providers.Rules.
func (c *RuleCache) SetRulePriorities(ctx context.Context, priorities map[string]int) error {
	err := c.ApplicationLoadBalancing.SetRulePriorities(ctx, priorities)
	c.mu.Lock()
	defer c.mu.Unlock()
	touched := map[string]bool{}
	for id := range priorities {
		if l, ok := c.owner[id]; ok {
			touched[l] = true
		}
	}
	for l := range touched {
		if err != nil {
			c.dropLocked(l)
			continue
		}
		e := c.listeners[l]
		for i := range e.rules {
			if p, ok := priorities[e.rules[i].ID]; ok {
				e.rules[i].Priority = p
			}
		}
		sortRules(e.rules)
	}
	return err
}

// ModifyHTTPListener implements providers.ApplicationLoadBalancers; the listener's rules are
// listed again after it (a protocol change may change them).
func (c *RuleCache) ModifyHTTPListener(ctx context.Context, listenerID string, spec providers.HTTPListenerSpec) (providers.HTTPListener, error) {
	c.drop(listenerID)
	c.forgetPasses()
	return c.ApplicationLoadBalancing.ModifyHTTPListener(ctx, listenerID, spec)
}

// DeleteListener implements providers.LoadBalancing; its rules go with it.
func (c *RuleCache) DeleteListener(ctx context.Context, listenerID string) error {
	c.drop(listenerID)
	c.forgetPasses()
	return c.ApplicationLoadBalancing.DeleteListener(ctx, listenerID)
}

// DeleteLoadBalancer implements providers.LoadBalancing; its listeners' rules go with it (the
// cache does not know which listeners are its: it drops them all, a rare event).
func (c *RuleCache) DeleteLoadBalancer(ctx context.Context, loadBalancerID string) error {
	c.Invalidate()
	return c.ApplicationLoadBalancing.DeleteLoadBalancer(ctx, loadBalancerID)
}

// forgetPasses forgets every remembered pass: a listener changed (the memo does not say whose).
func (c *RuleCache) forgetPasses() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.passes)
}

func (c *RuleCache) drop(listenerID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(listenerID)
}

func (c *RuleCache) dropLocked(listenerID string) {
	if e := c.listeners[listenerID]; e != nil {
		for _, r := range e.rules {
			delete(c.owner, r.ID)
		}
	}
	delete(c.listeners, listenerID)
}

func sortRules(rules []providers.Rule) {
	slices.SortFunc(rules, func(a, b providers.Rule) int { return a.Priority - b.Priority })
}
