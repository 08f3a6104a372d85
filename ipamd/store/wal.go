package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/flatnet/flatnet/internal/wal"
	"github.com/flatnet/flatnet/ipamd/wire"
)

// Record operations.
const (
	opInterface       = "iface"     // upsert Iface
	opRemoveInterface = "iface-del" // remove interface ID and its addresses
	opAdd             = "add"       // add IPs (free) to interface ID, unless present
	opRemove          = "del"       // remove IPs
	opAssign          = "assign"    // IPs[0] to Owner
	opRelease         = "release"   // IPs[0] back to free at At
)

// record is one WAL entry; apply gives it meaning.
type record struct {
	Seq    uint64       `json:"seq"`
	Op     string       `json:"op"`
	Iface  *Interface   `json:"iface,omitempty"`
	ID     string       `json:"id,omitempty"`
	IPs    []netip.Addr `json:"ips,omitempty"`
	Prefix netip.Prefix `json:"prefix,omitzero"`
	Owner  wire.Owner   `json:"owner,omitzero"`
	Pod    wire.PodRef  `json:"pod,omitzero"`
	At     time.Time    `json:"at"`
}

// snapshot is the compacted state: everything up to Seq.
type snapshot struct {
	Seq        uint64      `json:"seq"`
	Interfaces []Interface `json:"interfaces"`
	Addresses  []Address   `json:"addresses"`
}

// encode frames r as one log record.
func encode(r *record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode wal record: %w", err)
	}
	return wal.Encode(body), nil
}

// decode is the log's record decoder.
func decode(body []byte) (*record, uint64, error) {
	var r record
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, 0, err
	}
	return &r, r.Seq, nil
}

// readWAL reads a log from its start (see wal.Read); load judges its damage (judgeDamage).
func readWAL(r io.Reader) (*wal.Scan[*record], error) {
	return wal.Read(r, decode, wal.ReadOptions{})
}

// writeSnapshot replaces path atomically with snap.
func writeSnapshot(path string, snap *snapshot) error {
	body, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := wal.WriteFileAtomic(path, body); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

func readSnapshot(path string) (*snapshot, error) {
	body, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &snapshot{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	var s snapshot
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s is not valid (%w): move it aside to start from the cloud's truth", path, err)
	}
	return &s, nil
}
