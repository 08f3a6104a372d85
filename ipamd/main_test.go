package ipamd_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/flatnet/flatnet/ipamd"
)

// daemonEnv makes the test binary run as the ipamd daemon (flags in its arguments), so crash
// tests kill -9 a real process built with the same flags as the test (race detector included).
const daemonEnv = "IPAMD_TEST_RUN_DAEMON"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) != "" {
		if err := daemonMain(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "ipamd daemon:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// daemonMain is cmd/flatnet-ipamd's run with the test's registry.
func daemonMain(args []string) error {
	fs := flag.NewFlagSet("ipamd", flag.ContinueOnError)
	config := ipamd.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config()
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d, err := ipamd.New(ctx, cfg, ipamd.Deps{Clouds: clouds})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
