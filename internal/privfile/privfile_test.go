package privfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// nobody is the user another local account plants files as.
const nobody = 65534

func TestReadRefusesWhatOthersCouldWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test chowns files to another user: run it as root (sudo go test ./internal/privfile/)")
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"owned by another user", func(t *testing.T, path string) {
			write(t, path, 0o600)
			if err := os.Chown(path, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}},
		{"readable by others", func(t *testing.T, path string) { write(t, path, 0o644) }},
		{"writable by group", func(t *testing.T, path string) { write(t, path, 0o620) }},
		{"symbolic link to our own private file", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "real")
			write(t, target, 0o600)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			tc.plant(t, path)
			if b, err := Read(path); !errors.Is(err, ErrNotPrivate) {
				t.Fatalf("Read = %q, %v; want an error matching ErrNotPrivate", b, err)
			}
		})
	}
}

func TestReadCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, %v; want 0700", fi.Mode(), err)
	}
	path := filepath.Join(dir, "token")
	if _, err := Read(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing file = %v; want fs.ErrNotExist", err)
	}
	if err := Create(path, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v; want fs.ErrExist", err)
	}
	b, err := Read(path)
	if err != nil || string(b) != "secret" {
		t.Fatalf("Read = %q, %v; want the secret", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode())
	}
}

func TestCreateDoesNotFollowLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	link := filepath.Join(dir, "token")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Create(link, []byte("secret")); err == nil {
		t.Fatal("Create wrote through a symbolic link")
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
}

func TestEnsureDirRefusesOthersDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test chowns directories to another user: run it as root (sudo go test ./internal/privfile/)")
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, dir string)
	}{
		{"owned by another user", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o700)
			if err := os.Chown(dir, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}},
		{"open to others", func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }},
		{"world-writable", func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }},
		{"symbolic link to a private directory", func(t *testing.T, dir string) {
			target := filepath.Join(t.TempDir(), "real")
			mkdir(t, target, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file", func(t *testing.T, dir string) { write(t, dir, 0o600) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			tc.plant(t, dir)
			if err := EnsureDir(dir); !errors.Is(err, ErrNotPrivate) {
				t.Fatalf("EnsureDir = %v; want an error matching ErrNotPrivate", err)
			}
		})
	}
}

func TestRuntimeDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got := RuntimeDir("fc"); got != "/run/user/1000/fc" {
		t.Errorf("with XDG_RUNTIME_DIR: %s", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", "/var/tmp")
	if got, want := RuntimeDir("fc"), filepath.Join("/var/tmp", "fc-"+strconv.Itoa(os.Geteuid())); got != want {
		t.Errorf("without XDG_RUNTIME_DIR: %s, want %s", got, want)
	}
}

func write(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("planted"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
