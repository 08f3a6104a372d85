package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	memdb "github.com/hashicorp/go-memdb"
)

// Durability: a snapshot file plus a write-ahead log of committed transactions, one JSON line
// each. A call is answered only after the line holding its transaction is fsynced; concurrent
// callers share one fsync (group commit). On open, the snapshot is loaded and the log replayed;
// a torn last line (a crash mid-write, never acknowledged) is cut off. The log is folded into a
// new snapshot once it grows past compactBytes.

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

type wal struct {
	path, snapPath string

	mu        sync.Mutex
	cond      *sync.Cond
	f         *os.File
	size      int64
	buf       []byte
	bufSeq    uint64 // highest seq in buf
	syncedSeq uint64
	syncing   bool
	err       error // sticky: once a write fails, nothing more is acknowledged
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
	line, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}

// openWAL loads the snapshot and the log into db and returns the log, open for appending, and
// the last sequence.
func openWAL(snapPath string, db *memdb.MemDB) (*wal, uint64, error) {
	if err := os.MkdirAll(filepath.Dir(snapPath), 0o755); err != nil {
		return nil, 0, fmt.Errorf("create state directory: %w", err)
	}
	seq, err := loadSnapshot(snapPath, db)
	if err != nil {
		return nil, 0, err
	}
	w := &wal{path: snapPath + ".wal", snapPath: snapPath}
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
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cut torn tail of state log: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("seek state log: %w", err)
	}
	w.f, w.size, w.syncedSeq, w.bufSeq = f, good, last, last
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
	r := bufio.NewReader(f)
	var good int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return seq, good, nil // a line without its newline was never acknowledged
		}
		if err != nil {
			return 0, 0, err
		}
		var e walEntry
		if jerr := json.Unmarshal(bytes.TrimSpace(line), &e); jerr != nil {
			if _, perr := r.Peek(1); perr != nil {
				return seq, good, nil // torn last line
			}
			return 0, 0, fmt.Errorf("entry at byte %d is corrupt: %w", good, jerr)
		}
		good += int64(len(line))
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
	return obj, nil
}

// append queues a committed transaction's line. Callers append in sequence order.
func (w *wal) append(seq uint64, line []byte) {
	w.mu.Lock()
	w.buf = append(w.buf, line...)
	w.bufSeq = seq
	w.mu.Unlock()
}

// waitDurable returns once the line of seq is on disk. The first waiter writes and fsyncs
// everything queued; the others wait for it.
func (w *wal) waitDurable(seq uint64) error {
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
func (w *wal) flushLocked() {
	buf, target := w.buf, w.bufSeq
	w.buf = nil
	w.syncing = true
	w.mu.Unlock()
	_, err := w.f.Write(buf)
	if err == nil {
		err = w.f.Sync()
	}
	w.mu.Lock()
	w.syncing = false
	w.size += int64(len(buf))
	if err != nil {
		w.err = fmt.Errorf("write state log: %w", err)
	} else {
		w.syncedSeq = target
	}
	w.cond.Broadcast()
}

// drainLocked waits out a flush in progress and flushes the rest.
func (w *wal) drainLocked() error {
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
func (w *wal) compact(txn *memdb.Txn, seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.drainLocked(); err != nil {
		return err
	}
	if err := writeSnapshot(w.snapPath, txn, seq); err != nil {
		return err
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate state log: %w", err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek state log: %w", err)
	}
	w.size = 0
	return w.f.Sync()
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
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, body); err != nil {
		return fmt.Errorf("write state snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install state snapshot: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func writeFileSync(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (w *wal) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.drainLocked()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// failed returns the error that stopped the log, if any. After it, no change may be committed:
// it could never be made durable.
func (w *wal) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *wal) needsCompaction() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size > compactBytes
}
