// Command flatnet-ipamd is the per-node IPAM daemon: flags -> ipamd.Config -> ipamd.New -> Run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/provider"
	fcdriver "github.com/flatnet/flatnet/ipamd/provider/fakeclouddriver"
)

// clouds are the drivers this binary carries (docs/providers.md).
var clouds = provider.Registry{fcdriver.Name: fcdriver.New}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flatnet-ipamd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("flatnet-ipamd", flag.ContinueOnError)
	cfg := ipamd.Flags(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := ipamd.New(ctx, *cfg, ipamd.Deps{Clouds: clouds})
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
