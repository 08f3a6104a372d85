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
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/internal/wal"
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

// Options tune how the store makes its writes durable.
type Options struct {
	// Log receives the store's messages; nil discards them.
	Log *slog.Logger
	// SyncInterval is how long a written record may wait for its fdatasync (ipamd's
	// --state-sync). Zero: a write returns only once its records are fdatasync'ed. Positive: a
	// write returns once its records are written into the log (write(2): the kernel's page
	// cache holds them, and kill -9 of the process cannot lose them), and a background flush
	// fdatasyncs them at most this long after the first unsynced one. A machine crash within
	// that window can lose or damage the log's unsynced tail; the next Open, seeing a new boot
	// ID, cuts the log at the damage (see load).
	SyncInterval time.Duration
}

// Store is the datastore. Safe for concurrent use.
//
// Writes are group-committed: a write applies its records to db and queues them under mu, then
// waits until they are committed; the first waiter writes everything queued into the log (and,
// with a zero SyncInterval, fdatasyncs it) while the others wait for it, so concurrent writers
// share one write and one sync. No write succeeds before its records, and every record it
// read, are committed (a write that changes nothing still waits for the records it looked at).
// Readers see committed, a snapshot of db as of the last commit, so nothing read from the store
// can be lost by kill -9 (nor, with a zero SyncInterval, by a machine crash).
type Store struct {
	log      *slog.Logger
	dir      string
	lock     *os.File
	interval time.Duration // Options.SyncInterval
	flush    *time.Timer   // the background fdatasync; armed while committed records are unsynced

	committed atomic.Pointer[memdb.MemDB]

	mu           sync.Mutex // guards everything below; released during log I/O
	cond         *sync.Cond // signalled when a write or a sync of the log ends
	db           *memdb.MemDB
	wal          *wal.Log
	seq          uint64 // last record queued
	buf          []byte // records queued and not yet written
	spare        []byte // the previous buf, reused
	committedSeq uint64 // last record written (with a zero interval: and synced); writes are acknowledged up to here
	syncedSeq    uint64 // last record fdatasync'ed
	writing      bool   // a leader is writing the queue; mu is free meanwhile
	syncing      bool   // the background flush is in fdatasync; mu is free meanwhile
	flushArmed   bool   // the flush timer runs
	closed       bool
	err          error // sticky: after a failed write or sync nothing more is acknowledged
	pending      int   // records since the snapshot
	syncs        int   // log syncs done, for tests
}

// Open loads (or creates) the store in dir: snapshot, then the log replayed over it. Only one
// process may have dir open; a second Open fails instead of corrupting it.
func Open(dir string, opt Options) (*Store, error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.SyncInterval < 0 {
		return nil, fmt.Errorf("state sync interval %v is negative: use 0 to sync every write, or a positive bound", opt.SyncInterval)
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
	s := &Store{log: log, dir: dir, lock: lock, interval: opt.SyncInterval}
	s.cond = sync.NewCond(&s.mu)
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	if s.interval > 0 {
		s.flush = time.AfterFunc(s.interval, s.flushNow)
		s.flush.Stop()
	}
	return s, nil
}

func (s *Store) load() error {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return fmt.Errorf("datastore schema: %w", err)
	}
	s.db = db
	boot, err := checkBoot(s.dir)
	if err != nil {
		return err
	}
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
	f, err := os.OpenFile(filepath.Join(s.dir, "wal.log"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	scan, err := readWAL(f)
	if err == nil {
		err = s.judgeDamage(f.Name(), scan, boot)
	}
	if err != nil {
		f.Close()
		return err
	}
	for _, r := range scan.Records {
		if r.Seq <= s.seq {
			continue // already in the snapshot (crash between snapshot and truncation)
		}
		if err := apply(txn, r); err != nil {
			f.Close()
			return fmt.Errorf("replay wal record %d (%s): %w", r.Seq, r.Op, err)
		}
		s.seq = r.Seq
		s.pending++
	}
	txn.Commit()
	lf, err := wal.Open(f, scan.Good)
	if err != nil {
		f.Close()
		return err
	}
	if err := wal.SyncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	// Only now that the log is cut and synced: a crash before this point finds the old boot ID
	// again and judges the same log the same way.
	if err := boot.record(); err != nil {
		f.Close()
		return err
	}
	s.wal, s.committedSeq, s.syncedSeq = lf, s.seq, s.seq
	s.committed.Store(db.Snapshot())
	s.log.Info("datastore loaded", "dir", s.dir, "seq", s.seq, "replayed", s.pending, "syncInterval", s.interval)
	return nil
}

// judgeDamage decides what to do with a log that is damaged before its last record. After a
// reboot (the boot ID changed) that is what a power loss does to a log whose tail was not
// synced yet: blocks reach the disk in any order, so a hole can precede later records. No pod
// of the old boot survived, and start-up reconcile sets the record right against the cloud and
// the node's pods, so the log is cut at the damage; nothing after a hole is replayed. Within
// one boot only the process can have died, which leaves the page cache, and so the log, whole:
// damage there is corruption, and ipamd refuses to guess.
func (s *Store) judgeDamage(name string, scan *wal.Scan[*record], boot bootID) error {
	switch {
	case scan.Damage == nil:
		if scan.Cut > 0 {
			s.log.Info("cut a torn record off the end of the wal", "at", scan.Good, "bytes", scan.Cut)
		}
		return nil
	case !boot.rebooted():
		return fmt.Errorf("wal %s is corrupt at byte %d (%w) with records after it: move it aside to start from the cloud's truth", name, scan.Good, scan.Damage)
	}
	s.log.Warn("the machine restarted since the wal was last written and its unsynced tail is damaged, as a power loss leaves it: "+
		"cutting the log at the damage; start-up reconcile settles what it held with the cloud and the node's pods",
		"wal", name, "at", scan.Good, "damage", scan.Damage, "discardedBytes", scan.Cut, "discardedRecords", scan.Lost,
		"bootID", boot.current, "previousBootID", boot.stored)
	return nil
}

// Close writes out anything queued, syncs the log, trims its preallocated tail and releases the
// files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.drainLocked()
	s.closed = true
	if s.flush != nil {
		s.flush.Stop()
	}
	for s.syncing {
		s.cond.Wait()
	}
	if err == nil {
		err = s.wal.Trim() // its fdatasync covers every record written
	}
	if cerr := s.wal.Close(); err == nil {
		err = cerr
	}
	s.lock.Close()
	return err
}

// read is a read transaction on the committed state.
func (s *Store) read() *memdb.Txn { return s.committed.Load().Txn(false) }

// write runs build in a write transaction; build returns the records it applied (nil: nothing
// changed). It returns once they are committed, or, when nothing changed, once the state build
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
	if err := s.waitCommittedLocked(s.seq); err != nil {
		return err
	}
	if s.pending >= compactAfter {
		if err := s.compactLocked(); err != nil {
			s.log.Warn("wal compaction failed; the log keeps growing", "err", err)
		}
	}
	return nil
}

// waitCommittedLocked returns once record seq is committed: it leads a write of everything
// queued unless one is running, in which case it waits for that one and looks again.
func (s *Store) waitCommittedLocked(seq uint64) error {
	for s.committedSeq < seq && s.err == nil {
		if s.writing {
			s.cond.Wait()
			continue
		}
		s.commitLocked()
	}
	return s.err
}

// commitLocked writes the queue into the log with mu released (and syncs it, with a zero
// interval; otherwise it arms the background flush), then publishes the state as of the
// queue's last record to readers.
func (s *Store) commitLocked() {
	buf, target, snap := s.buf, s.seq, s.db.Snapshot()
	s.buf, s.spare = s.spare[:0], nil
	s.writing = true
	s.mu.Unlock()
	err := s.wal.Write(buf, s.interval == 0)
	if err != nil {
		// Nobody was told these records are committed: make a restart not replay them either
		// (a record that reached the log despite the error would apply a refused write).
		if zerr := s.wal.Unwrite(len(buf)); zerr != nil {
			s.log.Error("could not wipe the records of a failed write; a restart may apply them", "err", zerr)
		}
	}
	s.mu.Lock()
	s.writing, s.spare = false, buf
	switch {
	case err != nil:
		s.fail(fmt.Errorf("write to wal: %w", err))
	case s.interval == 0:
		s.committedSeq, s.syncedSeq, s.syncs = target, target, s.syncs+1
	default:
		s.committedSeq = target
		if !s.flushArmed {
			s.flushArmed = true
			s.flush.Reset(s.interval)
		}
	}
	if err == nil {
		s.committed.Store(snap)
	}
	s.cond.Broadcast()
}

// flushNow is the background flush: it fdatasyncs everything committed so far. A write
// committed while it syncs arms the next one.
func (s *Store) flushNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushArmed = false
	if s.closed || s.err != nil {
		return
	}
	target := s.committedSeq
	if target <= s.syncedSeq {
		return
	}
	s.syncing = true
	s.mu.Unlock()
	err := s.wal.Sync() // concurrent writes into the log are fine; this covers those before it
	s.mu.Lock()
	s.syncing = false
	s.cond.Broadcast()
	if err != nil {
		// The kernel may have dropped the pages it could not write: acknowledged records may
		// exist in no copy that survives a machine crash. Stop acknowledging anything.
		s.fail(fmt.Errorf("background fdatasync of the wal: %w; records %d-%d were acknowledged but may not be on disk "+
			"(a machine crash now would lose them; a restart of ipamd reloads what the log holds)", err, s.syncedSeq+1, target))
		return
	}
	s.syncedSeq, s.syncs = max(s.syncedSeq, target), s.syncs+1
}

// drainLocked waits out a write in progress and commits the rest of the queue.
func (s *Store) drainLocked() error {
	for s.writing {
		s.cond.Wait()
	}
	return s.waitCommittedLocked(s.seq)
}

// compactLocked writes the snapshot (synced) and empties the log. A crash between the two
// leaves records the snapshot already holds; load skips them by sequence number.
func (s *Store) compactLocked() error {
	if err := s.drainLocked(); err != nil {
		return err
	}
	txn := s.db.Txn(false)
	snap := &snapshot{Seq: s.seq, Interfaces: listInterfaces(txn), Addresses: listAddresses(txn)}
	if err := writeSnapshot(filepath.Join(s.dir, "state.json"), snap); err != nil {
		return err
	}
	s.syncedSeq = s.seq // the snapshot holds every record, synced
	if err := s.wal.Reset(); err != nil {
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
	var out []Address
	for a := range (Snapshot{txn}).Addresses() {
		out = append(out, *a)
	}
	return out
}
