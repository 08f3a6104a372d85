package cli

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flatnet/flatnet/internal/privfile"
)

// nobody is the local user who plants files in the tests below.
const nobody = 65534

// privateTmp points the default admin token's location into a fresh temporary directory.
func privateTmp(t *testing.T) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv(EnvToken, "")
}

// Finding 1 of the hardening issue: with no token flag, serve and the client commands trusted
// whatever file sat at the default admin token path, so another local user could choose the
// admin token. Each planted token must now be refused, with ErrNotPrivate, by both.
func TestDefaultAdminTokenRefusesPlantedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test plants files as another user (chown): run it as root")
	}
	chown := func(t *testing.T, path string) {
		t.Helper()
		if err := os.Lchown(path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	plantFile := func(t *testing.T, path string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("planted-token\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"file owned by another user", func(t *testing.T, path string) {
			plantFile(t, path, 0o600)
			chown(t, path)
		}},
		{"file readable by others", func(t *testing.T, path string) { plantFile(t, path, 0o644) }},
		{"directory and file owned by another user", func(t *testing.T, path string) {
			plantFile(t, path, 0o600)
			chown(t, path)
			chown(t, filepath.Dir(path))
		}},
		{"symbolic link to another user's file", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			plantFile(t, target, 0o600)
			chown(t, target)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			privateTmp(t)
			tc.plant(t, DefaultAdminTokenFile())

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := Execute(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--log-level", "error"}, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, privfile.ErrNotPrivate) {
				t.Errorf("serve with a planted default token: %v; want a refusal matching privfile.ErrNotPrivate", err)
			}
			err = Execute(context.Background(), []string{"--endpoint", "http://127.0.0.1:1", "vpc", "list"}, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, privfile.ErrNotPrivate) {
				t.Errorf("a client command with a planted default token: %v; want a refusal matching privfile.ErrNotPrivate", err)
			}
		})
	}
}

// With no token flag, serve makes the private runtime directory and its token, and a client
// command on the same machine finds the token there.
func TestDefaultAdminTokenIsPrivate(t *testing.T) {
	privateTmp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, []string{"serve", "--listen", addr, "--log-level", "warn"}, &bytes.Buffer{}, &bytes.Buffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	up := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = true
		}
	}
	if !up {
		t.Fatal("serve did not come up")
	}
	path := DefaultAdminTokenFile()
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", p, fi, err, want)
		}
	}
	if err := Execute(context.Background(), []string{"--endpoint", "http://" + addr, "vpc", "list"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("vpc list with the default token: %v", err)
	}
}
