package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// ErrNoneAvailable: no free address is past its cooldown.
var ErrNoneAvailable = errors.New("no free address past its cooldown")

// ErrAssigned: the operation would drop an address an owner holds.
var ErrAssigned = errors.New("address is assigned to an owner")

// compactAfter is how many records the log may hold before it is folded into the snapshot.
const compactAfter = 4096

// Store is the datastore. Safe for concurrent use.
type Store struct {
	db  *memdb.MemDB
	log *slog.Logger
	dir string

	mu      sync.Mutex // serialises writes: memdb txn, WAL append, fsync, commit
	wal     *os.File
	lock    *os.File
	seq     uint64
	pending int // records since the snapshot
}

// Open loads (or creates) the store in dir: snapshot, then the log replayed over it. Only one
// process may have dir open; a second Open fails instead of corrupting it.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("state directory %s is in use by another ipamd (%w): give each ipamd its own --state-dir", dir, err)
	}
	s := &Store{log: log, dir: dir, lock: lock}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) load() error {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return fmt.Errorf("datastore schema: %w", err)
	}
	s.db = db
	snap, err := readSnapshot(filepath.Join(s.dir, "state.json"))
	if err != nil {
		return err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for i := range snap.Interfaces {
		in := snap.Interfaces[i]
		if err := txn.Insert(tableInterfaces, &in); err != nil {
			return fmt.Errorf("load snapshot: %w", err)
		}
	}
	for i := range snap.Addresses {
		a := snap.Addresses[i]
		if err := txn.Insert(tableAddresses, &a); err != nil {
			return fmt.Errorf("load snapshot: %w", err)
		}
	}
	s.seq = snap.Seq
	wal, err := os.OpenFile(filepath.Join(s.dir, "wal.log"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	recs, good, err := readWAL(wal)
	if err != nil {
		wal.Close()
		return err
	}
	for _, r := range recs {
		if r.Seq <= s.seq {
			continue // already in the snapshot (crash between snapshot and truncation)
		}
		if err := apply(txn, r); err != nil {
			wal.Close()
			return fmt.Errorf("replay wal record %d (%s): %w", r.Seq, r.Op, err)
		}
		s.seq = r.Seq
		s.pending++
	}
	txn.Commit()
	if err := wal.Truncate(good); err != nil {
		wal.Close()
		return fmt.Errorf("cut the torn end off the wal: %w", err)
	}
	if _, err := wal.Seek(good, 0); err != nil {
		wal.Close()
		return fmt.Errorf("seek wal: %w", err)
	}
	s.wal = wal
	s.log.Info("datastore loaded", "dir", s.dir, "seq", s.seq, "replayed", s.pending)
	return nil
}

// Close releases the files. It does not flush anything: every write is already durable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.wal.Close()
	s.lock.Close()
	return err
}

// write runs build in a write transaction; build returns the records it applied (nil: nothing
// changed). They are logged and synced before the transaction commits.
func (s *Store) write(build func(txn *memdb.Txn, next func(*record) error) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.db.Txn(true)
	defer txn.Abort()
	var lines []byte
	seq := s.seq
	next := func(r *record) error {
		seq++
		r.Seq = seq
		if err := apply(txn, r); err != nil {
			return err
		}
		line, err := encode(r)
		if err != nil {
			return err
		}
		lines = append(lines, line...)
		return nil
	}
	if err := build(txn, next); err != nil {
		return err
	}
	if len(lines) == 0 {
		return nil
	}
	if _, err := s.wal.Write(lines); err != nil {
		return fmt.Errorf("append to wal: %w", err)
	}
	if err := fdatasync(s.wal); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	s.pending += int(seq - s.seq)
	s.seq = seq
	txn.Commit()
	if s.pending >= compactAfter {
		if err := s.compactLocked(); err != nil {
			s.log.Warn("wal compaction failed; the log keeps growing", "err", err)
		}
	}
	return nil
}

// compactLocked writes the snapshot and empties the log. A crash between the two leaves records
// the snapshot already holds; load skips them by sequence number.
func (s *Store) compactLocked() error {
	txn := s.db.Txn(false)
	snap := &snapshot{Seq: s.seq, Interfaces: listInterfaces(txn), Addresses: listAddresses(txn)}
	if err := writeSnapshot(filepath.Join(s.dir, "state.json"), snap); err != nil {
		return err
	}
	if err := s.wal.Truncate(0); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	if _, err := s.wal.Seek(0, 0); err != nil {
		return fmt.Errorf("seek wal: %w", err)
	}
	if err := fdatasync(s.wal); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	s.pending = 0
	return nil
}

// apply gives a record its meaning; the same function serves live writes and replay.
func apply(txn *memdb.Txn, r *record) error {
	switch r.Op {
	case opInterface:
		in := *r.Iface
		return txn.Insert(tableInterfaces, &in)
	case opRemoveInterface:
		if _, err := txn.DeleteAll(tableAddresses, indexIface, r.ID); err != nil {
			return err
		}
		_, err := txn.DeleteAll(tableInterfaces, indexID, r.ID)
		return err
	case opAdd:
		for _, ip := range r.IPs {
			if a, _ := txn.First(tableAddresses, indexID, ip.String()); a != nil {
				continue
			}
			if err := txn.Insert(tableAddresses, &Address{IP: ip, Interface: r.ID, Prefix: r.Prefix, AddedAt: r.At}); err != nil {
				return err
			}
		}
		return nil
	case opRemove:
		for _, ip := range r.IPs {
			if _, err := txn.DeleteAll(tableAddresses, indexID, ip.String()); err != nil {
				return err
			}
		}
		return nil
	case opAssign, opRelease:
		return applyOwner(txn, r)
	}
	return fmt.Errorf("unknown wal op %q", r.Op)
}

func applyOwner(txn *memdb.Txn, r *record) error {
	if len(r.IPs) != 1 {
		return fmt.Errorf("%s record with %d addresses", r.Op, len(r.IPs))
	}
	raw, err := txn.First(tableAddresses, indexID, r.IPs[0].String())
	if err != nil || raw == nil {
		return fmt.Errorf("%s of %s, which the store does not hold: %w", r.Op, r.IPs[0], err)
	}
	a := *raw.(*Address) // memdb objects are immutable: copy
	if r.Op == opAssign {
		a.Owner, a.Pod, a.AssignedAt = r.Owner, r.Pod, r.At
	} else {
		a.Owner, a.Pod, a.ReleasedAt = wire.Owner{}, wire.PodRef{}, r.At
	}
	return txn.Insert(tableAddresses, &a)
}

func listInterfaces(txn *memdb.Txn) []Interface {
	it, err := txn.Get(tableInterfaces, indexDevice+"_prefix", "")
	if err != nil {
		return nil
	}
	var out []Interface
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, *o.(*Interface))
	}
	return out
}

func listAddresses(txn *memdb.Txn) []Address {
	it, err := txn.Get(tableAddresses, indexID+"_prefix", "")
	if err != nil {
		return nil
	}
	var out []Address
	for o := it.Next(); o != nil; o = it.Next() {
		out = append(out, *o.(*Address))
	}
	return out
}
