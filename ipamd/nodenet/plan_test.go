package nodenet

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

// actualFrom builds what the kernel would list back after applying want.
func actualFrom(want nftDesired) *nftActual {
	a := &nftActual{table: want.table, set: want.set, ranges: slices.Clone(want.ranges),
		chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{}}
	for _, ch := range want.chains {
		c := *ch
		a.chains[ch.Name] = &c
		a.rules[ch.Name] = slices.Clone(want.rules[ch.Name])
	}
	return a
}

func TestPlanNFT(t *testing.T) {
	n := &Node{cfg: Config{VPCCIDRs: pfx("10.0.0.0/16"), PrimaryIP: nodeIP, SNATExclusions: pfx("198.18.0.0/24")}}
	n.cfg.setDefaults()
	want := n.desiredNFT()
	other := func(mutate func(*Config)) nftDesired {
		o := &Node{cfg: n.cfg}
		mutate(&o.cfg)
		return o.desiredNFT()
	}
	for _, tc := range []struct {
		name       string
		got        *nftActual
		wantPlan   nftPlan
		wantSet    bool
		wantChains []string
	}{
		{"absent", nil, nftCreate, false, nil},
		{"identical", actualFrom(want), nftNothing, false, nil},
		{"exclusion changed: set only", actualFrom(other(func(c *Config) { c.SNATExclusions = nil })), nftUpdate, true, nil},
		{"primary IP changed: postrouting only", actualFrom(other(func(c *Config) { c.PrimaryIP = eth1IP })), nftUpdate, false, []string{nftChainPost}},
		{"mark changed: both chains", actualFrom(other(func(c *Config) { c.Mark = 0x100 })), nftUpdate, false, []string{nftChainPre, nftChainPost}},
		{"foreign rule appended", func() *nftActual {
			a := actualFrom(want)
			a.rules[nftChainPre] = append(a.rules[nftChainPre], &nftables.Rule{})
			return a
		}(), nftUpdate, false, []string{nftChainPre}},
		{"set missing", func() *nftActual { a := actualFrom(want); a.set = nil; return a }(), nftReplace, false, nil},
		{"chain missing", func() *nftActual { a := actualFrom(want); delete(a.chains, nftChainPost); return a }(), nftReplace, false, nil},
		{"chain priority changed", func() *nftActual {
			a := actualFrom(want)
			a.chains[nftChainPre].Priority = nftables.ChainPriorityFilter
			return a
		}(), nftReplace, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, setStale, chains := planNFT(want, tc.got)
			if plan != tc.wantPlan || setStale != tc.wantSet || !slices.Equal(chains, tc.wantChains) {
				t.Errorf("plan %s set %t chains %v; want %s %t %v", plan, setStale, chains, tc.wantPlan, tc.wantSet, tc.wantChains)
			}
		})
	}
}

func TestInterfaceRoutesAndRules(t *testing.T) {
	in := Interface{DeviceIndex: 2, MAC: mac1, PrimaryIP: netip.MustParseAddr("10.0.1.20"),
		SubnetCIDR: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1")}
	var got []string
	for _, r := range interfaceRoutes(in, 7, 102) {
		got = append(got, routeKey(r))
	}
	for _, r := range interfaceRules(in, 102) {
		got = append(got, ruleKey(r))
	}
	want := []string{
		"10.0.1.0/24 via <nil> dev 7 src 10.0.1.20 scope 253 table 102 proto 70",
		"0.0.0.0/0 via 10.0.1.1 dev 7 src <nil> scope 0 table 102 proto 70",
		`1536 from 10.0.1.20/32 to <nil> fwmark 0x0/0x0 iif "" oif "" not false table 102 proto 70`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRouteTable(t *testing.T) {
	for _, tc := range []struct{ base, index, want int }{
		{0, 0, 0}, {0, 1, 101}, {0, 15, 115}, {1000, 2, 1002}, {1000, 0, 0},
	} {
		c := Config{TableBase: tc.base}
		c.setDefaults()
		if got := (&Node{cfg: c}).RouteTable(tc.index); got != tc.want {
			t.Errorf("base %d index %d: table %d, want %d", tc.base, tc.index, got, tc.want)
		}
	}
}
