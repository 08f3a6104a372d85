package nodeagent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Launch is how one process of a pod is started: the agent re-executes itself as "container"
// with these settings, and the child sets them up and executes the program. Everything the
// process sees is set before its first instruction: the thread that calls execve keeps its
// namespaces and root, and execve leaves only that thread.
type Launch struct {
	// Netns is the pod's network namespace file; empty runs in the agent's own (the node's:
	// hostNetwork pods and the CNI plugins).
	Netns string `json:"netns,omitempty"`
	// Rootfs, when set, becomes the process's root directory, in a mount namespace of its own
	// (the agent starts the child with one): the image's files, the Mounts on top, a fresh /proc,
	// the host's /dev and /sys. Empty: the node's filesystem as it is (the built-in images).
	Rootfs string  `json:"rootfs,omitempty"`
	Mounts []Mount `json:"mounts,omitempty"`
	// ReadOnlyRoot makes Rootfs read-only (the container's readOnlyRootFilesystem); the mounts
	// keep their own modes.
	ReadOnlyRoot bool `json:"readOnlyRoot,omitempty"`
	// UID and GID, when not negative, are the identity the program runs as; Groups its
	// supplementary groups (the pod's fsGroup and supplementalGroups), set with GID.
	UID    int   `json:"uid"`
	GID    int   `json:"gid"`
	Groups []int `json:"groups,omitempty"`
	// Workdir is the working directory inside Rootfs ("/" by default).
	Workdir string `json:"workdir,omitempty"`
	// Argv is the program and its arguments; Argv[0] is looked up through PATH (inside Rootfs)
	// when it has no slash.
	Argv []string `json:"argv,omitempty"`
}

// Mount is a bind mount: Source (a path of the node's filesystem) at Target (a path inside
// the container), read-only when ReadOnly.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

func (m Mount) String() string {
	s := m.Source + ":" + m.Target
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// ParseMount parses SOURCE:TARGET[:ro].
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	m := Mount{}
	switch {
	case len(parts) == 3 && parts[2] == "ro":
		m.ReadOnly = true
	case len(parts) == 2:
	default:
		return m, fmt.Errorf("mount %q: want SOURCE:TARGET[:ro]", s)
	}
	m.Source, m.Target = parts[0], parts[1]
	if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) {
		return m, fmt.Errorf("mount %q: both paths must be absolute", s)
	}
	return m, nil
}

// args is the command line of the "container" subcommand for l, after the program name.
func (l Launch) args() []string {
	a := []string{"container"}
	if l.Netns != "" {
		a = append(a, "--netns", l.Netns)
	}
	if l.Rootfs != "" {
		a = append(a, "--rootfs", l.Rootfs)
		for _, m := range l.Mounts {
			a = append(a, "--mount", m.String())
		}
		if l.ReadOnlyRoot {
			a = append(a, "--read-only-root")
		}
	}
	if l.UID >= 0 {
		a = append(a, "--uid", strconv.Itoa(l.UID))
	}
	if l.GID >= 0 {
		a = append(a, "--gid", strconv.Itoa(l.GID))
	}
	for _, g := range l.Groups {
		a = append(a, "--group", strconv.Itoa(g))
	}
	if l.Workdir != "" {
		a = append(a, "--workdir", l.Workdir)
	}
	return append(append(a, "--"), l.Argv...)
}

// command is the process that runs l: the agent's own executable, in a new mount namespace when
// l has a root of its own (Go makes / private in it before executing the child, so nothing the
// child mounts reaches the node).
func (l Launch) command(self string) *exec.Cmd {
	cmd := exec.Command(self, l.args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if l.Rootfs != "" {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	return cmd
}

// startFD is the descriptor on which a container's child waits for the agent's go-ahead.
const startFD = 3

// startGate holds a container's child before it runs anything, until the agent has recorded
// the child's pid: an agent that dies between starting a process and recording it would leave
// a container no successor knows of, running in a namespace the successor removes. The child
// reads one byte from its fd 3 (WaitStart); when the agent dies, the pipe closes without one
// and the child exits without running its program.
type startGate struct {
	r, w *os.File
}

// gatedCommand is l.command with a start gate.
func (l Launch) gatedCommand(self string) (*exec.Cmd, *startGate, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("start gate: %w", err)
	}
	cmd := l.command(self)
	args := l.args()
	cmd.Args = append([]string{self, args[0], "--start-fd", strconv.Itoa(startFD)}, args[1:]...)
	cmd.ExtraFiles = []*os.File{r} // fd 3
	return cmd, &startGate{r: r, w: w}, nil
}

// started closes the agent's copy of the child's end, once the child holds its own.
func (g *startGate) started() { g.r.Close() }

// open lets the child run.
func (g *startGate) open() error {
	_, err := g.w.Write([]byte{1})
	return errors.Join(err, g.w.Close())
}

// cancel makes the child exit without running its program.
func (g *startGate) cancel() {
	g.r.Close()
	g.w.Close()
}

// WaitStart blocks until the agent that started this process lets it run (one byte on fd),
// and fails when the agent closed the gate or died first.
func WaitStart(fd int) error {
	f := os.NewFile(uintptr(fd), "start-gate")
	defer f.Close()
	var b [1]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return fmt.Errorf("container: the node agent did not let the container run (it stopped, or could not record the container, before it did): %w", err)
	}
	return nil
}

// ContainerMain is the "container" subcommand: it sets up what l asks and executes l.Argv.
func ContainerMain(l Launch) error {
	if len(l.Argv) == 0 {
		return errors.New("container: no command to run: give it after --")
	}
	runtime.LockOSThread() // never unlocked: this thread becomes the process
	var nsf *os.File
	if l.Netns != "" {
		// Opened before the root changes: the file is a path of the node's filesystem.
		f, err := os.Open(l.Netns)
		if err != nil {
			return fmt.Errorf("container: open the pod namespace: %w", err)
		}
		nsf = f
	}
	if l.Rootfs != "" {
		if err := setupRoot(l); err != nil {
			return fmt.Errorf("container: %w", err)
		}
	}
	if l.GID >= 0 || len(l.Groups) > 0 {
		if err := syscall.Setgroups(l.Groups); err != nil {
			return fmt.Errorf("container: set supplementary groups %v: %w", l.Groups, err)
		}
	}
	if l.GID >= 0 {
		if err := syscall.Setgid(l.GID); err != nil {
			return fmt.Errorf("container: run as group %d: %w", l.GID, err)
		}
	}
	if nsf != nil {
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("container: enter the pod namespace %s: %w", l.Netns, err)
		}
		nsf.Close()
	}
	if l.UID >= 0 {
		if err := syscall.Setuid(l.UID); err != nil {
			return fmt.Errorf("container: run as user %d: %w", l.UID, err)
		}
	}
	path, err := exec.LookPath(l.Argv[0])
	if err != nil {
		if l.Rootfs == "" {
			return fmt.Errorf("container: %w (a flatnet.io/generic container runs a program of the node's filesystem, found through PATH)", err)
		}
		return fmt.Errorf("container: %w (in the image)", err)
	}
	return fmt.Errorf("container: execute %s: %w", path, syscall.Exec(path, l.Argv, os.Environ()))
}

// setupRoot builds the container's filesystem in the current (new, private) mount namespace and
// makes it the root: the image's directory bound onto itself (so it is a mount that can turn
// read-only), each mount on top, /proc fresh, /dev and /sys from the node.
func setupRoot(l Launch) error {
	root := l.Rootfs
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind the root %s: %w", root, err)
	}
	mounts := append([]Mount{{Source: "/dev", Target: "/dev"}, {Source: "/sys", Target: "/sys", ReadOnly: true}}, l.Mounts...)
	for _, m := range mounts {
		if err := bindInto(root, m); err != nil {
			return err
		}
	}
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return fmt.Errorf("create /proc in the root: %w", err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if l.ReadOnlyRoot {
		if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("make the root read-only: %w", err)
		}
	}
	if err := unix.Chroot(root); err != nil {
		return fmt.Errorf("enter the root %s: %w", root, err)
	}
	wd := l.Workdir
	if wd == "" {
		wd = "/"
	}
	if err := os.MkdirAll(wd, 0o755); err != nil && !errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	if err := os.Chdir(wd); err != nil {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	return nil
}

// bindInto binds m.Source at m.Target under root, creating the target (a directory, or an
// empty file for a file source) inside root. A target that would leave root through a symlink
// of the image is refused.
func bindInto(root string, m Mount) error {
	target, err := inRoot(root, m.Target)
	if err != nil {
		return err
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m, err)
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("mount %s: create the mount point: %w", m, err)
	}
	if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s: %w", m, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("mount %s read-only: %w", m, err)
		}
	}
	return nil
}

// inRoot resolves p (absolute, inside the container) under root, following the image's
// symlinks as the container would see them, and refuses a result outside root.
func inRoot(root, p string) (string, error) {
	cur := root
	parts := strings.Split(filepath.Clean("/"+p), "/")
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			if cur != root {
				cur = filepath.Dir(cur)
			}
			continue
		}
		next := filepath.Join(cur, part)
		link, err := os.Readlink(next)
		if err != nil {
			cur = next
			continue
		}
		// A symlink of the image: resolve it inside root.
		if filepath.IsAbs(link) {
			cur = root
		}
		rest := append(strings.Split(link, "/"), parts[i+1:]...)
		parts = append(parts[:i+1], rest...)
		if len(parts) > 255 {
			return "", fmt.Errorf("mount target %s: too many symlinks", p)
		}
	}
	if cur != root && !strings.HasPrefix(cur, root+"/") {
		return "", fmt.Errorf("mount target %s leaves the container's root", p)
	}
	return cur, nil
}
