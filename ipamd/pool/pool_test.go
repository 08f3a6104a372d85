package pool

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ips(base string, n int) []netip.Addr {
	a := netip.MustParseAddr(base)
	out := make([]netip.Addr, n)
	for i := range n {
		out[i] = a
		a = a.Next()
	}
	return out
}

func pfx(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, x := range s {
		out[i] = netip.MustParsePrefix(x)
	}
	return out
}

var m5large = Limits{MaxInterfaces: 3, IPv4PerInterface: 10}

func TestDecide(t *testing.T) {
	ipc := DefaultConfig(ModeIP)         // low 3, high 10, batch 32
	pc := DefaultConfig(ModePrefix)      // low 8, high 24
	idle := t0.Add(-2 * ipc.IdleRelease) // last demand long ago
	busy := t0.Add(-time.Second)
	primary := func(slots, avail, cool, asg int) Interface {
		return Interface{ID: "eni-0", DeviceIndex: 0, Slots: slots, Available: avail, Cooling: cool, Assigned: asg, FreeIPs: ips("10.0.0.10", avail)}
	}
	for name, tc := range map[string]struct {
		cfg  Config
		st   State
		want Plan
	}{
		"empty node grows to the low watermark": {ipc, State{Now: t0, Limits: m5large, Interfaces: []Interface{primary(1, 0, 0, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 3}}}},
		"at the low watermark nothing happens": {ipc, State{Now: t0, Limits: m5large, LastDemand: busy, Interfaces: []Interface{primary(4, 3, 0, 0)}},
			Plan{}},
		"one waiter below the watermark grows by waiter + watermark": {ipc, State{Now: t0, Limits: m5large, Waiting: 1, LastDemand: busy, Interfaces: []Interface{primary(4, 0, 0, 3)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 4}}}},
		"recent demand scales the batch up to the high watermark": {ipc, State{Now: t0, Limits: m5large, Waiting: 2, RecentDemand: 20, LastDemand: busy, Interfaces: []Interface{primary(2, 0, 0, 1)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 8}, {Kind: Attach, DeviceIndex: 1, Count: 4}}}},
		"burst of 30 waiters fills the primary then attaches": {ipc, State{Now: t0, Limits: m5large, Waiting: 30, LastDemand: busy, Interfaces: []Interface{primary(1, 0, 0, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 9}, {Kind: Attach, DeviceIndex: 1, Count: 9}, {Kind: Attach, DeviceIndex: 2, Count: 9}},
				Full: true, Reason: "node holds 0 of the 27 pod addresses it may have (0 assigned, 0 cooling down, 0 free; 1 of 3 interfaces x 9 slots, mode ip)"}},
		"full primary attaches a new interface at the first free index": {ipc, State{Now: t0, Limits: m5large, Waiting: 1, LastDemand: busy, Interfaces: []Interface{
			primary(10, 0, 0, 9), {ID: "eni-2", DeviceIndex: 2, Managed: true, Slots: 10, Assigned: 9}}},
			Plan{Actions: []Action{{Kind: Attach, DeviceIndex: 1, Count: 4}}}},
		"node at its limit is full with a reason": {ipc, State{Now: t0, Limits: m5large, Waiting: 1, LastDemand: busy, Interfaces: []Interface{
			primary(10, 0, 0, 9), {ID: "eni-1", DeviceIndex: 1, Slots: 10, Assigned: 9}, {ID: "eni-2", DeviceIndex: 2, Slots: 10, Assigned: 7, Cooling: 2}}},
			Plan{Full: true, Reason: "node holds 27 of the 27 pod addresses it may have (25 assigned, 2 cooling down, 0 free; 3 of 3 interfaces x 9 slots, mode ip)"}},
		"cooling addresses are not available: the pool grows": {ipc, State{Now: t0, Limits: m5large, LastDemand: busy, Interfaces: []Interface{primary(6, 0, 5, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 3}}}},
		"max-interfaces 1 never attaches": {Config{Mode: ModeIP, WarmLow: 3, WarmHigh: 10, MaxBatch: 32, IdleRelease: time.Minute, MaxInterfaces: 1},
			State{Now: t0, Limits: m5large, Waiting: 20, LastDemand: busy, Interfaces: []Interface{primary(1, 0, 0, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 9}}, Full: true,
				Reason: "node holds 0 of the 9 pod addresses it may have (0 assigned, 0 cooling down, 0 free; 1 of 1 interfaces x 9 slots, mode ip)"}},
		"max-addresses caps growth": {Config{Mode: ModeIP, WarmLow: 3, WarmHigh: 10, MaxBatch: 32, IdleRelease: time.Minute, MaxAddresses: 5},
			State{Now: t0, Limits: m5large, Waiting: 1, RecentDemand: 10, LastDemand: busy, Interfaces: []Interface{primary(4, 0, 0, 3)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 2}}}},
		"excess is kept while demand is recent": {ipc, State{Now: t0, Limits: m5large, LastDemand: busy, Interfaces: []Interface{primary(10, 9, 0, 0)}},
			Plan{}},
		"excess above high is given back after idle": {ipc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{primary(10, 9, 0, 0),
			{ID: "eni-1", DeviceIndex: 1, Managed: true, Slots: 6, Available: 2, Assigned: 3, FreeIPs: ips("10.0.1.9", 2)}}},
			Plan{Actions: []Action{{Kind: Unassign, Interface: "eni-1", DeviceIndex: 1, IPs: ips("10.0.1.9", 1)}}}},
		"cooling and assigned are never given back nor counted": {ipc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{
			{ID: "eni-0", Slots: 10, Available: 1, Cooling: 8, FreeIPs: ips("10.0.0.2", 1)},
			{ID: "eni-1", DeviceIndex: 1, Slots: 10, Available: 3, Assigned: 6, FreeIPs: ips("10.0.1.2", 3)}}},
			Plan{}},
		"cooling is not counted toward the excess": {ipc, State{Now: t0, Limits: Limits{MaxInterfaces: 3, IPv4PerInterface: 30}, LastDemand: idle, Interfaces: []Interface{
			{ID: "eni-0", Slots: 21, Available: 12, Cooling: 8, FreeIPs: ips("10.0.0.2", 12)}}},
			Plan{Actions: []Action{{Kind: Unassign, Interface: "eni-0", IPs: ips("10.0.0.2", 2)}}}},
		"an idle empty interface ipamd attached is detached": {ipc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{primary(10, 5, 0, 4),
			{ID: "eni-1", DeviceIndex: 1, Managed: true, Slots: 3, Available: 2, FreeIPs: ips("10.0.1.5", 2)}}},
			Plan{Actions: []Action{{Kind: Detach, Interface: "eni-1", DeviceIndex: 1}}}},
		"an interface ipamd did not attach stays": {ipc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{primary(10, 5, 0, 4),
			{ID: "eni-1", DeviceIndex: 1, Slots: 3, Available: 2, FreeIPs: ips("10.0.1.5", 2)}}},
			Plan{}},
		"detach waits until the low watermark holds without it": {ipc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{primary(10, 1, 0, 8),
			{ID: "eni-1", DeviceIndex: 1, Managed: true, Slots: 3, Available: 2, FreeIPs: ips("10.0.1.5", 2)}}},
			Plan{}},
		"prefix mode grows by whole prefixes": {pc, State{Now: t0, Limits: m5large, Waiting: 1, Interfaces: []Interface{primary(1, 0, 0, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 1}}}},
		"prefix mode burst takes several prefixes in one call": {pc, State{Now: t0, Limits: m5large, Waiting: 40, Interfaces: []Interface{primary(1, 0, 0, 0)}},
			Plan{Actions: []Action{{Kind: Assign, Interface: "eni-0", Count: 3}}}},
		"prefix mode gives back only wholly free prefixes, above high": {pc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{
			{ID: "eni-0", Slots: 4, Available: 44, Assigned: 4, FreePrefixes: pfx("10.0.0.32/28", "10.0.0.48/28")}}},
			Plan{Actions: []Action{{Kind: Unassign, Interface: "eni-0", Prefixes: pfx("10.0.0.32/28")}}}},
		"prefix mode keeps a prefix when giving it back would cross high": {pc, State{Now: t0, Limits: m5large, LastDemand: idle, Interfaces: []Interface{
			{ID: "eni-0", Slots: 3, Available: 30, Assigned: 2, FreePrefixes: pfx("10.0.0.32/28")}}},
			Plan{}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.cfg.Validate(tc.st.Limits); err != nil {
				t.Fatalf("config: %v", err)
			}
			got := Decide(tc.cfg, tc.st)
			if d := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
				t.Errorf("plan (-want +got):\n%s", d)
			}
		})
	}
}

// The instance types of docs/cloud-reference.md: interfaces x IPv4 per interface.
var instanceTypes = map[string]Limits{
	"t3.nano": {2, 2}, "t3.small": {3, 4}, "t3.medium": {3, 6}, "t3.large": {3, 12},
	"m5.large": {3, 10}, "c5.large": {3, 10}, "m5.xlarge": {4, 15}, "m5.2xlarge": {4, 15},
	"m5.4xlarge": {8, 30}, "c5.4xlarge": {8, 30}, "m5.8xlarge": {8, 30},
	"m5.16xlarge": {15, 50}, "m5.24xlarge": {15, 50}, "c5.18xlarge": {15, 50},
}

// simulate executes plans against a model node until the planner stops asking, with waiting
// allocations that never get served, and returns the node's final interfaces and the last plan.
func simulate(t *testing.T, c Config, l Limits, waiting int) ([]Interface, Plan) {
	t.Helper()
	st := State{Now: t0, Limits: l, Waiting: waiting, LastDemand: t0, Interfaces: []Interface{{ID: "eni-0", Slots: 1}}}
	for step := 0; step < 100; step++ {
		p := Decide(c, st)
		if len(p.Actions) == 0 {
			return st.Interfaces, p
		}
		for _, a := range p.Actions {
			switch a.Kind {
			case Assign:
				for i := range st.Interfaces {
					if st.Interfaces[i].ID == a.Interface {
						st.Interfaces[i].Slots += a.Count
						st.Interfaces[i].Available += a.Count * c.unit()
					}
				}
			case Attach:
				st.Interfaces = append(st.Interfaces, Interface{ID: fmt.Sprintf("eni-%d", a.DeviceIndex), DeviceIndex: a.DeviceIndex, Managed: true,
					Slots: 1 + a.Count, Available: a.Count * c.unit()})
			default:
				t.Fatalf("growth planned %s", a.Kind)
			}
		}
	}
	t.Fatal("planner did not settle in 100 steps")
	return nil, Plan{}
}

func TestLimitsOfEveryInstanceType(t *testing.T) {
	for name, l := range instanceTypes {
		for _, mode := range []Mode{ModeIP, ModePrefix} {
			t.Run(name+"/"+string(mode), func(t *testing.T) {
				c := DefaultConfig(mode)
				c.WarmLow, c.WarmHigh = 1, 1
				if err := c.Validate(l); err != nil {
					t.Fatalf("config: %v", err)
				}
				maxPods := l.MaxInterfaces*(l.IPv4PerInterface-1) + 2 // docs/cloud-reference.md's formula
				wantAddrs := (maxPods - 2) * c.unit()
				ifaces, last := simulate(t, c, l, 100000)
				held := 0
				for _, in := range ifaces {
					if in.Slots > l.IPv4PerInterface {
						t.Errorf("interface %s holds %d slots; the type allows %d", in.ID, in.Slots, l.IPv4PerInterface)
					}
					held += in.Available
				}
				if len(ifaces) != l.MaxInterfaces || held != wantAddrs {
					t.Errorf("node grew to %d interfaces and %d addresses; want %d and %d", len(ifaces), held, l.MaxInterfaces, wantAddrs)
				}
				if !last.Full || !strings.Contains(last.Reason, fmt.Sprintf("of the %d pod addresses", wantAddrs)) {
					t.Errorf("at the limit the plan says full=%v %q", last.Full, last.Reason)
				}
			})
		}
	}
}

func TestValidateRefusesImpossibleConfigs(t *testing.T) {
	base := DefaultConfig(ModeIP)
	for name, tc := range map[string]struct {
		mut    func(*Config)
		limits Limits
		want   string
	}{
		"unknown mode":         {func(c *Config) { c.Mode = "ipv6" }, Limits{}, `mode "ipv6" is unknown`},
		"high below low":       {func(c *Config) { c.WarmHigh = 1 }, Limits{}, "warm-high 1 is below warm-low 3"},
		"zero batch":           {func(c *Config) { c.MaxBatch = 0 }, Limits{}, "max-batch 0"},
		"no idle release":      {func(c *Config) { c.IdleRelease = 0 }, Limits{}, "idle-release 0s must be positive"},
		"cap below low":        {func(c *Config) { c.MaxAddresses = 2 }, Limits{}, "max-addresses 2 is below warm-low 3"},
		"low beyond the node":  {func(c *Config) { c.WarmLow, c.WarmHigh = 5, 5 }, instanceTypes["t3.nano"], "warm-low 5 exceeds the 2 pod addresses"},
		"one slot per iface":   {func(*Config) {}, Limits{MaxInterfaces: 2, IPv4PerInterface: 1}, "no room for pods"},
		"negative watermark":   {func(c *Config) { c.WarmLow = -1 }, Limits{}, "may not be negative"},
		"low beyond max-iface": {func(c *Config) { c.MaxInterfaces, c.WarmLow, c.WarmHigh = 1, 12, 12 }, m5large, "warm-low 12 exceeds the 9 pod addresses"},
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			tc.mut(&c)
			err := c.Validate(tc.limits)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v; want an error saying %q", err, tc.want)
			}
		})
	}
	for name, l := range instanceTypes {
		for _, mode := range []Mode{ModeIP, ModePrefix} {
			c := DefaultConfig(mode)
			if err := c.Validate(l); err != nil && name != "t3.nano" {
				t.Errorf("defaults refused on %s/%s: %v", name, mode, err)
			}
		}
	}
}
