package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/internal/wal"
)

// Durability: a snapshot file plus a write-ahead log of committed transactions (internal/wal),
// one record each. A call is answered only after the record holding its transaction is
// fdatasynced; concurrent callers share one sync (group commit). On open, the snapshot is
// loaded and the log replayed; a torn last record (a crash mid-write, never acknowledged) is
// cut off, and damage before the last record is corruption (every record was synced before it
// was acknowledged), which Open refuses. The log is folded into a new snapshot once it grows
// past compactBytes.
//
// Logs written before internal/wal hold JSON lines without a checksum; they are read as they
// are (wal.ReadOptions.Unframed), and new records are appended framed.

const compactBytes = 64 << 20

type walOp struct {
	Table  string          `json:"t"`
	Delete bool            `json:"d,omitempty"`
	Object json.RawMessage `json:"o"`
}

type walEntry struct {
	Seq uint64  `json:"seq"`
	Ops []walOp `json:"ops"`
}

type snapshotFile struct {
	Seq    uint64                       `json:"seq"`
	Tables map[string][]json.RawMessage `json:"tables"`
}

type stateLog struct {
	path, snapPath string

	mu        sync.Mutex
	cond      *sync.Cond
	log       *wal.Log
	buf       []byte
	bufSeq    uint64 // highest seq in buf
	syncedSeq uint64
	syncing   bool
	err       error // sticky: once a write fails, nothing more is acknowledged
	// size is the log's length as of the last flush or reset: what needsCompaction reads, since
	// the log itself changes while a flush writes with mu released.
	size int64
}

func encodeWALEntry(seq uint64, changes memdb.Changes) ([]byte, error) {
	e := walEntry{Seq: seq, Ops: make([]walOp, 0, len(changes))}
	for _, c := range changes {
		obj, del := c.After, false
		if c.Deleted() {
			obj, del = c.Before, true
		}
		body, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		e.Ops = append(e.Ops, walOp{Table: c.Table, Delete: del, Object: body})
	}
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return wal.Encode(body), nil
}

func decodeWALEntry(body []byte) (*walEntry, uint64, error) {
	var e walEntry
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, 0, err
	}
	return &e, e.Seq, nil
}

// openWAL loads the snapshot and the log into db and returns the log, open for appending, and
// the last sequence.
func openWAL(snapPath string, db *memdb.MemDB) (*stateLog, uint64, error) {
	if err := os.MkdirAll(filepath.Dir(snapPath), 0o755); err != nil {
		return nil, 0, fmt.Errorf("create state directory: %w", err)
	}
	seq, err := loadSnapshot(snapPath, db)
	if err != nil {
		return nil, 0, err
	}
	w := &stateLog{path: snapPath + ".wal", snapPath: snapPath}
	w.cond = sync.NewCond(&w.mu)
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open state log: %w", err)
	}
	last, good, err := replayLog(f, db, seq)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("state log %s: %w", w.path, err)
	}
	l, err := wal.Open(f, good)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("state log %s: %w", w.path, err)
	}
	w.log, w.syncedSeq, w.bufSeq, w.size = l, last, last, l.Size()
	return w, last, nil
}

func loadSnapshot(path string, db *memdb.MemDB) (uint64, error) {
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read state snapshot: %w", err)
	}
	var snap snapshotFile
	if err := json.Unmarshal(body, &snap); err != nil {
		return 0, fmt.Errorf("state snapshot %s is corrupt: %w", path, err)
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for table, objs := range snap.Tables {
		for _, raw := range objs {
			if err := applyOp(txn, walOp{Table: table, Object: raw}); err != nil {
				return 0, fmt.Errorf("state snapshot %s: %w", path, err)
			}
		}
	}
	txn.Commit()
	return snap.Seq, nil
}

// replayLog applies the entries after seq and returns the last sequence and the length of the
// intact prefix of the log.
func replayLog(f *os.File, db *memdb.MemDB, seq uint64) (uint64, int64, error) {
	scan, err := wal.Read(f, decodeWALEntry, wal.ReadOptions{Unframed: true})
	if err != nil {
		return 0, 0, err
	}
	if scan.Damage != nil {
		return 0, 0, fmt.Errorf("entry at byte %d is corrupt (%w) and %d entries follow it: move the log aside to start from the snapshot", scan.Good, scan.Damage, scan.Lost)
	}
	for _, e := range scan.Records {
		if e.Seq <= seq {
			continue // already in the snapshot
		}
		txn := db.Txn(true)
		for _, op := range e.Ops {
			if err := applyOp(txn, op); err != nil {
				txn.Abort()
				return 0, 0, fmt.Errorf("entry %d: %w", e.Seq, err)
			}
		}
		txn.Commit()
		seq = e.Seq
	}
	return seq, scan.Good, nil
}

func applyOp(txn *memdb.Txn, op walOp) error {
	obj, err := decodeRecord(op.Table, op.Object)
	if err != nil {
		return err
	}
	if op.Delete {
		if err := txn.Delete(op.Table, obj); err != nil && !errors.Is(err, memdb.ErrNotFound) {
			return err
		}
		return nil
	}
	return txn.Insert(op.Table, obj)
}

func decodeRecord(table string, raw json.RawMessage) (any, error) {
	var obj any
	switch table {
	case tableVpcs:
		obj = &vpcRec{}
	case tableSubnets:
		obj = &subnetRec{}
	case tableInstances:
		obj = &instanceRec{}
	case tableENIs:
		obj = &eniRec{}
	case tableAddrs:
		obj = &addrRec{}
	case tableIdempotency:
		obj = &idemRec{}
	case tableLoadBalancers:
		obj = &lbRec{}
	case tableListeners:
		obj = &listenerRec{}
	case tableTargetGroups:
		obj = &tgRec{}
	case tableTargets:
		obj = &targetRec{}
	case tableRules:
		obj = &ruleRec{}
	case tableCertificates:
		obj = &certRec{}
	case tableLBTokens:
		obj = &lbTokenRec{}
	default:
		return nil, fmt.Errorf("unknown table %q", table)
	}
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decode %s record: %w", table, err)
	}
	if l, ok := obj.(*listenerRec); ok && l.Protocol == api.ProtocolUDP {
		// An application load balancer's UDP listener written when its ports were not per
		// transport has the stream listeners' key; it takes the UDP one.
		l.PortKey = strings.Replace(l.PortKey, "/"+api.ProtocolHTTP+"/", "/"+api.ProtocolUDP+"/", 1)
	}
	return obj, nil
}

// append queues a committed transaction's line. Callers append in sequence order.
func (w *stateLog) append(seq uint64, line []byte) {
	w.mu.Lock()
	w.buf = append(w.buf, line...)
	w.bufSeq = seq
	w.mu.Unlock()
}

// waitDurable returns once the line of seq is on disk. The first waiter writes and fsyncs
// everything queued; the others wait for it.
func (w *stateLog) waitDurable(seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.syncedSeq < seq && w.err == nil {
		if w.syncing {
			w.cond.Wait()
			continue
		}
		w.flushLocked()
	}
	return w.err
}

// flushLocked writes and fsyncs the queue, releasing the lock during I/O.
func (w *stateLog) flushLocked() {
	buf, target := w.buf, w.bufSeq
	w.buf = nil
	w.syncing = true
	w.mu.Unlock()
	err := w.log.Write(buf, true)
	if err != nil {
		// Nobody was told these entries are durable: make a restart not replay them either.
		_ = w.log.Unwrite(len(buf))
	}
	w.mu.Lock()
	w.syncing = false
	w.size = w.log.Size() // the flusher's own write is over; no other runs while syncing
	if err != nil {
		w.err = fmt.Errorf("write state log: %w", err)
	} else {
		w.syncedSeq = target
	}
	w.cond.Broadcast()
}

// drainLocked waits out a flush in progress and flushes the rest.
func (w *stateLog) drainLocked() error {
	for w.syncing {
		w.cond.Wait()
	}
	if len(w.buf) > 0 {
		w.flushLocked()
	}
	return w.err
}

// compact writes a snapshot of txn (which must hold everything up to seq, and nothing later)
// and empties the log. The caller blocks new commits while it runs.
func (w *stateLog) compact(txn *memdb.Txn, seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.drainLocked(); err != nil {
		return err
	}
	if err := writeSnapshot(w.snapPath, txn, seq); err != nil {
		return err
	}
	err := w.log.Reset()
	w.size = w.log.Size()
	if err != nil {
		// The snapshot holds everything, but the log is in an unknown state: stop writing.
		w.err = fmt.Errorf("empty the state log after a snapshot: %w", err)
		return w.err
	}
	return nil
}

func writeSnapshot(path string, txn *memdb.Txn, seq uint64) error {
	snap := snapshotFile{Seq: seq, Tables: map[string][]json.RawMessage{}}
	for table := range schema().Tables {
		it, err := txn.Get(table, indexID)
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			body, err := json.Marshal(raw)
			if err != nil {
				return err
			}
			snap.Tables[table] = append(snap.Tables[table], body)
		}
	}
	body, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if err := wal.WriteFileAtomic(path, body); err != nil {
		return fmt.Errorf("write state snapshot: %w", err)
	}
	return nil
}

func (w *stateLog) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.drainLocked()
	if err == nil {
		err = w.log.Trim()
	}
	if cerr := w.log.Close(); err == nil {
		err = cerr
	}
	return err
}

// failed returns the error that stopped the log, if any. After it, no change may be committed:
// it could never be made durable.
func (w *stateLog) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *stateLog) needsCompaction() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size > compactBytes
}
