package lab

import (
	"context"
	"fmt"
	"time"
)

// poll calls check every interval until it says done, ctx ends, or timeout passes. check says
// what it saw last; the timeout's error quotes it.
func poll(ctx context.Context, timeout, interval time.Duration, check func() (done bool, saw string)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, saw := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %s", timeout, saw)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
