package ipamd

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestListenSocket: the socket is 0600 at its path (a stale one replaced), its new directory
// 0700; a directory others may write to is refused; closing removes the socket.
func TestListenSocket(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "run", "ipamd.sock")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil { // a stale file of an earlier run
		t.Fatal(err)
	}
	ln, err := listenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v (%v); want a socket of mode 0600", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("socket directory holds %d entries; want the socket only", len(entries))
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the socket: %v", err)
	}
	c.Close()
	ln.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("after close the socket is still there: %v", err)
	}

	fresh := filepath.Join(base, "new", "dir", "ipamd.sock")
	ln, err = listenSocket(fresh)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if fi, err := os.Stat(filepath.Dir(fresh)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created socket directory %v (%v); want 0700", fi.Mode(), err)
	}

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if ln, err := listenSocket(filepath.Join(open, "ipamd.sock")); err == nil {
		ln.Close()
		t.Fatal("a socket directory anyone may write to was accepted")
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err = listenSocket(filepath.Join(open, "ipamd.sock"))
	if err != nil {
		t.Fatalf("a 0755 directory of ours: %v", err)
	}
	ln.Close()
}
