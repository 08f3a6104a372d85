package nodeagent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteAtomicDir: a refresh with the same content keeps the generation (a certificate
// watcher sees no event), a changed one swaps it, and with an fsGroup every file of the new
// generation is group-readable before the swap.
func TestWriteAtomicDir(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	files := map[string]volumeFile{
		"tls.crt": {data: []byte("cert"), mode: 0o600},
		"tls.key": {data: []byte("key"), mode: 0o600},
	}
	if err := writeAtomicDir(dir, files, gid); err != nil {
		t.Fatal(err)
	}
	gen1, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("%s has mode %v, want 0660 (the fsGroup's bits follow the owner's)", name, fi.Mode().Perm())
		}
	}
	if err := writeAtomicDir(dir, files, gid); err != nil {
		t.Fatal(err)
	}
	if gen2, _ := os.Readlink(filepath.Join(dir, "..data")); gen2 != gen1 {
		t.Errorf("an identical refresh swapped the generation %s for %s", gen1, gen2)
	}
	files["tls.crt"] = volumeFile{data: []byte("cert2"), mode: 0o600}
	if err := writeAtomicDir(dir, files, gid); err != nil {
		t.Fatal(err)
	}
	gen3, _ := os.Readlink(filepath.Join(dir, "..data"))
	if gen3 == gen1 {
		t.Error("a changed refresh kept the old generation")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tls.crt")); err != nil || string(b) != "cert2" {
		t.Errorf("tls.crt = %q, %v; want cert2", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, gen1)); !os.IsNotExist(err) {
		t.Errorf("the old generation %s is still there (%v)", gen1, err)
	}
	delete(files, "tls.key")
	if err := writeAtomicDir(dir, files, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls.key")); !os.IsNotExist(err) {
		t.Errorf("tls.key left the set but is still there (%v)", err)
	}
}
