// Package failpoint makes a process exit at a named point of its code, as a crash there would:
// the soak uses it to kill ipamd and the CNI plugin inside each step of ADD and DEL.
//
// FLATNET_FAILPOINT=name or name=N arms one point: its Nth hit (the first by default) writes
// "failpoint name: exit" to stderr and exits with status 86, running no deferred function.
// Unarmed (production), Hit is one load and compare of a package variable set at start.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Env is the environment variable that arms a failpoint.
const Env = "FLATNET_FAILPOINT"

// ExitCode is the status a process exits with at its armed failpoint.
const ExitCode = 86

var (
	armed  string // the armed point's name; empty when none is
	nth    int64
	hits   atomic.Int64
	exitFn = os.Exit
)

func init() {
	if err := arm(os.Getenv(Env)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
}

// arm parses name or name=N.
func arm(v string) error {
	armed, nth = "", 0
	hits.Store(0)
	if v == "" {
		return nil
	}
	name, count, found := strings.Cut(v, "=")
	n := int64(1)
	if found {
		var err error
		n, err = strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%q: want name or name=N with N a positive number", v)
		}
	}
	if name == "" {
		return fmt.Errorf("%q: the failpoint has no name", v)
	}
	armed, nth = name, n
	return nil
}

// Hit exits the process when name is the armed point and this is its Nth hit.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	if hits.Add(1) == nth {
		fmt.Fprintf(os.Stderr, "failpoint %s: exit\n", name)
		exitFn(ExitCode)
	}
}
