package providers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
)

// IPAM is what ipamd needs from a cloud: one node's interfaces and their addresses.
// A driver returns its cloud's errors as *Error with the kind ipamd acts on (ErrThrottled,
// ErrNotFound, ErrSubnetFull, ...; errors.go), whatever the cloud; see docs/providers.md.
type IPAM interface {
	// DescribeInstance returns the instance, its type's limits, its attached interfaces with
	// their addresses, and the interfaces ipamd created for it that are not attached.
	DescribeInstance(ctx context.Context, instanceID string) (*Instance, error)
	// CreateInterface creates an interface in a subnet, tags it as ipamd's, attaches it at
	// DeviceIndex (deleted with the instance) and returns it with its addresses.
	CreateInterface(ctx context.Context, req CreateInterfaceRequest) (*Interface, error)
	// DeleteInterface detaches (when attached) and deletes an interface; a missing one is done.
	DeleteInterface(ctx context.Context, interfaceID string) error
	// Assign assigns IPCount secondary addresses (or the given IPs) and PrefixCount /28
	// prefixes to an interface, all or nothing.
	Assign(ctx context.Context, req AssignRequest) (*Assigned, error)
	// Unassign gives addresses and prefixes back; ones already gone are not an error.
	Unassign(ctx context.Context, req UnassignRequest) error
}

// Instance is one node as the cloud sees it.
type Instance struct {
	ID               string
	Type             string
	MaxInterfaces    int
	IPv4PerInterface int
	SubnetID         string
	SecurityGroups   []string
	VPCCIDRs         []netip.Prefix
	// Interfaces are attached, by device index.
	Interfaces []Interface
	// Detached are interfaces ipamd created for this instance that are not attached (left over
	// by a crash between create and attach, or a detach not followed by delete).
	Detached []Interface
}

// Interface is one network interface.
type Interface struct {
	ID          string
	MAC         string
	DeviceIndex int
	SubnetID    string
	SubnetCIDR  netip.Prefix
	PrimaryIP   netip.Addr
	// IPs are the secondary addresses; Prefixes the delegated /28s.
	IPs      []netip.Addr
	Prefixes []netip.Prefix
	// Managed: created by ipamd (tagged), so ipamd may delete it.
	Managed bool
	// Ready: attached and usable (not attaching or detaching).
	Ready bool
}

// CreateInterfaceRequest asks for a new interface.
type CreateInterfaceRequest struct {
	InstanceID     string
	SubnetID       string
	SecurityGroups []string
	DeviceIndex    int
	IPCount        int
	PrefixCount    int
	ClientToken    string
}

// AssignRequest asks for addresses on an interface.
type AssignRequest struct {
	InterfaceID string
	IPCount     int
	IPs         []netip.Addr
	PrefixCount int
	ClientToken string
}

// Assigned is what Assign got.
type Assigned struct {
	IPs      []netip.Addr
	Prefixes []netip.Prefix
}

// UnassignRequest gives addresses back.
type UnassignRequest struct {
	InterfaceID string
	IPs         []netip.Addr
	Prefixes    []netip.Prefix
	ClientToken string
}

// NewToken returns a fresh idempotency token (32 hex characters, within EC2's 64).
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
