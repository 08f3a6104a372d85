package store

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// PutInterface records an interface, or updates it.
func (s *Store) PutInterface(in Interface) error {
	return s.write(func(txn *memdb.Txn, next func(*record) error) error {
		if raw, _ := txn.First(tableInterfaces, indexID, in.ID); raw != nil && *raw.(*Interface) == in {
			return nil
		}
		return next(&record{Op: opInterface, Iface: &in, At: in.AddedAt})
	})
}

// RemoveInterface forgets an interface and every address on it. It refuses while an owner
// holds one of them, unless force.
func (s *Store) RemoveInterface(id string, force bool) error {
	return s.write(func(txn *memdb.Txn, next func(*record) error) error {
		if raw, _ := txn.First(tableInterfaces, indexID, id); raw == nil {
			return nil
		}
		if !force {
			for _, a := range addressesOf(txn, id) {
				if !a.Free() {
					return fmt.Errorf("interface %s: %s held by %s: %w", id, a.IP, a.Owner.Key(), ErrAssigned)
				}
			}
		}
		return next(&record{Op: opRemoveInterface, ID: id, At: time.Now()})
	})
}

// AddAddresses records free addresses on an interface (prefix: the /28 they come from, or zero).
// Addresses already held are left as they are. It returns how many were new.
func (s *Store) AddAddresses(iface string, prefix netip.Prefix, ips []netip.Addr, at time.Time) (int, error) {
	var added int
	err := s.write(func(txn *memdb.Txn, next func(*record) error) error {
		var fresh []netip.Addr
		for _, ip := range ips {
			if raw, _ := txn.First(tableAddresses, indexID, ip.String()); raw == nil {
				fresh = append(fresh, ip)
			}
		}
		added = len(fresh)
		if added == 0 {
			return nil
		}
		return next(&record{Op: opAdd, ID: iface, Prefix: prefix, IPs: fresh, At: at})
	})
	return added, err
}

// RemoveAddresses forgets free addresses; an assigned one fails the whole call with ErrAssigned.
func (s *Store) RemoveAddresses(ips []netip.Addr) error {
	return s.write(func(txn *memdb.Txn, next func(*record) error) error {
		var present []netip.Addr
		for _, ip := range ips {
			raw, _ := txn.First(tableAddresses, indexID, ip.String())
			if raw == nil {
				continue
			}
			if a := raw.(*Address); !a.Free() {
				return fmt.Errorf("%s held by %s: %w", ip, a.Owner.Key(), ErrAssigned)
			}
			present = append(present, ip)
		}
		if len(present) == 0 {
			return nil
		}
		return next(&record{Op: opRemove, IPs: present, At: time.Now()})
	})
}

// Assign gives owner the least recently released free address past its cooldown. It is
// idempotent: an owner that holds an address gets it back with fresh false.
func (s *Store) Assign(owner wire.Owner, pod wire.PodRef, now time.Time, cooldown time.Duration) (Address, bool, error) {
	var out Address
	var fresh bool
	err := s.write(func(txn *memdb.Txn, next func(*record) error) error {
		if a := ownedBy(txn, owner); a != nil {
			out = *a
			return nil
		}
		raw, err := txn.First(tableAddresses, indexFree+"_prefix", "")
		if err != nil {
			return fmt.Errorf("look up a free address: %w", err)
		}
		if raw == nil || raw.(*Address).Cooling(now, cooldown) {
			return ErrNoneAvailable
		}
		ip := raw.(*Address).IP
		if err := next(&record{Op: opAssign, IPs: []netip.Addr{ip}, Owner: owner, Pod: pod, At: now}); err != nil {
			return err
		}
		got, _ := txn.First(tableAddresses, indexID, ip.String())
		out, fresh = *got.(*Address), true
		return nil
	})
	return out, fresh, err
}

// AssignIP gives owner a specific free address (reconcile uses it to restore a known owner).
func (s *Store) AssignIP(ip netip.Addr, owner wire.Owner, pod wire.PodRef, at time.Time) error {
	return s.write(func(txn *memdb.Txn, next func(*record) error) error {
		raw, _ := txn.First(tableAddresses, indexID, ip.String())
		if raw == nil {
			return fmt.Errorf("%s is not held by the node", ip)
		}
		if a := raw.(*Address); !a.Free() {
			if a.Owner == owner {
				return nil
			}
			return fmt.Errorf("%s held by %s: %w", ip, a.Owner.Key(), ErrAssigned)
		}
		return next(&record{Op: opAssign, IPs: []netip.Addr{ip}, Owner: owner, Pod: pod, At: at})
	})
}

// Release frees owner's address; the address starts cooling down at now. An unknown owner is
// not an error: ok is false.
func (s *Store) Release(owner wire.Owner, now time.Time) (Address, bool, error) {
	var out Address
	var ok bool
	err := s.write(func(txn *memdb.Txn, next func(*record) error) error {
		a := ownedBy(txn, owner)
		if a == nil {
			return nil
		}
		out, ok = *a, true
		return next(&record{Op: opRelease, IPs: []netip.Addr{out.IP}, At: now})
	})
	return out, ok, err
}

// ByOwner returns owner's address.
func (s *Store) ByOwner(owner wire.Owner) (Address, bool) {
	a := ownedBy(s.read(), owner)
	if a == nil {
		return Address{}, false
	}
	return *a, true
}

// ownedBy is owner's address, or nil. The owner index's key is unambiguous (wire.Owner.Key); the
// comparison of the whole owner keeps a key that ever collided from handing out or freeing
// another owner's address.
func ownedBy(txn *memdb.Txn, owner wire.Owner) *Address {
	raw, _ := txn.First(tableAddresses, indexOwner, owner.Key())
	if raw == nil || raw.(*Address).Owner != owner {
		return nil
	}
	return raw.(*Address)
}

// Interface returns one interface.
func (s *Store) Interface(id string) (Interface, bool) {
	raw, _ := s.read().First(tableInterfaces, indexID, id)
	if raw == nil {
		return Interface{}, false
	}
	return *raw.(*Interface), true
}

// Interfaces lists the interfaces by device index.
func (s *Store) Interfaces() []Interface { return listInterfaces(s.read()) }

// Addresses lists every address, by IP.
func (s *Store) Addresses() []Address {
	out := listAddresses(s.read())
	slices.SortFunc(out, func(a, b Address) int { return a.IP.Compare(b.IP) })
	return out
}

// View is a consistent read of everything.
type View struct {
	Interfaces []Interface
	Addresses  []Address
}

// View reads interfaces and addresses in one snapshot.
func (s *Store) View() View {
	txn := s.read()
	return View{Interfaces: listInterfaces(txn), Addresses: listAddresses(txn)}
}

// Snapshot is a consistent read of the datastore that copies nothing: the pool worker reads every
// address after each allocation, and copying them all each time was most of what an allocation
// allocated.
type Snapshot struct{ txn *memdb.Txn }

// Snapshot reads interfaces and addresses as of now.
func (s *Store) Snapshot() Snapshot { return Snapshot{s.read()} }

// Interfaces lists the interfaces by device index.
func (sn Snapshot) Interfaces() []Interface { return listInterfaces(sn.txn) }

// Addresses walks every address (in the order of the IPs' text). The addresses are the
// datastore's own (immutable) records: read them, never change or keep them.
func (sn Snapshot) Addresses() iter.Seq[*Address] {
	return func(yield func(*Address) bool) {
		it, err := sn.txn.Get(tableAddresses, indexID+"_prefix", "")
		if err != nil {
			return
		}
		for o := it.Next(); o != nil; o = it.Next() {
			if !yield(o.(*Address)) {
				return
			}
		}
	}
}

// Watch returns a channel closed at the next change of the free addresses (a hint: the change
// may not be durable, and so not visible, yet).
func (s *Store) Watch() <-chan struct{} {
	ch, _, _ := s.db.Txn(false).FirstWatch(tableAddresses, indexFree+"_prefix", "")
	return ch
}

func addressesOf(txn *memdb.Txn, iface string) []*Address {
	it, err := txn.Get(tableAddresses, indexIface, iface)
	if err != nil {
		return nil
	}
	var out []*Address
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, o.(*Address))
	}
	return out
}

// NextFree returns the free address handed out next: the least recently released, so the first
// to leave its cooldown. ok is false when no address is free at all.
func (s *Store) NextFree() (Address, bool) {
	raw, _ := s.read().First(tableAddresses, indexFree+"_prefix", "")
	if raw == nil {
		return Address{}, false
	}
	return *raw.(*Address), true
}

// RemoveFree forgets those of ips that are free and past their cooldown, and returns them.
func (s *Store) RemoveFree(ips []netip.Addr, now time.Time, cooldown time.Duration) ([]netip.Addr, error) {
	var out []netip.Addr
	err := s.write(func(txn *memdb.Txn, next func(*record) error) error {
		out = nil
		for _, ip := range ips {
			raw, _ := txn.First(tableAddresses, indexID, ip.String())
			if raw == nil {
				continue
			}
			if a := raw.(*Address); a.Free() && !a.Cooling(now, cooldown) {
				out = append(out, ip)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return next(&record{Op: opRemove, IPs: out, At: now})
	})
	return out, err
}

// RemovePrefix forgets every address of prefix if all are free and past their cooldown.
func (s *Store) RemovePrefix(prefix netip.Prefix, now time.Time, cooldown time.Duration) (bool, error) {
	var ok bool
	err := s.write(func(txn *memdb.Txn, next func(*record) error) error {
		it, err := txn.Get(tableAddresses, indexPrefix, prefix.String())
		if err != nil {
			return err
		}
		var ips []netip.Addr
		for o := it.Next(); o != nil; o = it.Next() {
			a := o.(*Address)
			if !a.Free() || a.Cooling(now, cooldown) {
				return nil
			}
			ips = append(ips, a.IP)
		}
		if len(ips) == 0 {
			return nil
		}
		ok = true
		return next(&record{Op: opRemove, IPs: ips, At: now})
	})
	return ok, err
}
