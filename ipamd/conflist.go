package ipamd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flatnet/flatnet/ipamd/wire"
)

// NetworkName is the CNI network ipamd's conflist declares (wire.NetworkName).
const NetworkName = wire.NetworkName

// ConflistName is the file ipamd writes into CNIConfDir (wire.ConflistName).
const ConflistName = wire.ConflistName

// conflist is the CNI configuration that points the plugin at this ipamd.
func (d *Daemon) conflist() ([]byte, error) {
	plugin := map[string]any{
		"type":        "flatnet",
		"ipamdSocket": d.cfg.SocketPath,
		"spoolDir":    d.cfg.SpoolDir,
		"mtu":         d.cfg.MTU,
	}
	if d.cfg.CNILogFile != "" {
		plugin["logFile"] = d.cfg.CNILogFile
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.1.0",
		"name":       NetworkName,
		"plugins":    []map[string]any{plugin},
	}, "", "  ")
}

// writeConflist installs the conflist atomically (a runtime never reads half a file). ipamd
// writes it only once it serves: a runtime that finds no conflist reports the node's network
// as not ready, which keeps pods off a node whose ipamd cannot answer yet. ipamd leaves it in
// place when it stops, so a restart does not flap the node; the plugin waits for a restarting
// ipamd.
func (d *Daemon) writeConflist() error {
	if d.cfg.CNIConfDir == "" {
		return nil
	}
	body, err := d.conflist()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.cfg.CNIConfDir, 0o755); err != nil {
		return fmt.Errorf("create the CNI configuration directory: %w", err)
	}
	path := filepath.Join(d.cfg.CNIConfDir, ConflistName)
	if old, err := os.ReadFile(path); err == nil && string(old) == string(body) {
		return nil
	}
	tmp, err := os.CreateTemp(d.cfg.CNIConfDir, ".flatnet-*.tmp")
	if err != nil {
		return fmt.Errorf("write the CNI conflist: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return fmt.Errorf("write the CNI conflist: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write the CNI conflist: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the CNI conflist: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install the CNI conflist %s: %w", path, err)
	}
	d.log.Info("CNI conflist installed", "path", path)
	return nil
}
