package nodenet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
)

// sysctl is one setting under /proc/sys, named by its path segments so interface names with
// dots (eth0.100) stay intact.
type sysctl struct {
	path  []string
	value string
}

// Name is the dotted form people know (net.ipv4.conf.eth1.rp_filter).
func (s sysctl) Name() string { return strings.Join(s.path, ".") }

// rpLoose: reverse-path filtering that accepts a packet if its source is reachable through any
// interface. Strict (1) would drop replies arriving on the interface whose table is not main.
const rpLoose = "2"

func baseSysctls() []sysctl {
	return []sysctl{
		{[]string{"net", "ipv4", "ip_forward"}, "1"},
		{[]string{"net", "ipv4", "conf", "all", "rp_filter"}, rpLoose},
		{[]string{"net", "ipv4", "conf", "default", "rp_filter"}, rpLoose},
	}
}

func interfaceSysctls(ifname string) []sysctl {
	return []sysctl{{[]string{"net", "ipv4", "conf", ifname, "rp_filter"}, rpLoose}}
}

// ensureSysctls writes each setting that differs, inside the node's namespace (/proc/sys/net is
// per namespace, resolved by the thread that opens it). Unchanged settings are not rewritten:
// writing ip_forward resets per-interface settings in some kernels.
func (n *Node) ensureSysctls(want []sysctl) (changed []string, err error) {
	err = n.netns.Do(func(ns.NetNS) error {
		for _, s := range want {
			cur, err := readSysctl(s)
			if err != nil {
				return err
			}
			if cur == s.value {
				continue
			}
			if err := os.WriteFile(sysctlPath(s), []byte(s.value), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", s.Name(), s.value, err)
			}
			changed = append(changed, s.Name()+"="+s.value)
		}
		return nil
	})
	return changed, err
}

// readSysctls returns the current values, by dotted name.
func (n *Node) readSysctls(want []sysctl) (map[string]string, error) {
	out := make(map[string]string, len(want))
	err := n.netns.Do(func(ns.NetNS) error {
		for _, s := range want {
			v, err := readSysctl(s)
			if err != nil {
				return err
			}
			out[s.Name()] = v
		}
		return nil
	})
	return out, err
}

func readSysctl(s sysctl) (string, error) {
	b, err := os.ReadFile(sysctlPath(s))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", s.Name(), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func sysctlPath(s sysctl) string {
	return filepath.Join(append([]string{"/proc/sys"}, s.path...)...)
}
