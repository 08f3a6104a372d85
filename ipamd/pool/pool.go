package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Mode is what the pool leases from the cloud.
type Mode string

// Modes.
const (
	// ModeIP leases secondary IPv4 addresses, one slot of an interface each.
	ModeIP Mode = "ip"
	// ModePrefix leases /28 prefixes: 16 addresses for one slot of an interface.
	ModePrefix Mode = "prefix"
)

// PrefixSize is how many addresses one delegated prefix holds.
const PrefixSize = 16

// Limits are the instance type's network limits.
type Limits struct {
	// MaxInterfaces is how many interfaces the instance may have attached, the primary included.
	MaxInterfaces int
	// IPv4PerInterface is how many IPv4 slots an interface has; its primary address takes one,
	// each secondary address or prefix one more.
	IPv4PerInterface int
}

// Config is the pool policy. Defaults are in DefaultConfig; Validate refuses impossible values.
type Config struct {
	// Mode: ModeIP (default) or ModePrefix.
	Mode Mode
	// WarmLow: the pool grows when fewer addresses than this (plus the allocations waiting) are
	// available. Default 3 in ip mode, 8 in prefix mode.
	WarmLow int
	// WarmHigh: once the pool has been idle for IdleRelease, available addresses above this are
	// given back. Growth never overshoots it (beyond the allocations waiting). Default 10 in ip
	// mode, 24 in prefix mode. At least WarmLow.
	WarmHigh int
	// MaxBatch caps the speculative part of one growth step (addresses beyond those needed by
	// waiting allocations and the low watermark). Default 32.
	MaxBatch int
	// IdleRelease is how long no allocation may have been asked for before excess is given
	// back. Default 60s.
	IdleRelease time.Duration
	// MaxAddresses caps how many addresses the node holds in all (assigned, cooling, free); 0
	// means the instance type's limit.
	MaxAddresses int
	// MaxInterfaces caps how many interfaces ipamd uses, the primary included; 0 means the
	// instance type's limit, 1 means never attach one.
	MaxInterfaces int
}

// DefaultConfig returns the defaults for mode.
func DefaultConfig(mode Mode) Config {
	c := Config{Mode: mode, WarmLow: 3, WarmHigh: 10, MaxBatch: 32, IdleRelease: time.Minute}
	if mode == ModePrefix {
		c.WarmLow, c.WarmHigh = 8, 24
	}
	return c
}

// unit is how many addresses one slot gives.
func (c Config) unit() int {
	if c.Mode == ModePrefix {
		return PrefixSize
	}
	return 1
}

// maxInterfaces is the number of interfaces the pool may use under l.
func (c Config) maxInterfaces(l Limits) int {
	if c.MaxInterfaces > 0 && c.MaxInterfaces < l.MaxInterfaces {
		return c.MaxInterfaces
	}
	return l.MaxInterfaces
}

// Capacity is how many pod addresses the node can hold under c and l.
func (c Config) Capacity(l Limits) int {
	n := c.maxInterfaces(l) * (l.IPv4PerInterface - 1) * c.unit()
	if c.MaxAddresses > 0 && c.MaxAddresses < n {
		return c.MaxAddresses
	}
	return n
}

// Validate says why a configuration cannot work, on its own and under l (zero Limits skips the
// checks that need them).
func (c Config) Validate(l Limits) error {
	var errs []error
	if c.Mode != ModeIP && c.Mode != ModePrefix {
		errs = append(errs, fmt.Errorf("mode %q is unknown: use %q or %q", c.Mode, ModeIP, ModePrefix))
	}
	if c.WarmLow < 0 || c.WarmHigh < 0 || c.MaxAddresses < 0 || c.MaxInterfaces < 0 {
		errs = append(errs, errors.New("warm-low, warm-high, max-addresses and max-interfaces may not be negative"))
	}
	if c.WarmHigh < c.WarmLow {
		errs = append(errs, fmt.Errorf("warm-high %d is below warm-low %d: the pool would give back what it just grew", c.WarmHigh, c.WarmLow))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("max-batch %d: the pool must be able to grow by at least one address", c.MaxBatch))
	}
	if c.IdleRelease <= 0 {
		errs = append(errs, fmt.Errorf("idle-release %v must be positive", c.IdleRelease))
	}
	if c.MaxAddresses > 0 && c.MaxAddresses < c.WarmLow {
		errs = append(errs, fmt.Errorf("max-addresses %d is below warm-low %d: the low watermark could never be reached", c.MaxAddresses, c.WarmLow))
	}
	if l.MaxInterfaces > 0 {
		errs = append(errs, c.validateLimits(l))
	}
	return errors.Join(errs...)
}

func (c Config) validateLimits(l Limits) error {
	if l.IPv4PerInterface < 2 {
		return fmt.Errorf("the instance type allows %d IPv4 address(es) per interface: no room for pods besides the primary address", l.IPv4PerInterface)
	}
	if capacity := c.Capacity(l); c.WarmLow > capacity {
		return fmt.Errorf("warm-low %d exceeds the %d pod addresses this node can hold (%d interfaces x %d slots, mode %s)",
			c.WarmLow, capacity, c.maxInterfaces(l), l.IPv4PerInterface-1, c.Mode)
	}
	return nil
}

// Interface is one attached interface as the planner sees it.
type Interface struct {
	ID          string
	DeviceIndex int
	// Managed is true for interfaces ipamd attached; only those are ever detached.
	Managed bool
	// Slots is how many of its IPv4 slots are taken: the primary address, each secondary
	// address, each prefix.
	Slots int
	// Available, Cooling and Assigned count pod addresses by state.
	Available, Cooling, Assigned int
	// FreeIPs are the available secondary addresses (ip mode), in the order to give them back.
	FreeIPs []netip.Addr
	// FreePrefixes are the prefixes whose every address is available (prefix mode), in the
	// order to give them back.
	FreePrefixes []netip.Prefix
}

// State is what the node holds and what is asked of it, at Now.
type State struct {
	Now        time.Time
	Limits     Limits
	Interfaces []Interface
	// Waiting is how many allocations wait for an address now.
	Waiting int
	// RecentDemand is how many allocations were asked for in the recent demand window.
	RecentDemand int
	// LastDemand is when an allocation was last asked for (zero: never).
	LastDemand time.Time
}

// Kind of action.
type Kind string

// Action kinds.
const (
	// Assign Count addresses (ip mode) or prefixes (prefix mode) to Interface.
	Assign Kind = "assign"
	// Unassign IPs or Prefixes from Interface.
	Unassign Kind = "unassign"
	// Attach a new interface at DeviceIndex holding Count addresses or prefixes.
	Attach Kind = "attach"
	// Detach and delete Interface (with whatever free addresses it holds).
	Detach Kind = "detach"
)

// Action is one cloud call the shell should make.
type Action struct {
	Kind        Kind
	Interface   string
	DeviceIndex int
	Count       int
	IPs         []netip.Addr
	Prefixes    []netip.Prefix
}

// Plan is Decide's answer.
type Plan struct {
	Actions []Action
	// Full is set when the pool wanted to grow by more than the node's limits allow; Reason says
	// what limit was met.
	Full   bool
	Reason string
}
