package fabric

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/flatnet/flatnet/internal/netns"
)

// The load balancer's program goes to the kernel over nftables' netlink API, in one batch: the
// table and chains are added (a no-op when present, so they stay hooked), the chains flushed and
// refilled. The kernel applies a batch as one transaction, so packets see the old rules or the
// new ones, and conntrack keeps every established connection on the target it was sent to.
// RenderLBProgram is the same program as nft syntax: what the hash covers and what a person
// reads; lbRulesetOf is its netlink form, rule for rule (TestLBRulesetMatchesNft holds them
// together by loading both into namespaces and comparing what the kernel reads back).

// Bits of the conntrack state and status words (linux/netfilter/nf_conntrack_common.h).
const (
	ctStateNew   = 1 << 3
	ctStatusDNAT = 1 << 5
)

// lbNftTable is the table every program has and its chains, which never change shape: a network
// load balancer's guard, dnat and snat; an application load balancer's guard and program.
type lbNftTable struct {
	table                      *nftables.Table
	guard, dnat, snat, program *nftables.Chain
	app                        bool
}

func newLBNftTable() lbNftTable {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: lbTable}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: &prio, Policy: &accept}
	}
	return lbNftTable{
		table: t,
		guard: chain(lbChainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, -150),
		dnat:  chain(lbChainDNAT, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, -100),
		snat:  chain(lbChainSNAT, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, 100),
		// A regular chain: no type, hook, priority or policy.
		program: &nftables.Chain{Name: lbChainProgram, Table: t},
	}
}

func (t lbNftTable) chains() []*nftables.Chain {
	if t.app {
		return []*nftables.Chain{t.guard, t.program}
	}
	return []*nftables.Chain{t.guard, t.dnat, t.snat}
}

// lbRuleset is a program in netlink form: the anonymous sets and maps its rules look up, and
// the rules in order.
type lbRuleset struct {
	lbNftTable
	sets  []lbSet
	rules []*nftables.Rule
}

type lbSet struct {
	set   *nftables.Set
	elems []nftables.SetElement
}

// lbRulesetOf is the netlink form of RenderLBProgram's script, encoded as nft encodes it
// (TestLBRulesetMatchesNft): a set of one address or one prefix becomes a plain comparison,
// and each rule looks up its own copy of an anonymous set. It is pure.
func lbRulesetOf(prog LBProgram) lbRuleset {
	rs := lbRuleset{lbNftTable: newLBNftTable()}
	rs.app = prog.App
	rule := func(ch *nftables.Chain, comment string, exprs ...[]expr.Any) {
		rs.rules = append(rs.rules, &nftables.Rule{Table: rs.table, Chain: ch, Exprs: slices.Concat(exprs...),
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	if len(prog.Allowed) > 0 {
		rule(rs.guard, "source ranges", ctBits(expr.CtKeySTATE, ctStateNew),
			rs.toAddrs(ipDaddr, prog.VIPs), rs.outside(ipSaddr, prog.Allowed),
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
	}
	if prog.App {
		rule(rs.program, lbHashTag+prog.Hash, []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}})
		return rs
	}
	for _, l := range prog.Listeners {
		if len(l.Targets) == 0 {
			continue
		}
		vips := rs.toAddrs(ipDaddr, prog.VIPs)
		targets := rs.addSet(&nftables.Set{IsMap: true, KeyType: nftables.TypeInteger,
			DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)}, targetElements(l.Targets))
		proto := byte(unix.IPPROTO_TCP)
		if l.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}
		rule(rs.dnat, fmt.Sprintf("%s/%d", l.Protocol, l.Port), vips, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, uint16(l.Port))},
			// Each new connection takes the next target in turn.
			&expr.Numgen{Register: 1, Modulus: uint32(len(l.Targets)), Type: unix.NFT_NG_INCREMENTAL},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: targets.Name, SetID: targets.ID},
			// The address lands in register 1's first word, the port in the next (register 9).
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9},
		})
	}
	rule(rs.snat, lbHashTag+prog.Hash, ctBits(expr.CtKeySTATUS, ctStatusDNAT), []expr.Any{
		&expr.Immediate{Register: 1, Data: prog.Addr.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	})
	return rs
}

// addSet adds an anonymous constant set to the batch.
//
// Set IDs (which tie a rule's lookup to a set added in the same batch) are numbered here
// rather than by google/nftables, whose counter is a package global shared, unlocked, with
// every other connection in the process (ipamd's, in the lab).
func (rs *lbRuleset) addSet(s *nftables.Set, elems []nftables.SetElement) *nftables.Set {
	s.Table, s.Anonymous, s.Constant = rs.table, true, true
	s.ID = uint32(len(rs.sets) + 1)
	s.Name = "__set%d" // the kernel numbers anonymous sets
	if s.IsMap {
		s.Name = "__map%d"
	}
	rs.sets = append(rs.sets, lbSet{s, elems})
	return s
}

// Offsets of the addresses in the IPv4 header.
const (
	ipSaddr = 12
	ipDaddr = 16
)

// toAddrs matches packets whose IPv4 address at offset is one of addrs.
func (rs *lbRuleset) toAddrs(offset uint32, addrs []netip.Addr) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	if len(addrs) == 1 {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addrs[0].AsSlice()}}
	}
	els := make([]nftables.SetElement, len(addrs))
	for i, a := range addrs {
		els[i] = nftables.SetElement{Key: a.AsSlice()}
	}
	s := rs.addSet(&nftables.Set{KeyType: nftables.TypeIPAddr}, els)
	return []expr.Any{load, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID}}
}

// outside matches packets whose IPv4 address at offset is in none of the prefixes.
func (rs *lbRuleset) outside(offset uint32, ps []netip.Prefix) []expr.Any {
	if len(ps) > 1 {
		s := rs.addSet(&nftables.Set{Interval: true, KeyType: nftables.TypeIPAddr}, intervalElements(ps))
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: true},
		}
	}
	p := ps[0].Masked()
	if n := uint32(p.Bits() / 8); p.Bits()%8 == 0 && n > 0 {
		// Whole bytes: compare just the network part.
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: p.Addr().AsSlice()[:n]},
		}
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: net.CIDRMask(p.Bits(), 32), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: p.Addr().AsSlice()},
	}
}

// ctBits matches packets whose conntrack key (state or status) has one of bits set.
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: key, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// targetElements maps 0..n-1, the values numgen produces (a host-order word), to the targets'
// address . port. Each field of a concatenation fills a whole 4-byte register word, so the
// port is padded. (`nft list` shows the keys byte-swapped, 1 as 16777216: google/nftables
// marks every anonymous set's keys big-endian. The kernel compares bytes, which are right.)
func targetElements(ts []TargetAddr) []nftables.SetElement {
	els := make([]nftables.SetElement, len(ts))
	for i, tg := range ts {
		val := binary.BigEndian.AppendUint16(tg.IP.AsSlice(), uint16(tg.Port))
		els[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: append(val, 0, 0)}
	}
	return els
}

// intervalElements encodes prefixes as an interval set's elements, as nft does: each range's
// first address, and an interval end one past its last (none when that would be past
// 255.255.255.255), with an end at 0.0.0.0 when the first range starts later. Overlapping and
// adjacent prefixes are merged first: the kernel refuses overlapping intervals.
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	type span struct{ lo, hi uint64 } // hi is one past the last address
	spans := make([]span, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		lo := uint64(binary.BigEndian.Uint32(p.Addr().AsSlice()))
		spans = append(spans, span{lo, lo + 1<<(32-p.Bits())})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && s.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	var els []nftables.SetElement
	if len(merged) > 0 && merged[0].lo != 0 {
		els = append(els, nftables.SetElement{Key: []byte{0, 0, 0, 0}, IntervalEnd: true})
	}
	for _, s := range merged {
		els = append(els, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, uint32(s.lo))})
		if s.hi < 1<<32 {
			els = append(els, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, uint32(s.hi)), IntervalEnd: true})
		}
	}
	return els
}

// withLBConn runs fn with an nf_tables connection inside a load balancer's namespace. The
// connection opens a netlink socket per request there, so it holds nothing once fn returns.
func (k *kernel) withLBConn(id string, fn func(c *nftables.Conn) error) error {
	ns := LBNetns(k.prefix, id)
	fd, err := unix.Open(netns.Path(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return fmt.Errorf("nftables connection in %s: %w", ns, err)
	}
	return fn(c)
}

// programLB replaces the load balancer's nftables program in one transaction. An application
// load balancer's table is deleted and made again in it (RenderLBProgram says why).
func (k *kernel) programLB(lb *LB) error {
	rs := lbRulesetOf(lb.Program)
	err := k.withLBConn(lb.ID, func(c *nftables.Conn) error {
		c.AddTable(rs.table)
		if rs.app {
			c.DelTable(rs.table)
			c.AddTable(rs.table)
		}
		for _, ch := range rs.chains() {
			c.AddChain(ch)
			if !rs.app {
				c.FlushChain(ch)
			}
		}
		for _, s := range rs.sets {
			if err := c.AddSet(s.set, s.elems); err != nil {
				return fmt.Errorf("encode set %s: %w", s.set.Name, err)
			}
		}
		for _, r := range rs.rules {
			c.AddRule(r)
		}
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("program load balancer %s: %w", lb.ID, err)
	}
	return nil
}

// programHashIn reads the hash of the program a load balancer's namespace runs: "" when the
// namespace has no program (which makes the fabric write it), an error when it cannot tell.
func (k *kernel) programHashIn(id string) (string, error) {
	var hash string
	err := k.withLBConn(id, func(c *nftables.Conn) error {
		t := newLBNftTable()
		// A dump of the chains is empty rather than failing without the table; GetRules fails,
		// and google/nftables drops its errno, so ENOENT could not be told from other errors.
		chains, err := c.ListChainsOfTableFamily(t.table.Family)
		if err != nil {
			return fmt.Errorf("list chains: %w", err)
		}
		// The hash is in from_lb (a network load balancer's) or program (an application one's).
		for _, want := range []*nftables.Chain{t.snat, t.program} {
			if hash != "" {
				break
			}
			if !slices.ContainsFunc(chains, func(ch *nftables.Chain) bool {
				return ch.Table.Name == t.table.Name && ch.Name == want.Name
			}) {
				continue
			}
			rules, err := c.GetRules(t.table, want)
			if err != nil {
				return fmt.Errorf("list rules of chain %s: %w", want.Name, err)
			}
			for _, r := range rules {
				if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
					if h := parseProgramHash(s); h != "" {
						hash = h
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the program of load balancer %s: %w", id, err)
	}
	return hash, nil
}
