// Package netns makes, enters and removes named network namespaces (/run/netns/<name>, as
// `ip netns` does) for every part of flatnet that runs network code of its own: fakecloud's
// fabric, the node agent's pod sandboxes, the lab. It is a shared leaf: it imports nothing of
// the module.
//
// A thread switched into a namespace is either switched back before it is handed back to the
// scheduler or thrown away with its goroutine: no goroutine ever runs in a namespace it did not
// ask for.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces live, as with `ip netns`.
const Dir = "/run/netns"

// ErrNotNamespace: the file is not (or not yet) a mounted network namespace.
var ErrNotNamespace = errors.New("not a network namespace")

// Path is the file of a named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// File is the file of a namespace given by name (under Dir) or by absolute path (an attached
// namespace, a container runtime's).
func File(ns string) string {
	if filepath.IsAbs(ns) {
		return ns
	}
	return Path(ns)
}

// EnsureDir makes Dir a shared mount point the way iproute2 does, so namespaces made here and
// those `ip netns add` makes behave the same.
func EnsureDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", Dir, err)
	}
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", Dir, err)
	}
	if err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", Dir, err)
	}
	return nil
}

// Exists reports whether the file of a named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Create makes a persistent named namespace with its loopback up. A name already taken fails
// with an error that wraps fs.ErrExist. The thread that unshares is thrown away with its
// goroutine, never handed back to the scheduler.
func Create(name string) error {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return fmt.Errorf("namespace name %q: want a file name, without '/'", name)
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", Dir, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		errc <- createOnThread(name)
	}()
	return <-errc
}

func createOnThread(name string) error {
	path := Path(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	_ = f.Close()
	ok := false
	defer func() {
		if !ok {
			_ = unix.Unmount(path, unix.MNT_DETACH)
			_ = os.Remove(path)
		}
	}()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare a namespace for %s: %w", name, err)
	}
	if err := unix.Mount(selfFile(), path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind namespace %s: %w", name, err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("bring up lo in namespace %s: %w", name, err)
	}
	ok = true
	return nil
}

// selfFile is the namespace file of the calling thread.
func selfFile() string { return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()) }

// Delete unmounts and removes a named namespace; the kernel frees it (and destroys its veth
// pairs) once nothing holds it. A missing namespace is not an error.
func Delete(name string) error {
	path := Path(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove namespace %s: %w", name, err)
	}
	return nil
}

// List returns the named namespaces whose names start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Do runs fn on an OS thread switched into the namespace ns (a name, or an absolute path; see
// File). Sockets fn opens stay in that namespace after it returns, and processes fn starts are
// born in it. If the thread cannot be switched back it is thrown away.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := doOnThread(ns, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func doOnThread(ns string, fn func() error) (restored bool, err error) {
	orig, err := unix.Open(selfFile(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("open own namespace: %w", err)
	}
	defer unix.Close(orig)
	target, err := open(ns)
	if err != nil {
		return true, err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	fnErr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return false, errors.Join(fnErr, fmt.Errorf("leave namespace %s: %w", ns, err))
	}
	return true, fnErr
}

// open opens a namespace's file and checks that it is one.
func open(ns string) (int, error) {
	fd, err := unix.Open(File(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open namespace %s: %w", ns, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat namespace %s: %w", ns, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("namespace %s: %w", ns, ErrNotNamespace)
	}
	return fd, nil
}

// Await waits up to timeout for ns to be a mounted namespace. Whoever makes one (Create, the
// fabric, `ip netns add`) creates its file a moment before mounting the namespace on it; in
// that moment the file is not a namespace yet.
func Await(ns string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		fd, err := open(ns)
		if err == nil {
			unix.Close(fd)
			return nil
		}
		if !errors.Is(err, ErrNotNamespace) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}
