package store

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// Table and index names.
const (
	tableInterfaces = "interfaces"
	tableAddresses  = "addresses"

	indexID     = "id"
	indexDevice = "device"
	indexOwner  = "owner"
	indexIface  = "iface"
	indexFree   = "free"
	indexPrefix = "prefix"
)

// Interface is one attached network interface of the node.
type Interface struct {
	ID          string       `json:"id"`
	MAC         string       `json:"mac"`
	DeviceIndex int          `json:"deviceIndex"`
	SubnetID    string       `json:"subnetID"`
	SubnetCIDR  netip.Prefix `json:"subnetCIDR"`
	PrimaryIP   netip.Addr   `json:"primaryIP"`
	// Managed is true when ipamd attached it (and may detach it).
	Managed bool      `json:"managed"`
	AddedAt time.Time `json:"addedAt"`
}

// Address is one pod address. It is free when Owner is zero.
type Address struct {
	IP        netip.Addr `json:"ip"`
	Interface string     `json:"interface"`
	// Prefix is the delegated /28 the address belongs to (prefix mode); zero in ip mode.
	Prefix     netip.Prefix `json:"prefix,omitzero"`
	Owner      wire.Owner   `json:"owner,omitzero"`
	Pod        wire.PodRef  `json:"pod,omitzero"`
	AddedAt    time.Time    `json:"addedAt"`
	AssignedAt time.Time    `json:"assignedAt,omitzero"`
	ReleasedAt time.Time    `json:"releasedAt,omitzero"`
}

// Free reports whether no owner holds the address.
func (a *Address) Free() bool { return a.Owner == (wire.Owner{}) }

// Cooling reports whether a free address is still in its cooldown at now.
func (a *Address) Cooling(now time.Time, cooldown time.Duration) bool {
	return cooldown > 0 && a.Free() && !a.ReleasedAt.IsZero() && now.Sub(a.ReleasedAt) < cooldown
}

// State names as introspection shows them.
const (
	StateFree     = "free"
	StateAssigned = "assigned"
	StateCooling  = "cooling"
)

// State is the address's state at now.
func (a *Address) State(now time.Time, cooldown time.Duration) string {
	switch {
	case !a.Free():
		return StateAssigned
	case a.Cooling(now, cooldown):
		return StateCooling
	}
	return StateFree
}

// keyIndex indexes objects by a string key computed by fn; ok false leaves the object out.
type keyIndex struct {
	fn func(obj any) (key string, ok bool)
}

func (k keyIndex) FromObject(obj any) (bool, []byte, error) {
	key, ok := k.fn(obj)
	if !ok {
		return false, nil, nil
	}
	return true, []byte(key + "\x00"), nil
}

func (k keyIndex) FromArgs(args ...any) ([]byte, error) {
	b, err := k.PrefixFromArgs(args...)
	if err != nil {
		return nil, err
	}
	return append(b, 0), nil
}

func (keyIndex) PrefixFromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errors.New("exactly one argument expected")
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument %v is a %T, not a string", args[0], args[0])
	}
	return []byte(s), nil
}

func addrOf(obj any) *Address { return obj.(*Address) }

// freeKey orders free addresses by release time, never-released first: the least recently
// released address comes first (LRU reuse).
func freeKey(a *Address) string {
	var ns int64
	if !a.ReleasedAt.IsZero() {
		ns = a.ReleasedAt.UnixNano()
	}
	return fmt.Sprintf("%020d|%s", ns, a.IP)
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableInterfaces: {Name: tableInterfaces, Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndex{func(o any) (string, bool) { return o.(*Interface).ID, true }}},
			indexDevice: {Name: indexDevice, Unique: true, Indexer: keyIndex{func(o any) (string, bool) {
				return fmt.Sprintf("%04d", o.(*Interface).DeviceIndex), true
			}}},
		}},
		tableAddresses: {Name: tableAddresses, Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: keyIndex{func(o any) (string, bool) { return addrOf(o).IP.String(), true }}},
			indexOwner: {Name: indexOwner, Unique: true, AllowMissing: true, Indexer: keyIndex{func(o any) (string, bool) {
				a := addrOf(o)
				return a.Owner.Key(), !a.Free()
			}}},
			indexIface: {Name: indexIface, Indexer: keyIndex{func(o any) (string, bool) { return addrOf(o).Interface, true }}},
			indexFree: {Name: indexFree, Unique: true, AllowMissing: true, Indexer: keyIndex{func(o any) (string, bool) {
				a := addrOf(o)
				return freeKey(a), a.Free()
			}}},
			indexPrefix: {Name: indexPrefix, AllowMissing: true, Indexer: keyIndex{func(o any) (string, bool) {
				a := addrOf(o)
				return a.Prefix.String(), a.Prefix.IsValid()
			}}},
		}},
	}}
}
