package fabric

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The load balancer's program goes to the kernel over nftables' netlink API, in one batch: the
// table and chains are added (a no-op when present, so they stay hooked), the chains flushed and
// refilled. The kernel applies a batch as one transaction, so packets see the old rules or the
// new ones, and conntrack keeps every established connection on the target it was sent to.
// RenderLBProgram is the same program as nft syntax: what the hash covers and what a person
// reads; lbRules is its netlink form, rule for rule.

// Bits of the conntrack state and status words (linux/netfilter/nf_conntrack_common.h).
const (
	ctStateNew   = 1 << 3
	ctStatusDNAT = 1 << 5
)

// withLBConn runs fn with an nf_tables connection inside a load balancer's namespace.
func (k *kernel) withLBConn(id string, fn func(c *nftables.Conn) error) error {
	ns := LBNetns(k.prefix, id)
	fd, err := unix.Open(NetnsPath(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
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

// lbTables are the table and chains every program has.
func lbTables() (*nftables.Table, [3]*nftables.Chain) {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: lbTable}
	accept := nftables.ChainPolicyAccept
	chain := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio int) *nftables.Chain {
		return &nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: nftables.ChainPriorityRef(nftables.ChainPriority(prio)), Policy: &accept}
	}
	return t, [3]*nftables.Chain{
		chain(lbChainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, -150),
		chain(lbChainDNAT, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, -100),
		chain(lbChainSNAT, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, 100),
	}
}

// programLB replaces the load balancer's nftables program in one transaction.
func (k *kernel) programLB(lb *LB) error {
	err := k.withLBConn(lb.ID, func(c *nftables.Conn) error {
		t, chains := lbTables()
		c.AddTable(t)
		for _, ch := range chains {
			c.AddChain(ch)
			c.FlushChain(ch)
		}
		if err := addLBRules(c, t, chains, lb.Program); err != nil {
			return err
		}
		return c.Flush()
	})
	if err != nil {
		return fmt.Errorf("program load balancer %s: %w", lb.ID, err)
	}
	return nil
}

// addLBRules queues the program's rules (and the anonymous sets and maps they use) on c.
func addLBRules(c *nftables.Conn, t *nftables.Table, chains [3]*nftables.Chain, prog LBProgram) error {
	guard, dnat, snat := chains[0], chains[1], chains[2]
	vips := func() (*nftables.Set, error) {
		s := &nftables.Set{Table: t, Anonymous: true, Constant: true, KeyType: nftables.TypeIPAddr}
		var els []nftables.SetElement
		for _, a := range prog.VIPs {
			els = append(els, nftables.SetElement{Key: a.AsSlice()})
		}
		return s, c.AddSet(s, els)
	}
	if len(prog.Allowed) > 0 {
		vs, err := vips()
		if err != nil {
			return fmt.Errorf("VIP set: %w", err)
		}
		allowed := &nftables.Set{Table: t, Anonymous: true, Constant: true, Interval: true, KeyType: nftables.TypeIPAddr}
		if err := c.AddSet(allowed, intervalElements(prog.Allowed)); err != nil {
			return fmt.Errorf("source ranges set: %w", err)
		}
		exprs := slices.Concat(ctBits(expr.CtKeySTATE, ctStateNew),
			lookupAddr(16, vs, false), lookupAddr(12, allowed, true),
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
		c.AddRule(&nftables.Rule{Table: t, Chain: guard, Exprs: exprs, UserData: comment("source ranges")})
	}
	for _, l := range prog.Listeners {
		if len(l.Targets) == 0 {
			continue
		}
		vs, err := vips()
		if err != nil {
			return fmt.Errorf("VIP set: %w", err)
		}
		targets := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true, KeyType: nftables.TypeInteger,
			DataType: nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)}
		els := make([]nftables.SetElement, len(l.Targets))
		for i, tg := range l.Targets {
			port := binary.BigEndian.AppendUint16(nil, uint16(tg.Port))
			els[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)),
				Val: slices.Concat(tg.IP.AsSlice(), port, []byte{0, 0})} // each concatenated field fills 4 bytes
		}
		if err := c.AddSet(targets, els); err != nil {
			return fmt.Errorf("targets of %s/%d: %w", l.Protocol, l.Port, err)
		}
		proto := byte(unix.IPPROTO_TCP)
		if l.Protocol == "udp" {
			proto = unix.IPPROTO_UDP
		}
		exprs := slices.Concat(lookupAddr(16, vs, false), []expr.Any{
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
		c.AddRule(&nftables.Rule{Table: t, Chain: dnat, Exprs: exprs, UserData: comment(fmt.Sprintf("%s/%d", l.Protocol, l.Port))})
	}
	exprs := slices.Concat(ctBits(expr.CtKeySTATUS, ctStatusDNAT), []expr.Any{
		&expr.Immediate{Register: 1, Data: prog.Addr.AsSlice()},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
	})
	c.AddRule(&nftables.Rule{Table: t, Chain: snat, Exprs: exprs, UserData: comment(lbHashTag + prog.Hash)})
	return nil
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

// lookupAddr matches the IPv4 address at offset (12 source, 16 destination) against a set, or,
// with invert, its absence from it.
func lookupAddr(offset uint32, s *nftables.Set, invert bool) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: invert},
	}
}

func comment(s string) []byte { return userdata.AppendString(nil, userdata.TypeComment, s) }

// intervalElements encodes prefixes as an interval set's elements, as nft does: each range's
// first address, and an interval end one past its last. Overlapping or adjacent prefixes are
// merged first (the kernel refuses overlapping intervals).
func intervalElements(ps []netip.Prefix) []nftables.SetElement {
	type span struct{ lo, hi uint64 } // hi is one past the last address
	spans := make([]span, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		lo := uint64(binary.BigEndian.Uint32(p.Addr().AsSlice()))
		spans = append(spans, span{lo, lo + 1<<(32-p.Bits())})
	}
	slices.SortFunc(spans, func(a, b span) int { return int(int64(a.lo) - int64(b.lo)) })
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
		if s.hi <= 1<<32-1 {
			els = append(els, nftables.SetElement{Key: binary.BigEndian.AppendUint32(nil, uint32(s.hi)), IntervalEnd: true})
		}
	}
	return els
}

// programHashIn reads the hash of the program a load balancer's namespace runs ("" when it has
// no table, which makes the fabric write the program).
func (k *kernel) programHashIn(id string) string {
	var hash string
	_ = k.withLBConn(id, func(c *nftables.Conn) error {
		t, chains := lbTables()
		rules, err := c.GetRules(t, chains[2])
		if err != nil {
			return err
		}
		for _, r := range rules {
			if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok {
				if h := parseProgramHash(s); h != "" {
					hash = h
				}
			}
		}
		return nil
	})
	return hash
}
