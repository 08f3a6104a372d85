package fabric

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flatnet/flatnet/internal/netns"
)

// sysctl writes values under /proc/sys inside the named namespace, in order.
func sysctl(ns string, kv ...string) error {
	return netns.Do(ns, func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			path := filepath.Join("/proc/sys", strings.ReplaceAll(kv[i], ".", "/"))
			if err := os.WriteFile(path, []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", kv[i], kv[i+1], ns, err)
			}
		}
		return nil
	})
}

// readSysctls reads values under /proc/sys inside the named namespace.
func readSysctls(ns string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	err := netns.Do(ns, func() error {
		for _, k := range keys {
			b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))
			if err != nil {
				return fmt.Errorf("read sysctl %s in %s: %w", k, ns, err)
			}
			out[k] = strings.TrimSpace(string(b))
		}
		return nil
	})
	return out, err
}
