package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// sandboxRecord is what the agent keeps on disk about one pod sandbox, so that a restarted agent
// adopts it or cleans it up. It is written before the namespace and the CNI ADD exist, so a
// crash in the middle leaves a record naming what to undo.
type sandboxRecord struct {
	ID        string    `json:"id"` // the CNI container ID
	Netns     string    `json:"netns"`
	PodUID    types.UID `json:"podUID"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	// Ready is set once CNI ADD has succeeded; IPs are its addresses.
	Ready      bool              `json:"ready"`
	IPs        []string          `json:"ips,omitempty"`
	Containers []containerRecord `json:"containers,omitempty"`
	// HostNetwork sandboxes have no namespace and no CNI attachment: their containers run in
	// the node's namespace, with the node's address.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// InitDone is set once every init container succeeded, so an adopted pod does not run them
	// again.
	InitDone bool `json:"initDone,omitempty"`
}

// containerRecord is a running container's process, identified by pid and start time so that a
// pid reused by another process is never adopted.
type containerRecord struct {
	Name         string    `json:"name"`
	ID           string    `json:"id"`
	PID          int       `json:"pid"`
	StartTime    uint64    `json:"startTime"`
	StartedAt    time.Time `json:"startedAt"`
	RestartCount int32     `json:"restartCount"`
	// Launch and Env are how it was started, for exec probes after an adoption.
	Launch *Launch  `json:"launch,omitempty"`
	Env    []string `json:"env,omitempty"`
	// Held: recorded while the process waited at its start gate (startGate), before the agent
	// let it run. The agent records it again once it has; a held record whose process is gone
	// is a container that never ran.
	Held bool `json:"held,omitempty"`
}

// store keeps one JSON file per sandbox in a directory.
type store struct{ dir string }

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the state directory: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) path(id string) string { return filepath.Join(s.dir, id+".json") }

// save writes the record durably: a temporary file, fsync, rename, fsync of the directory.
func (s *store) save(r *sandboxRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path(r.ID) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("record sandbox %s: %w", r.ID, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path(r.ID))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("record sandbox %s: %w", r.ID, err)
	}
	return syncDir(s.dir)
}

func (s *store) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("drop the record of sandbox %s: %w", id, err)
	}
	return syncDir(s.dir)
}

// load returns every record. A file that does not parse is an error naming it: it is the
// agent's own state, so a broken one means a bug or a damaged disk, not something to skip.
func (s *store) load() ([]*sandboxRecord, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read the state directory: %w", err)
	}
	var out []*sandboxRecord
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, err
		}
		r, err := parseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("sandbox record %s: %w (remove the file after tearing down its namespace by hand)", filepath.Join(s.dir, e.Name()), err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRecord(b []byte) (*sandboxRecord, error) {
	var r sandboxRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if !fileName(r.ID) || !r.HostNetwork && !fileName(r.Netns) || r.HostNetwork && r.Netns != "" {
		return nil, fmt.Errorf("no valid sandbox id and namespace (id %q, netns %q): each names one file", r.ID, r.Netns)
	}
	return &r, nil
}

// fileName reports whether s names a file inside a directory, never the directory or its parent:
// the id names the record, the namespace a file of /run/netns that teardown unmounts.
func fileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
