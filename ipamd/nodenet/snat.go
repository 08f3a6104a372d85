package nodenet

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Names inside nodenet's nftables table.
const (
	nftSetNoSNAT      = "nosnat"
	nftChainPre       = "prerouting"
	nftChainPost      = "postrouting"
	ruleCommentPrefix = "flatnet: "
)

// nftDesired is the whole table as it should be. Each rule carries a comment that states
// every parameter it was built from, so comparing comments compares rules.
type nftDesired struct {
	table  *nftables.Table
	set    *nftables.Set
	ranges []ipRange
	chains []*nftables.Chain
	rules  map[string][]*nftables.Rule // by chain name
}

// markPriority is the prerouting chain's: right after DNAT.
var markPriority = nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest + 10)

func (n *Node) desiredNFT() nftDesired {
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: NFTTable}
	set := &nftables.Set{Table: table, Name: nftSetNoSNAT, KeyType: nftables.TypeIPAddr, Interval: true}
	accept := nftables.ChainPolicyAccept
	// The mark is decided after DNAT (dstnat + 10), on the destination the packet will really
	// go to: a pod reaching a ClusterIP whose backend is in the VPC must keep its own
	// interface's route; marked, it would leave through eth0 with a secondary interface's
	// source, which the cloud's source check drops.
	pre := &nftables.Chain{Name: nftChainPre, Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: markPriority, Policy: &accept}
	post := &nftables.Chain{Name: nftChainPost, Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept}
	return nftDesired{
		table:  table,
		set:    set,
		ranges: mergeRanges(append(slices.Clone(n.cfg.VPCCIDRs), n.cfg.SNATExclusions...)),
		chains: []*nftables.Chain{pre, post},
		rules: map[string][]*nftables.Rule{
			nftChainPre:  {markRule(pre, set, n.cfg.Mark)},
			nftChainPost: {snatRule(post, set, n.cfg.Mark, n.cfg.PrimaryIP)},
		},
	}
}

func comment(s string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, ruleCommentPrefix+s)
}

// daddrNotIn loads the IPv4 destination and continues only if it is outside set.
func daddrNotIn(set *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: true},
	}
}

// markRule: ip daddr != @nosnat meta mark set meta mark | MARK. It runs before routing, so the
// policy rule "fwmark MARK lookup main" sends the packet out of the primary interface.
func markRule(c *nftables.Chain, set *nftables.Set, mark uint32) *nftables.Rule {
	exprs := append(daddrNotIn(set),
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^mark), Xor: binaryutil.NativeEndian.PutUint32(mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
	)
	return &nftables.Rule{Table: c.Table, Chain: c, Exprs: exprs,
		UserData: comment(fmt.Sprintf("mark %#x on traffic leaving the VPC", mark))}
}

// snatRule: meta mark & MARK == MARK ip daddr != @nosnat snat to PRIMARY fully-random. Only
// forwarded (pod) traffic carries the mark; the node's own traffic keeps the source it chose.
func snatRule(c *nftables.Chain, set *nftables.Set, mark uint32, primary netip.Addr) *nftables.Rule {
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mark), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(mark)},
	}
	exprs = append(exprs, daddrNotIn(set)...)
	exprs = append(exprs,
		&expr.Immediate{Register: 1, Data: primary.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, FullyRandom: true},
	)
	return &nftables.Rule{Table: c.Table, Chain: c, Exprs: exprs,
		UserData: comment(fmt.Sprintf("snat marked (%#x) traffic leaving the VPC to %s", mark, primary))}
}

// ensureSNAT adds the policy rule, converges the nftables table, and only then drops a stale
// rule (another mark). In that order, because the rule does nothing until packets carry the
// mark, while a mark without its rule would SNAT pod packets that still leave through a
// secondary interface, where the cloud drops them.
func (n *Node) ensureSNAT() error {
	if _, err := n.addMissingRules(n.snatRules(), isSNATRule); err != nil {
		return err
	}
	if err := n.ensureNFT(n.desiredNFT()); err != nil {
		return err
	}
	return n.ensureRules(n.snatRules(), isSNATRule)
}

// removeSNAT is the off switch, in the reverse order of ensureSNAT: the table (marks and SNAT)
// first, then the rule that no packet matches any more.
func (n *Node) removeSNAT() error {
	if err := n.deleteNFTTable(); err != nil {
		return err
	}
	return n.ensureRules(nil, isSNATRule)
}

// nftActual is what the kernel holds of nodenet's table.
type nftActual struct {
	table  *nftables.Table
	set    *nftables.Set
	ranges []ipRange
	chains map[string]*nftables.Chain
	rules  map[string][]*nftables.Rule
}

func readNFT(c *nftables.Conn) (*nftActual, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nftables: list tables: %w", err)
	}
	i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == NFTTable })
	if i < 0 {
		return nil, nil
	}
	a := &nftActual{table: tables[i], chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{}}
	if err := a.readSet(c); err != nil {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != NFTTable {
			continue
		}
		a.chains[ch.Name] = ch
		if a.rules[ch.Name], err = c.GetRules(a.table, ch); err != nil {
			return nil, fmt.Errorf("nftables: list rules of chain %s: %w", ch.Name, err)
		}
	}
	return a, nil
}

func (a *nftActual) readSet(c *nftables.Conn) error {
	sets, err := c.GetSets(a.table)
	if err != nil {
		return fmt.Errorf("nftables: list sets of table %s: %w", NFTTable, err)
	}
	i := slices.IndexFunc(sets, func(s *nftables.Set) bool { return s.Name == nftSetNoSNAT })
	if i < 0 {
		return nil
	}
	a.set = sets[i]
	els, err := c.GetSetElements(a.set)
	if err != nil {
		return fmt.Errorf("nftables: list elements of set %s: %w", nftSetNoSNAT, err)
	}
	a.ranges = rangesFromElements(els)
	return nil
}
