package state

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/flatnet/flatnet/fakecloud/api"
)

// Config configures a Store.
type Config struct {
	// StateFile, when set, makes every acknowledged change durable: a snapshot at StateFile and
	// a write-ahead log at StateFile+".wal", fsynced before a call is answered.
	StateFile string
	// AttachDelay is how long attach and detach stay in their transitional states. Zero makes
	// them complete within the call.
	AttachDelay time.Duration
	// ChangeLogSize is how many changes WaitChanges can at least serve from memory (default
	// 65536; up to twice that are kept); a caller further behind is told to resync.
	ChangeLogSize int
	// IdempotencyTTL is how long a client token is remembered (default 24h, as EC2 documents
	// at least); expired records are swept every sweepEvery writes.
	IdempotencyTTL time.Duration
	// DataPlane says a data plane (the fabric) programs the load balancers and reports their
	// state: new ones start provisioning until it does. Without one they are active at once.
	DataPlane bool
	// ALBLimits are the application load balancers' quotas; zero fields take AWS's defaults.
	ALBLimits ALBLimits
	// InterfacesPerInstance is how many network interfaces one instance may have created through
	// its own token and not yet deleted, attached or not (default DefaultInterfacesPerInstance).
	// The admin has no such quota.
	InterfacesPerInstance int
	Logger                *slog.Logger
}

// DefaultInterfacesPerInstance is the default of Config.InterfacesPerInstance: twice the most
// interfaces any instance type attaches (15), so a node replacing every interface it has still
// fits, while one node can hold no more than a bounded share of its VPC's addresses.
const DefaultInterfacesPerInstance = 32

// sweepEvery is how many committed writes pass between sweeps of expired client tokens.
const sweepEvery = 4096

// Store is fakecloud's state. All methods are safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger
	db  *memdb.MemDB
	// ruleViews are the rules' views of the last Snapshot (ruleViews says why).
	ruleViews ruleViews

	// mu serialises write transactions so that sequence numbers, the change log and the WAL
	// follow commit order.
	mu  sync.Mutex
	seq uint64
	// changes holds the most recent changes, one batch per transaction, oldest first; nchanges
	// counts them. A transaction's batch is appended as it is, so a write of thousands of
	// targets never copies the log.
	changes  [][]api.Change
	nchanges int
	notify   chan struct{}
	cursors  map[string]uint32 // per-subnet next-fit allocation cursor (a hint only)
	wal      *stateLog
	timers   map[string]*time.Timer // pending attach/detach completions by ENI
	closed   bool
}

// Open loads the state file, if any, and returns a ready Store.
func Open(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ChangeLogSize <= 0 {
		cfg.ChangeLogSize = 1 << 16
	}
	if cfg.InterfacesPerInstance <= 0 {
		cfg.InterfacesPerInstance = DefaultInterfacesPerInstance
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	cfg.ALBLimits = cfg.ALBLimits.withDefaults()
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("build state schema: %w", err)
	}
	s := &Store{
		cfg: cfg, log: cfg.Logger, db: db,
		notify:  make(chan struct{}),
		cursors: map[string]uint32{},
		timers:  map[string]*time.Timer{},
	}
	if cfg.StateFile != "" {
		w, seq, err := openWAL(cfg.StateFile, db)
		if err != nil {
			return nil, err
		}
		s.wal, s.seq = w, seq
	}
	s.resumeTransitions()
	s.resumeDrains()
	return s, nil
}

// Close stops pending transitions and closes the state file. Later writes fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	close(s.notify)
	if s.wal != nil {
		return s.wal.close()
	}
	return nil
}

// Authenticate resolves an instance token to its instance, or a load-balancer token to the
// load-balancer principal. The lookup goes by the token's hash and the final comparison is
// constant-time.
func (s *Store) Authenticate(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	txn := s.db.Txn(false)
	r := first[instanceRec](txn, tableInstances, indexToken, tokenHash(token))
	if r == nil || subtle.ConstantTimeCompare([]byte(r.Token), []byte(token)) != 1 {
		return authenticateLB(txn, token)
	}
	return Principal{InstanceID: r.ID}, true
}

// InstanceToken returns a running instance's token, from which its AWS credentials derive.
func (s *Store) InstanceToken(instanceID string) (string, bool) {
	r := first[instanceRec](s.db.Txn(false), tableInstances, indexID, instanceID)
	if r == nil {
		return "", false
	}
	return r.Token, true
}

// Seq is the sequence number of the last committed change.
func (s *Store) Seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// WaitChanges returns the changes after since, waiting until there is one or ctx ends (then it
// returns no changes and the current sequence).
func (s *Store) WaitChanges(ctx context.Context, since uint64) (*api.GetChangesResponse, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, api.Errorf(api.CodeServiceUnavailable, "fakecloud is shutting down")
		}
		resp, ok := s.changesSinceLocked(since)
		ch := s.notify
		s.mu.Unlock()
		if ok {
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return &api.GetChangesResponse{Seq: resp.Seq, Changes: []api.Change{}}, nil
		case <-ch:
		}
	}
}

// compact folds the log into a snapshot; a failure is logged and retried on a later write (the
// log stays valid meanwhile).
func (s *Store) compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.wal.compact(s.db.Txn(false), s.seq); err != nil {
		s.log.Error("compact state log", "err", err)
	}
}

// changesSinceLocked reports the changes after since; ok is false when there are none yet.
func (s *Store) changesSinceLocked(since uint64) (*api.GetChangesResponse, bool) {
	resp := &api.GetChangesResponse{Seq: s.seq, Changes: []api.Change{}}
	if since >= s.seq {
		return resp, false
	}
	if len(s.changes) == 0 || s.changes[0][0].Seq > since+1 {
		resp.Resync = true
		return resp, true
	}
	// Batches are in seq order; find the first after since.
	lo, hi := 0, len(s.changes)
	for lo < hi {
		mid := (lo + hi) / 2
		if s.changes[mid][0].Seq <= since {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	n := 0
	for _, b := range s.changes[lo:] {
		n += len(b)
	}
	resp.Changes = make([]api.Change, 0, n)
	for _, b := range s.changes[lo:] {
		resp.Changes = append(resp.Changes, b...)
	}
	return resp, true
}

// Snapshot returns a consistent view of everything, with instance tokens.
func (s *Store) Snapshot() *api.Snapshot {
	s.mu.Lock()
	seq := s.seq
	txn := s.db.Txn(false)
	s.mu.Unlock()
	v := viewer{txn: txn, admin: true, tgsUsed: map[string]bool{}, rules: &s.ruleViews}
	snap := &api.Snapshot{Seq: seq}
	for _, r := range listAll[vpcRec](txn, tableVpcs) {
		snap.Vpcs = append(snap.Vpcs, v.vpc(r))
	}
	for _, r := range listAll[subnetRec](txn, tableSubnets) {
		snap.Subnets = append(snap.Subnets, v.subnet(r))
	}
	for _, r := range listAll[instanceRec](txn, tableInstances) {
		snap.Instances = append(snap.Instances, v.instance(r))
	}
	for _, r := range listAll[eniRec](txn, tableENIs) {
		snap.NetworkInterfaces = append(snap.NetworkInterfaces, v.eni(r))
	}
	v.addLoadBalancers(snap)
	return snap
}

// tx is one write transaction with what it touched, so that the change records and the
// idempotent answer are produced inside it.
type tx struct {
	*memdb.Txn
	s       *Store
	call    Call
	touched map[string]string // resource ID -> kind, in the order of first touch
	order   []string
	dirty   bool // something was written that touched no resource (an idempotency record)
	// onCommit runs, under the store's lock, once the transaction has committed (timers of
	// attach transitions: an aborted transaction must neither arm nor disarm one).
	onCommit []func()
}

func (t *tx) afterCommit(fn func()) { t.onCommit = append(t.onCommit, fn) }

func (t *tx) touch(kind, id string) {
	if _, ok := t.touched[id]; ok {
		return
	}
	t.touched[id] = kind
	t.order = append(t.order, id)
}

// write runs fn in one write transaction and commits it durably. With a client token, a
// repeated identical request gets the first answer again and a different one is refused.
func write[Resp any](s *Store, c Call, action, clientToken string, req any, fn func(*tx) (*Resp, error)) (*Resp, error) {
	if len(clientToken) > 64 {
		return nil, api.Errorf(api.CodeInvalidParameterValue, "ClientToken is %d characters; the limit is 64", len(clientToken))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, api.Errorf(api.CodeServiceUnavailable, "fakecloud is shutting down")
	}
	if s.wal != nil {
		if err := s.wal.failed(); err != nil {
			s.mu.Unlock()
			return nil, api.Errorf(api.CodeInternalError, "the state file failed (%v): fakecloud refuses changes until it is restarted", err)
		}
	}
	t := &tx{Txn: s.db.Txn(true), s: s, call: c, touched: map[string]string{}}
	if s.wal != nil {
		t.TrackChanges() // the WAL records exactly what memdb changed
	}
	resp, seq, err := commitLocked(t, action, clientToken, req, fn)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if s.wal != nil && seq > 0 {
		if err := s.wal.waitDurable(seq); err != nil {
			return nil, api.Errorf(api.CodeInternalError, "persist state: %v", err)
		}
		if s.wal.needsCompaction() {
			s.compact()
		}
	}
	return resp, nil
}

func commitLocked[Resp any](t *tx, action, clientToken string, req any, fn func(*tx) (*Resp, error)) (*Resp, uint64, error) {
	defer t.Abort()
	var idemKey, hash string
	if clientToken != "" {
		idemKey, hash = idempotencyKey(t.call.Principal, clientToken), requestHash(action, req)
		if resp, found, err := replay[Resp](t, idemKey, action, hash); found || err != nil {
			if err != nil {
				return nil, 0, err
			}
			// The first call's change may still be on its way to disk: answer the repeat only
			// once everything committed so far is durable.
			return resp, t.s.seq, nil
		}
	}
	resp, err := fn(t)
	if err != nil {
		return nil, 0, err
	}
	if idemKey != "" {
		body, err := json.Marshal(resp)
		if err != nil {
			return nil, 0, api.Errorf(api.CodeInternalError, "encode answer: %v", err)
		}
		rec := &idemRec{Key: idemKey, Action: action, Hash: hash, Response: body, Created: t.call.Now}
		if err := t.Insert(tableIdempotency, rec); err != nil {
			return nil, 0, internal(err)
		}
		t.dirty = true
	}
	if (t.s.seq+1)%sweepEvery == 0 {
		if err := t.sweepIdempotency(); err != nil {
			return nil, 0, err
		}
	}
	seq, err := t.s.publishLocked(t)
	if err != nil {
		return nil, 0, err
	}
	return resp, seq, nil
}

// sweepIdempotency deletes the client-token records older than the TTL.
func (t *tx) sweepIdempotency() error {
	cutoff := t.call.Now.Add(-t.s.cfg.IdempotencyTTL)
	for _, r := range listAll[idemRec](t.Txn, tableIdempotency) {
		if r.Created.Before(cutoff) {
			if err := t.Delete(tableIdempotency, r); err != nil {
				return internal(err)
			}
			t.dirty = true
		}
	}
	return nil
}

// publishLocked turns the transaction's effects into change records and WAL entries, then
// commits. It returns the sequence of the change, or 0 when the transaction changed nothing.
func (s *Store) publishLocked(t *tx) (uint64, error) {
	if len(t.order) == 0 && !t.dirty {
		return 0, nil // nothing written: abort, no sequence, no change
	}
	seq := s.seq + 1
	var entry []byte
	if s.wal != nil {
		var err error
		if entry, err = encodeWALEntry(seq, t.Changes()); err != nil {
			return 0, api.Errorf(api.CodeInternalError, "encode state change: %v", err)
		}
	}
	v := viewer{txn: t.Txn, admin: true, tgsUsed: map[string]bool{}}
	changes := make([]api.Change, 0, len(t.order))
	for _, id := range t.order {
		changes = append(changes, v.change(seq, t.touched[id], id))
	}
	t.Commit()
	for _, fn := range t.onCommit {
		fn()
	}
	s.seq = seq
	s.appendChanges(changes)
	if s.wal != nil {
		s.wal.append(seq, entry)
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return seq, nil
}

// appendChanges adds one committed transaction's changes to the in-memory log. The log keeps at
// least the last ChangeLogSize changes; once it holds twice that, the oldest whole transactions
// are dropped (a reader never sees half of one). Neither appending nor trimming copies changes.
func (s *Store) appendChanges(changes []api.Change) {
	if len(changes) == 0 {
		return
	}
	s.changes = append(s.changes, changes)
	s.nchanges += len(changes)
	if s.nchanges < 2*s.cfg.ChangeLogSize {
		return
	}
	drop := 0
	for drop < len(s.changes)-1 && s.nchanges-len(s.changes[drop]) >= s.cfg.ChangeLogSize {
		s.nchanges -= len(s.changes[drop])
		s.changes[drop] = nil
		drop++
	}
	s.changes = s.changes[drop:]
}

func idempotencyKey(p Principal, token string) string {
	who := "admin"
	switch {
	case p.LoadBalancer:
		who = p.TokenID
	case !p.Admin:
		who = p.InstanceID
	}
	return who + "|" + token
}

// requestHash identifies a request's parameters, ignoring the client token itself.
func requestHash(action string, req any) string {
	body, _ := json.Marshal(req) // request types are plain data; Marshal cannot fail
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	delete(m, "ClientToken")
	canon, _ := json.Marshal(m) // map keys are sorted: canonical
	sum := sha256.Sum256(append([]byte(action+"\x00"), canon...))
	return hex.EncodeToString(sum[:])
}

func replay[Resp any](t *tx, key, action, hash string) (*Resp, bool, error) {
	raw, err := t.First(tableIdempotency, indexID, key)
	if err != nil {
		return nil, false, internal(err)
	}
	if raw == nil {
		return nil, false, nil
	}
	rec := raw.(*idemRec)
	if rec.Created.Before(t.call.Now.Add(-t.s.cfg.IdempotencyTTL)) {
		return nil, false, nil // expired: a new request; its record replaces this one
	}
	if rec.Action != action || rec.Hash != hash {
		return nil, true, api.Errorf(api.CodeIdempotentParameterMismatch,
			"client token was already used for a different %s request; use a new token for a new request", rec.Action)
	}
	resp := new(Resp)
	if err := json.Unmarshal(rec.Response, resp); err != nil {
		return nil, true, api.Errorf(api.CodeInternalError, "decode stored answer: %v", err)
	}
	return resp, true, nil
}

func internal(err error) *api.Error {
	return api.Errorf(api.CodeInternalError, "state: %v", err)
}

// read runs fn over a consistent read view.
func (s *Store) read() *memdb.Txn { return s.db.Txn(false) }

func listAll[T any](txn *memdb.Txn, table string) []*T { return listBy[T](txn, table, indexID) }

func listBy[T any](txn *memdb.Txn, table, index string, args ...any) []*T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*T))
	}
	return out
}

func first[T any](txn *memdb.Txn, table, index string, args ...any) *T {
	raw, err := txn.First(table, index, args...)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*T)
}
