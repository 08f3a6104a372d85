package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// needRoot fails tests that make namespaces unless run as root, as make test is (under the
// netns lock: flock -o /tmp/flatnet-netns.lock go test ./internal/netns/).
func needRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("making network namespaces needs root: run as root (sudo env \"PATH=$PATH\" go test ./internal/netns/)")
	}
	return fmt.Sprintf("fltest-netns-%d-", os.Getpid())
}

func TestFileAndPath(t *testing.T) {
	if got := File("a"); got != "/run/netns/a" {
		t.Errorf("File(a) = %s", got)
	}
	if got := File("/proc/1/ns/net"); got != "/proc/1/ns/net" {
		t.Errorf("File of an absolute path = %s", got)
	}
}

func TestCreateRefusesBadNames(t *testing.T) {
	for _, name := range []string{"", "a/b", "..", "."} {
		if err := Create(name); err == nil {
			t.Errorf("Create(%q) accepted it", name)
		}
	}
}

func TestCreateDoListDelete(t *testing.T) {
	prefix := needRoot(t)
	name := prefix + "a"
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Delete(name) })
	if err := Create(name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v; want fs.ErrExist", err)
	}
	if !Exists(name) {
		t.Fatal("Exists after Create is false")
	}
	if got, err := List(prefix); err != nil || !slices.Equal(got, []string{name}) {
		t.Fatalf("List = %v, %v", got, err)
	}
	// Inside: only lo, up; a listener there is not reachable from here.
	var ln net.Listener
	err := Do(name, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("links in a new namespace: %v; want lo, up", links)
		}
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("a listener made in the namespace is reachable from the caller's")
	}
	if err := Do(name, func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("dial inside the namespace: %v", err)
	}
	want := errors.New("fn failed")
	if err := Do(name, func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do returned %v; want fn's error", err)
	}
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if err := Delete(name); err != nil {
		t.Fatalf("Delete of a missing namespace: %v", err)
	}
	if Exists(name) {
		t.Fatal("Exists after Delete")
	}
}

func TestDoAndAwaitRefuseAFileThatIsNoNamespace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ran := false
	if err := Do(path, func() error { ran = true; return nil }); !errors.Is(err, ErrNotNamespace) || ran {
		t.Fatalf("Do on a plain file: %v (fn ran: %v); want ErrNotNamespace", err, ran)
	}
	if err := Await(path, 20*time.Millisecond); !errors.Is(err, ErrNotNamespace) {
		t.Fatalf("Await on a plain file: %v; want ErrNotNamespace", err)
	}
	if err := Await("/proc/self/ns/net", time.Second); err != nil {
		t.Fatalf("Await on this thread's namespace: %v", err)
	}
}
