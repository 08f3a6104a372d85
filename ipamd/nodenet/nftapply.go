package nodenet

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// nftPlan is what to send in one transaction; the kernel applies a batch atomically, so
// packets see either the old ruleset or the new one, never a gap.
type nftPlan int

const (
	nftNothing nftPlan = iota
	nftCreate          // no table: create it whole
	nftReplace         // a chain or the set has the wrong shape: delete and recreate the table in one batch
	nftUpdate          // shapes right; refresh set elements and/or chain rules that differ
)

func (p nftPlan) String() string {
	return [...]string{"nothing", "create", "replace", "update"}[p]
}

// planNFT compares what is in the kernel with what should be. Pure.
func planNFT(want nftDesired, got *nftActual) (plan nftPlan, setStale bool, staleChains []string) {
	if got == nil {
		return nftCreate, false, nil
	}
	if got.set == nil || got.set.KeyType.Name != want.set.KeyType.Name || !got.set.Interval {
		return nftReplace, false, nil
	}
	if len(got.chains) != len(want.chains) {
		return nftReplace, false, nil
	}
	for _, ch := range want.chains {
		if !sameChainShape(ch, got.chains[ch.Name]) {
			return nftReplace, false, nil
		}
		if !slices.Equal(ruleComments(want.rules[ch.Name]), ruleComments(got.rules[ch.Name])) {
			staleChains = append(staleChains, ch.Name)
		}
	}
	setStale = !slices.Equal(want.ranges, got.ranges)
	if !setStale && len(staleChains) == 0 {
		return nftNothing, false, nil
	}
	return nftUpdate, setStale, staleChains
}

func sameChainShape(want, got *nftables.Chain) bool {
	if got == nil || got.Type != want.Type || got.Hooknum == nil || got.Priority == nil || got.Policy == nil {
		return false
	}
	return *got.Hooknum == *want.Hooknum && *got.Priority == *want.Priority && *got.Policy == *want.Policy
}

func ruleComments(rs []*nftables.Rule) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		out = append(out, s)
	}
	return out
}

// ensureNFT converges nodenet's table in at most one transaction.
func (n *Node) ensureNFT(want nftDesired) error {
	c, err := n.nft()
	if err != nil {
		return err
	}
	got, err := readNFT(c)
	if err != nil {
		return err
	}
	plan, setStale, staleChains := planNFT(want, got)
	switch plan {
	case nftNothing:
		return nil
	case nftCreate, nftReplace:
		if plan == nftReplace {
			c.DelTable(got.table)
		}
		if err := queueWholeTable(c, want); err != nil {
			return err
		}
	case nftUpdate:
		if err := queueUpdate(c, want, setStale, staleChains); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: apply table ip %s (plan %s, set stale %t, chains %v): %w",
			NFTTable, plan, setStale, staleChains, err)
	}
	n.log.Info("nftables converged", "table", NFTTable, "plan", plan, "setStale", setStale, "chains", staleChains)
	return nil
}

func queueWholeTable(c *nftables.Conn, want nftDesired) error {
	c.AddTable(want.table)
	if err := c.AddSet(want.set, setElements(want.ranges)); err != nil {
		return fmt.Errorf("nftables: queue set %s: %w", nftSetNoSNAT, err)
	}
	for _, ch := range want.chains {
		c.AddChain(ch)
		for _, r := range want.rules[ch.Name] {
			c.AddRule(r)
		}
	}
	return nil
}

// queueUpdate flushes and refills only what differs. Flushing a chain and adding its rules in
// the same batch is an atomic replace; conntrack, and with it every NAT binding, is untouched.
func queueUpdate(c *nftables.Conn, want nftDesired, setStale bool, staleChains []string) error {
	if setStale {
		c.FlushSet(want.set)
		if err := c.SetAddElements(want.set, setElements(want.ranges)); err != nil {
			return fmt.Errorf("nftables: queue elements of set %s: %w", nftSetNoSNAT, err)
		}
	}
	for _, ch := range want.chains {
		if !slices.Contains(staleChains, ch.Name) {
			continue
		}
		c.FlushChain(ch)
		for _, r := range want.rules[ch.Name] {
			c.AddRule(r)
		}
	}
	return nil
}

// deleteNFTTable removes nodenet's table if present.
func (n *Node) deleteNFTTable() error {
	c, err := n.nft()
	if err != nil {
		return err
	}
	got, err := readNFT(c)
	if err != nil || got == nil {
		return err
	}
	c.DelTable(got.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table ip %s: %w", NFTTable, err)
	}
	n.log.Info("nftables table removed", "table", NFTTable)
	return nil
}
