package ipamd_test

import (
	"context"
	"testing"
	"time"

	"github.com/flatnet/flatnet/fakecloud/server/servertest"
	"github.com/flatnet/flatnet/ipamd"
)

// TestShutdownDuringCoalesce: the worker's wait for concurrent misses to gather ends with the
// daemon's context, however long the window.
func TestShutdownDuringCoalesce(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	n := newNode(t, env, "t3.small")
	cfg := n.config(t.TempDir())
	cfg.Coalesce = time.Hour
	cfg.AllocWait = 200 * time.Millisecond
	_, stop := startWith(t, cfg, ipamd.Deps{Clouds: clouds})
	_, _ = allocate(context.Background(), cfg.SocketPath, owner(1)) // kicks the worker into its window
	time.Sleep(100 * time.Millisecond)
	began := time.Now()
	stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Run returned %v after its context ended; want promptly", took)
	}
}
