//go:build flatnetfaults

package cni

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// ErrInjected is the error an injected fault returns.
var ErrInjected = fmt.Errorf("injected failure (%s)", FaultEnv)

func fault(step string) error {
	if slices.Contains(strings.Split(os.Getenv(FaultEnv), ","), step) {
		return fmt.Errorf("step %s: %w", step, ErrInjected)
	}
	return nil
}
