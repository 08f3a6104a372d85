// Command flatnet-ipamd is the per-node IPAM daemon: flags -> ipamd.Config -> ipamd.New -> Run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/kube"
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
	kubeconfig := fs.String("kubeconfig", "", "publish the node's address capacity, a condition and pod events through this kubeconfig (empty: no Kubernetes)")
	nodeName := fs.String("node-name", "", "this node's Kubernetes Node (required with --kubeconfig)")
	procs := fs.Int("max-procs", 1, "CPUs ipamd's Go code runs on at once (GOMAXPROCS); 0: Go's default (the CPUs the process may use)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *procs < 0 {
		return fmt.Errorf("--max-procs %d: want 0 or more", *procs)
	}
	if *procs > 0 {
		// ipamd spends a few hundred microseconds of CPU per pod and is otherwise idle. On one
		// P, a request's goroutines (accept, serve, hang-up watch) hand over without waking
		// another thread; on several, each handover can wake an idle CPU, which is what the tail
		// of an allocation's latency is made of (docs/benchmarks.md, issue 4).
		runtime.GOMAXPROCS(*procs)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	deps := ipamd.Deps{Clouds: clouds}
	var reporter *kube.Reporter
	if *kubeconfig != "" {
		r, err := kube.New(kube.Config{Kubeconfig: *kubeconfig, NodeName: *nodeName, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		reporter, deps.Observer = r, r
	} else if *nodeName != "" {
		return fmt.Errorf("--node-name %q needs --kubeconfig", *nodeName)
	}
	d, err := ipamd.New(ctx, *cfg, deps)
	if err != nil {
		return err
	}
	if reporter != nil {
		go reporter.Run(ctx)
	}
	return d.Run(ctx)
}
