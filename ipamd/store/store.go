package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// ErrNoneAvailable: no free address is past its cooldown.
var ErrNoneAvailable = errors.New("no free address past its cooldown")

// ErrAssigned: the operation would drop an address an owner holds.
var ErrAssigned = errors.New("address is assigned to an owner")

// ErrFailed: a write or sync of the log failed; the store refuses every write until it is
// opened again.
var ErrFailed = errors.New("the datastore failed")

// compactAfter is how many records the log may hold before it is folded into the snapshot.
const compactAfter = 4096

// Store is the datastore. Safe for concurrent use.
//
// Writes are group-committed: a write applies its records to db and queues them under mu, then
// waits until they are durable; the first waiter writes and fdatasyncs everything queued while
// the others wait for it, so concurrent writers share one sync. No write succeeds before its
// records, and every record it read, are durable (a write that changes nothing still waits for
// the records it looked at). Readers see durable, a snapshot of db as of the last sync, so
// nothing read from the store can be lost by a crash.
type Store struct {
	log  *slog.Logger
	dir  string
	lock *os.File

	durable atomic.Pointer[memdb.MemDB]

	mu        sync.Mutex // guards everything below; released during log I/O
	cond      *sync.Cond // signalled when a sync ends
	db        *memdb.MemDB
	wal       *logFile
	seq       uint64 // last record queued
	buf       []byte // records queued and not yet written
	spare     []byte // the previous buf, reused
	syncedSeq uint64 // last record durable
	syncing   bool   // a leader is writing and syncing; mu is free meanwhile
	err       error  // sticky: after a failed write or sync nothing more is acknowledged
	pending   int    // records since the snapshot
	syncs     int    // log syncs done, for tests
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
	s.cond = sync.NewCond(&s.mu)
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
	lf, err := openLog(wal, good)
	if err != nil {
		wal.Close()
		return err
	}
	if err := syncDir(s.dir); err != nil {
		wal.Close()
		return err
	}
	s.wal, s.syncedSeq = lf, s.seq
	s.durable.Store(db.Snapshot())
	s.log.Info("datastore loaded", "dir", s.dir, "seq", s.seq, "replayed", s.pending)
	return nil
}

// Close writes out anything queued, trims the log's preallocated tail and releases the files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.drainLocked()
	if err == nil {
		err = s.wal.trim()
	}
	if cerr := s.wal.f.Close(); err == nil {
		err = cerr
	}
	s.lock.Close()
	return err
}

// read is a read transaction on the durable state.
func (s *Store) read() *memdb.Txn { return s.durable.Load().Txn(false) }

// write runs build in a write transaction; build returns the records it applied (nil: nothing
// changed). It returns once they are durable, or, when nothing changed, once the state build
// looked at is.
func (s *Store) write(build func(txn *memdb.Txn, next func(*record) error) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	lines := len(s.buf)
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
		s.buf = append(s.buf, line...)
		return nil
	}
	if err := build(txn, next); err != nil {
		s.buf = s.buf[:lines]
		return err
	}
	if seq == s.seq {
		txn.Abort() // now: waiting below lets other writers in, and they need memdb's write lock
	} else {
		txn.Commit()
		s.pending += int(seq - s.seq)
		s.seq = seq
	}
	if err := s.waitDurableLocked(s.seq); err != nil {
		return err
	}
	if s.pending >= compactAfter {
		if err := s.compactLocked(); err != nil {
			s.log.Warn("wal compaction failed; the log keeps growing", "err", err)
		}
	}
	return nil
}

// waitDurableLocked returns once record seq is durable: it leads a sync of everything queued
// unless one is running, in which case it waits for that one and looks again.
func (s *Store) waitDurableLocked(seq uint64) error {
	for s.syncedSeq < seq && s.err == nil {
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.flushLocked()
	}
	return s.err
}

// flushLocked writes and syncs the queue with mu released, then publishes the state as of the
// queue's last record to readers.
func (s *Store) flushLocked() {
	buf, target, snap := s.buf, s.seq, s.db.Snapshot()
	s.buf, s.spare = s.spare[:0], nil
	s.syncing = true
	s.mu.Unlock()
	err := s.wal.append(buf)
	if err != nil {
		// Nobody was told these records are durable: make a restart not replay them either
		// (a record that reached the disk despite the error would apply a refused write).
		if zerr := s.wal.unwrite(len(buf)); zerr != nil {
			s.log.Error("could not wipe the records of a failed write; a restart may apply them", "err", zerr)
		}
	}
	s.mu.Lock()
	s.syncing, s.spare = false, buf
	if err != nil {
		s.fail(fmt.Errorf("append to wal: %w", err))
	} else {
		s.syncedSeq, s.syncs = target, s.syncs+1
		s.durable.Store(snap)
	}
	s.cond.Broadcast()
}

// drainLocked waits out a sync in progress and syncs the rest of the queue.
func (s *Store) drainLocked() error {
	for s.syncing {
		s.cond.Wait()
	}
	return s.waitDurableLocked(s.seq)
}

// compactLocked writes the snapshot and empties the log. A crash between the two leaves records
// the snapshot already holds; load skips them by sequence number.
func (s *Store) compactLocked() error {
	if err := s.drainLocked(); err != nil {
		return err
	}
	txn := s.db.Txn(false)
	snap := &snapshot{Seq: s.seq, Interfaces: listInterfaces(txn), Addresses: listAddresses(txn)}
	if err := writeSnapshot(filepath.Join(s.dir, "state.json"), snap); err != nil {
		return err
	}
	if err := s.wal.reset(); err != nil {
		// The snapshot holds everything, but the log is in an unknown state: stop writing.
		s.fail(fmt.Errorf("empty the wal after a snapshot: %w", err))
		return err
	}
	s.pending = 0
	return nil
}

// fail makes err sticky: after a failed write or sync of the log, its state on disk is unknown,
// so nothing more is written or acknowledged until a restart reloads the store from disk.
func (s *Store) fail(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("%w (restart ipamd to reload the store from disk): %w", ErrFailed, err)
		s.log.Error("datastore write failed; nothing more is acknowledged", "err", err)
	}
}

// Err returns the sticky error that stopped writes (wrapping ErrFailed), nil while writes work.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
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
