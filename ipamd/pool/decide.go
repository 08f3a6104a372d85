package pool

import (
	"fmt"
	"slices"
)

// totals sums the interfaces' counts.
type totals struct {
	available, cooling, assigned, held int
}

func sum(st State) totals {
	var t totals
	for _, in := range st.Interfaces {
		t.available += in.Available
		t.cooling += in.Cooling
		t.assigned += in.Assigned
	}
	t.held = t.available + t.cooling + t.assigned
	return t
}

// Decide returns the next cloud actions for st under c. It is pure: same input, same plan.
func Decide(c Config, st State) Plan {
	t := sum(st)
	need := st.Waiting + c.WarmLow - t.available
	if need > 0 {
		return grow(c, st, t, need)
	}
	if st.Waiting > 0 {
		return Plan{}
	}
	if !st.LastDemand.IsZero() && st.Now.Sub(st.LastDemand) < c.IdleRelease {
		return Plan{}
	}
	return shrink(c, st, t)
}

// growth is how many addresses to add when need are missing: at least need, more when demand
// has been high, never past the high watermark beyond what waits, never past the capacity.
func growth(c Config, st State, t totals, need int) int {
	batch := min(st.Waiting+st.RecentDemand, c.MaxBatch)
	want := max(need, batch)
	want = min(want, st.Waiting+c.WarmHigh-t.available)
	want = max(want, need) // WarmHigh >= WarmLow, so this only guards odd input
	if c.MaxAddresses > 0 {
		want = min(want, c.MaxAddresses-t.held)
	}
	return want
}

func grow(c Config, st State, t totals, need int) Plan {
	want := growth(c, st, t, need)
	unit := c.unit()
	units := (want + unit - 1) / unit
	if c.MaxAddresses > 0 {
		// A partial prefix is not allowed past the cap: round down there.
		units = min(units, (c.MaxAddresses-t.held)/unit)
	}
	var p Plan
	perIface := st.Limits.IPv4PerInterface
	ifaces := slices.Clone(st.Interfaces)
	slices.SortFunc(ifaces, func(a, b Interface) int { return a.DeviceIndex - b.DeviceIndex })
	used := map[int]bool{}
	for _, in := range ifaces {
		used[in.DeviceIndex] = true
		if units == 0 {
			continue
		}
		if room := perIface - in.Slots; room > 0 {
			n := min(room, units)
			p.Actions = append(p.Actions, Action{Kind: Assign, Interface: in.ID, DeviceIndex: in.DeviceIndex, Count: n})
			units -= n
		}
	}
	placed := 0
	for _, a := range p.Actions {
		placed += a.Count * unit
	}
	attached := len(ifaces)
	// Index 0 is the primary interface, which every instance has from launch.
	for index := 1; units > 0 && attached < c.maxInterfaces(st.Limits); index++ {
		if used[index] {
			continue
		}
		n := min(perIface-1, units)
		p.Actions = append(p.Actions, Action{Kind: Attach, DeviceIndex: index, Count: n})
		units -= n
		placed += n * unit
		attached++
	}
	// Full: the limits stopped the growth, or what could be placed does not cover the waiters.
	if units > 0 || t.available+placed < st.Waiting {
		p.Full = true
		p.Reason = fullReason(c, st, t)
	}
	return p
}

func fullReason(c Config, st State, t totals) string {
	capacity := c.Capacity(st.Limits)
	why := fmt.Sprintf("node holds %d of the %d pod addresses it may have (%d assigned, %d cooling down, %d free; %d of %d interfaces x %d slots, mode %s",
		t.held, capacity, t.assigned, t.cooling, t.available, len(st.Interfaces), c.maxInterfaces(st.Limits), st.Limits.IPv4PerInterface-1, c.Mode)
	if c.MaxAddresses > 0 {
		why += fmt.Sprintf(", max-addresses %d", c.MaxAddresses)
	}
	return why + ")"
}

// shrink gives back available addresses above the high watermark and detaches interfaces ipamd
// attached that hold nothing but free addresses, as long as the low watermark still holds.
func shrink(c Config, st State, t totals) Plan {
	var p Plan
	excess := t.available - c.WarmHigh
	available := t.available
	ifaces := slices.Clone(st.Interfaces)
	// Highest device index first: emptying the last interfaces lets them be detached.
	slices.SortFunc(ifaces, func(a, b Interface) int { return b.DeviceIndex - a.DeviceIndex })
	for _, in := range ifaces {
		left := in.Available
		if in.Managed && in.DeviceIndex != 0 && in.Assigned == 0 && in.Cooling == 0 && available-in.Available >= c.WarmLow {
			p.Actions = append(p.Actions, Action{Kind: Detach, Interface: in.ID, DeviceIndex: in.DeviceIndex})
			available -= in.Available
			excess -= in.Available
			continue
		}
		if excess <= 0 {
			continue
		}
		a := Action{Kind: Unassign, Interface: in.ID, DeviceIndex: in.DeviceIndex}
		if c.Mode == ModePrefix {
			for _, pfx := range in.FreePrefixes {
				if excess < PrefixSize || left < PrefixSize {
					break
				}
				a.Prefixes = append(a.Prefixes, pfx)
				excess, left, available = excess-PrefixSize, left-PrefixSize, available-PrefixSize
			}
		} else {
			n := min(excess, len(in.FreeIPs))
			a.IPs = slices.Clone(in.FreeIPs[:n])
			excess, available = excess-n, available-n
		}
		if len(a.IPs)+len(a.Prefixes) > 0 {
			p.Actions = append(p.Actions, a)
		}
	}
	return p
}
