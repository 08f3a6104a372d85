package nodeagent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/flatnet/flatnet/internal/images"
)

// ociImage is an image of the layout, unpacked once per node and shared by its containers, each
// of which runs in a copy of it (hard links: cheap, and a container's new files stay its own).
type ociImage struct {
	ref        string
	digest     string
	root       string // the unpacked filesystem
	entrypoint []string
	cmd        []string
	env        []string
	workdir    string
	uid, gid   int // -1: not set by the image
}

// imageCache resolves and unpacks the layout's images.
type imageCache struct {
	layout string
	dir    string
	mu     sync.Mutex
	byRef  map[string]*ociImage
}

func newImageCache(layout, dir string) *imageCache {
	return &imageCache{layout: layout, dir: dir, byRef: map[string]*ociImage{}}
}

// errNotInLayout says the layout has no image of that name.
var errNotInLayout = errors.New("not in the image layout")

// get returns the image named ref, unpacking it on first use.
func (c *imageCache) get(ref string) (*ociImage, error) {
	if c == nil || c.layout == "" {
		return nil, errNotInLayout
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if im := c.byRef[ref]; im != nil {
		return im, nil
	}
	img, err := images.Lookup(c.layout, ref, images.Platform{OS: "linux", Arch: runtime.GOARCH})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotInLayout, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	root := filepath.Join(c.dir, d.Hex)
	if err := images.Unpack(img, root); err != nil {
		return nil, fmt.Errorf("unpack image %s: %w", ref, err)
	}
	ep, cmd, env, wd, user, err := images.ImageConfig(img)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	uid, gid, err := parseUser(user)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	im := &ociImage{ref: ref, digest: d.String(), root: root, entrypoint: ep, cmd: cmd, env: env, workdir: wd, uid: uid, gid: gid}
	c.byRef[ref] = im
	return im, nil
}

// parseUser reads an image's user: "", "UID" or "UID:GID" (numeric only: the agent does not
// read the image's /etc/passwd).
func parseUser(u string) (int, int, error) {
	if u == "" {
		return -1, -1, nil
	}
	us, gs, hasGroup := strings.Cut(u, ":")
	uid, err := strconv.Atoi(us)
	if err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("user %q: the node agent takes numeric users only", u)
	}
	gid := -1
	if hasGroup {
		if gid, err = strconv.Atoi(gs); err != nil || gid < 0 {
			return 0, 0, fmt.Errorf("user %q: the node agent takes numeric groups only", u)
		}
	}
	return uid, gid, nil
}

// containerRootDir holds the roots of a sandbox's containers.
func (a *Agent) containerRootDir(sandboxID string) string {
	return filepath.Join(a.cfg.StateDir, "containers", sandboxID)
}

// cloneTree makes dst a copy of src in hard links (directories and symlinks are made anew).
// dst is removed first: every start of a container gets the image's files as they are.
func cloneTree(src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == images.UnpackMarker {
			return nil // the cache's bookkeeping, not the image's
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm()|info.Mode()&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid))
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			return os.Link(p, target)
		}
	})
}
