package privfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrNotPrivate is what every refusal wraps: the directory or file could be written or read by
// someone else. errors.Is(err, ErrNotPrivate) tells it from a missing file or an I/O error.
var ErrNotPrivate = errors.New("not private")

// maxSecret bounds what Read accepts: a secret is a token or a key file, never megabytes.
const maxSecret = 64 << 10

// RuntimeDir is the private runtime directory of a program named name:
// $XDG_RUNTIME_DIR/name when XDG_RUNTIME_DIR is set (systemd makes it per user, 0700), else
// name-UID in the temporary directory ($TMPDIR or /tmp), a name another user can take first but
// never make us trust (EnsureDir refuses it).
func RuntimeDir(name string) string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, name)
	}
	return filepath.Join(os.TempDir(), name+"-"+strconv.Itoa(os.Geteuid()))
}

// EnsureDir creates dir (0700) if it does not exist, then checks that it is private: a real
// directory (not a symbolic link), owned by the effective user, with no permission for group or
// others. Its parent must exist.
func EnsureDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the private directory %s: %w", dir, err)
	}
	return CheckDir(dir)
}

// CheckDir checks that an existing dir is private (see EnsureDir).
func CheckDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return notPrivate(dir, "is not a directory (a symbolic link or a file)", "remove it")
	}
	return checkOwnerMode(dir, "directory", st, "chmod 700 "+dir)
}

// Read reads a secret file that must be private: a regular file (a symbolic link is refused, not
// followed), owned by the effective user, with no permission for group or others. A missing file
// is an error matching fs.ErrNotExist.
func Read(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, notPrivate(path, "is a symbolic link", "remove it")
		}
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notPrivate(path, "is not a regular file", "remove it")
	}
	if err := checkOwnerMode(path, "file", st, "chmod 600 "+path); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecret {
		return nil, fmt.Errorf("%s is over %d bytes: it holds no secret of ours", path, maxSecret)
	}
	return b, nil
}

// Create writes data to a new file (0600) at path. It fails if anything exists there already,
// a symbolic link included (O_EXCL|O_NOFOLLOW), so it never writes through another user's link
// nor over another process's file; the error then matches fs.ErrExist.
func Create(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func checkOwnerMode(path, what string, st unix.Stat_t, fix string) error {
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return notPrivate(path, fmt.Sprintf("is owned by uid %d, not by this process's user (uid %d)", st.Uid, uid),
			"remove it (another user may have planted it)")
	}
	if perm := st.Mode & 0o077; perm != 0 {
		return notPrivate(path, fmt.Sprintf("is a %s open to group or others (mode %04o)", what, st.Mode&0o7777), fix)
	}
	return nil
}

func notPrivate(path, why, fix string) error {
	return fmt.Errorf("%s %s: %w; %s and try again", path, why, ErrNotPrivate, fix)
}
