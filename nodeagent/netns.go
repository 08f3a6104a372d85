package nodeagent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// createNetns makes the persistent namespace /run/netns/<name> with its loopback up, as a
// runtime prepares a pod sandbox before calling the CNI plugin. An existing one (left by a
// crash between creating it and recording success) is reused.
func createNetns(name string) (err error) {
	if _, serr := os.Stat(netnsPath(name)); serr == nil {
		return nil
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("read the agent's namespace: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		if serr := netns.Set(orig); serr != nil {
			runtime.Goexit() // never hand a thread in the wrong namespace back to the scheduler
		}
		runtime.UnlockOSThread()
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	defer h.Close()
	lo, lerr := netlink.LinkByName("lo")
	if lerr == nil {
		lerr = netlink.LinkSetUp(lo)
	}
	if err := netns.Set(orig); err != nil {
		runtime.Goexit()
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		return fmt.Errorf("bring up lo in namespace %s: %w", name, lerr)
	}
	return nil
}

// deleteNetns unmounts and removes a pod namespace; a missing one is fine.
func deleteNetns(name string) error {
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// listNetns returns the namespaces in /run/netns whose names start with prefix.
func listNetns(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
