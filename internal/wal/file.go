package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with body so that a crash leaves either the old file or the
// new one, whole: a temporary file beside it, fsync, rename, fsync of the directory.
func WriteFileAtomic(path string, body []byte) error {
	tmp := path + ".tmp"
	if err := WriteFileSynced(tmp, body); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// WriteFileSynced creates or replaces path (0600) with body and fsyncs it.
func WriteFileSynced(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// SyncDir fsyncs a directory, making the names created or renamed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
