package fabric

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// nftView is an nftables table as the tests compare it: the same rendering for the batch the
// fabric sends (lbRuleset.view) and for what the kernel holds (readNftView), in the spirit of
// `nft --debug=netlink`. Sets are written out inline where rules look them up, their elements
// sorted, since anonymous set names and the kernel's element order carry no meaning.
type nftView struct {
	chains []*nftables.Chain
	rules  map[string][]*nftables.Rule // by chain name
	set    func(*expr.Lookup) (lbSet, bool)
}

func (rs lbRuleset) view() nftView {
	v := nftView{chains: rs.chains(), rules: map[string][]*nftables.Rule{}}
	for _, r := range rs.rules {
		v.rules[r.Chain.Name] = append(v.rules[r.Chain.Name], r)
	}
	v.set = func(l *expr.Lookup) (lbSet, bool) {
		i := slices.IndexFunc(rs.sets, func(s lbSet) bool { return s.set.ID == l.SetID })
		if i < 0 {
			return lbSet{}, false
		}
		return rs.sets[i], true
	}
	return v
}

// readNftView reads the table flatnet_lb back from the kernel over c (an empty view without it).
func readNftView(t testing.TB, c *nftables.Conn) nftView {
	t.Helper()
	tab := newLBNftTable()
	all, err := c.ListChainsOfTableFamily(tab.table.Family)
	if err != nil {
		t.Fatalf("list chains: %v", err)
	}
	v := nftView{rules: map[string][]*nftables.Rule{}}
	order := []string{lbChainGuard, lbChainDNAT, lbChainSNAT, lbChainProgram}
	for _, ch := range all {
		if ch.Table.Name == lbTable {
			v.chains = append(v.chains, ch)
		}
	}
	rank := func(ch *nftables.Chain) int { return slices.Index(order, ch.Name) }
	slices.SortFunc(v.chains, func(a, b *nftables.Chain) int { return rank(a) - rank(b) })
	if len(v.chains) == 0 {
		v.set = func(*expr.Lookup) (lbSet, bool) { return lbSet{}, false }
		return v
	}
	for _, ch := range v.chains {
		if v.rules[ch.Name], err = c.GetRules(tab.table, ch); err != nil {
			t.Fatalf("rules of %s: %v", ch.Name, err)
		}
	}
	sets, err := c.GetSets(tab.table)
	if err != nil {
		t.Fatalf("sets: %v", err)
	}
	byName := map[string]lbSet{}
	for _, s := range sets {
		s.Table = tab.table
		els, err := c.GetSetElements(s)
		if err != nil {
			t.Fatalf("elements of %s: %v", s.Name, err)
		}
		byName[s.Name] = lbSet{s, els}
	}
	v.set = func(l *expr.Lookup) (lbSet, bool) { s, ok := byName[l.SetName]; return s, ok }
	return v
}

func (v nftView) String() string {
	var b strings.Builder
	for _, ch := range v.chains {
		if ch.Hooknum == nil {
			fmt.Fprintf(&b, "chain %s: regular\n", ch.Name)
		} else {
			fmt.Fprintf(&b, "chain %s: %s hook %s priority %d policy %s\n", ch.Name, ch.Type,
				hookName(ch.Hooknum), deref(ch.Priority), map[nftables.ChainPolicy]string{0: "drop", 1: "accept"}[deref(ch.Policy)])
		}
		for _, r := range v.rules[ch.Name] {
			c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			fmt.Fprintf(&b, "  rule %q\n", c)
			for _, e := range r.Exprs {
				fmt.Fprintf(&b, "    [ %s ]\n", v.expr(e))
			}
		}
	}
	return b.String()
}

func (v nftView) expr(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Ct:
		return fmt.Sprintf("ct load %s => reg %d", map[expr.CtKey]string{expr.CtKeySTATE: "state", expr.CtKeySTATUS: "status"}[e.Key], e.Register)
	case *expr.Bitwise:
		return fmt.Sprintf("bitwise reg %d = (reg %d & %x) ^ %x", e.DestRegister, e.SourceRegister, e.Mask, e.Xor)
	case *expr.Cmp:
		return fmt.Sprintf("cmp %s reg %d %x", map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq"}[e.Op], e.Register, e.Data)
	case *expr.Payload:
		base := map[expr.PayloadBase]string{expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}[e.Base]
		return fmt.Sprintf("payload load %db @ %s header + %d => reg %d", e.Len, base, e.Offset, e.DestRegister)
	case *expr.Meta:
		return fmt.Sprintf("meta load %s => reg %d", map[expr.MetaKey]string{expr.MetaKeyL4PROTO: "l4proto"}[e.Key], e.Register)
	case *expr.Numgen:
		return fmt.Sprintf("numgen reg %d = %s mod %d offset %d", e.Register,
			map[uint32]string{unix.NFT_NG_INCREMENTAL: "inc", unix.NFT_NG_RANDOM: "random"}[e.Type], e.Modulus, e.Offset)
	case *expr.Lookup:
		s := "lookup reg " + fmt.Sprint(e.SourceRegister)
		if set, ok := v.set(e); ok {
			s += " " + renderSet(set)
		} else {
			s += " missing set " + e.SetName
		}
		if e.IsDestRegSet {
			s += fmt.Sprintf(" => reg %d", e.DestRegister)
		}
		if e.Invert {
			s += " invert"
		}
		return s
	case *expr.NAT:
		s := fmt.Sprintf("nat %s %s", map[expr.NATType]string{expr.NATTypeDestNAT: "dnat", expr.NATTypeSourceNAT: "snat"}[e.Type],
			map[uint32]string{unix.NFPROTO_IPV4: "ip"}[e.Family])
		// The kernel reads a range's missing end back as its start: leave that out.
		for _, r := range []struct {
			name     string
			reg, min uint32
		}{{"addr_min", e.RegAddrMin, 0}, {"addr_max", e.RegAddrMax, e.RegAddrMin}, {"proto_min", e.RegProtoMin, 0}, {"proto_max", e.RegProtoMax, e.RegProtoMin}} {
			if r.reg != 0 && r.reg != r.min {
				s += fmt.Sprintf(" %s reg %d", r.name, r.reg)
			}
		}
		return s
	case *expr.Immediate:
		return fmt.Sprintf("immediate reg %d %x", e.Register, e.Data)
	case *expr.Verdict:
		return fmt.Sprintf("verdict %s", map[expr.VerdictKind]string{expr.VerdictDrop: "drop", expr.VerdictAccept: "accept"}[e.Kind])
	}
	return fmt.Sprintf("%T %+v", e, e)
}

// renderSet writes a set's kind and its elements.
func renderSet(s lbSet) string {
	var kind []string
	for _, f := range []struct {
		on   bool
		name string
	}{{s.set.IsMap, "map"}, {!s.set.IsMap, "set"}, {s.set.Anonymous, "anonymous"}, {s.set.Constant, "constant"}, {s.set.Interval, "interval"}} {
		if f.on {
			kind = append(kind, f.name)
		}
	}
	kind = append(kind, s.set.KeyType.Name)
	if s.set.IsMap {
		kind = append(kind, ":", s.set.DataType.Name)
	}
	return strings.Join(kind, " ") + " { " + renderElems(s) + " }"
}

// renderElems writes a set's elements sorted: keys of plain sets as addresses, of maps as the
// host-order word numgen produces, and map values as address . port.
func renderElems(s lbSet) string {
	els := slices.Clone(s.elems)
	slices.SortFunc(els, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return map[bool]int{true: 0, false: 1}[a.IntervalEnd] - map[bool]int{true: 0, false: 1}[b.IntervalEnd]
	})
	parts := make([]string, len(els))
	for i, e := range els {
		switch {
		case s.set.IsMap && len(e.Key) == 4 && len(e.Val) == 8:
			ip, _ := netip.AddrFromSlice(e.Val[:4])
			parts[i] = fmt.Sprintf("%d : %s . %d", binaryutil.NativeEndian.Uint32(e.Key), ip, binary.BigEndian.Uint16(e.Val[4:6]))
			if !slices.Equal(e.Val[6:], []byte{0, 0}) {
				parts[i] += " padding " + hex.EncodeToString(e.Val[6:])
			}
		case !s.set.IsMap && len(e.Key) == 4:
			ip, _ := netip.AddrFromSlice(e.Key)
			parts[i] = ip.String()
		default:
			parts[i] = fmt.Sprintf("%x : %x", e.Key, e.Val)
		}
		if e.IntervalEnd {
			parts[i] += " (end)"
		}
	}
	return strings.Join(parts, ", ")
}

func hookName(h *nftables.ChainHook) string {
	if h == nil {
		return "none"
	}
	switch *h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprint(*h)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
