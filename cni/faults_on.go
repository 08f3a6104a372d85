//go:build flatnetfaults

package cni

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// FaultEnv names the ADD steps to fail, comma-separated: link, route, rule, addr, neigh,
// default-route, result. It is honoured only by a binary built with -tags flatnetfaults, as the
// tests build theirs; the release binary ignores it (faults_off.go).
const FaultEnv = "FLATNET_CNI_FAULT"

// ErrInjected is the error an injected fault returns.
var ErrInjected = fmt.Errorf("injected failure (%s)", FaultEnv)

func fault(step string) error {
	if slices.Contains(strings.Split(os.Getenv(FaultEnv), ","), step) {
		return fmt.Errorf("step %s: %w", step, ErrInjected)
	}
	return nil
}
