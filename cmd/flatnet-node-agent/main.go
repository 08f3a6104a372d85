// Command flatnet-node-agent is the lab's stand-in for the kubelet: it registers its Node and runs
// the Pods bound to it as network namespaces wired by the CNI plugin, with processes inside.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/nodeagent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flatnet-node-agent:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "flatnet-node-agent",
		Short:         "The lab's kubelet stand-in: a Node, and its Pods as network namespaces wired through the CNI plugin (root)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newContainerCmd(), newContainerLogCmd(), newEchoCmd())
	return root
}

func newRunCmd() *cobra.Command {
	var level string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Register the node and run its pods until SIGTERM (pods keep running; the next run adopts them)",
		Args:  cobra.NoArgs,
	}
	cfg := nodeagent.Flags(cmd.Flags())
	cmd.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
		a, err := nodeagent.New(*cfg)
		if err != nil {
			return err
		}
		return a.Run(cmd.Context())
	}
	return cmd
}

func newContainerCmd() *cobra.Command {
	var (
		l       nodeagent.Launch
		mounts  []string
		startFD int
	)
	cmd := &cobra.Command{
		Use:    "container [--netns FILE] [--rootfs DIR --mount SRC:DST[:ro]...] [--uid N --gid N --workdir D] -- PROGRAM [ARG...]",
		Short:  "Set up a container's namespace, root and identity and execute a program there (how the agent runs containers and CNI plugins)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			// The program gets SIGTERM as it would after exec (main's handler is for the
			// agent): a container stopped while held at its gate ends at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			for _, m := range mounts {
				mt, err := nodeagent.ParseMount(m)
				if err != nil {
					return err
				}
				l.Mounts = append(l.Mounts, mt)
			}
			if len(l.Mounts) > 0 && l.Rootfs == "" {
				return fmt.Errorf("--mount needs --rootfs")
			}
			l.Argv = args
			if startFD > 0 {
				if err := nodeagent.WaitStart(startFD); err != nil {
					return err
				}
			}
			return nodeagent.ContainerMain(l)
		},
	}
	f := cmd.Flags()
	f.StringVar(&l.Netns, "netns", "", "the pod's network namespace file, /run/netns/<name> (empty: the node's)")
	f.StringVar(&l.Rootfs, "rootfs", "", "the container's root directory (empty: the node's filesystem)")
	f.StringArrayVar(&mounts, "mount", nil, "bind mount SOURCE:TARGET[:ro] into the root (repeatable)")
	f.BoolVar(&l.ReadOnlyRoot, "read-only-root", false, "make the root read-only")
	f.IntVar(&l.UID, "uid", -1, "user ID to run as (-1: the agent's)")
	f.IntVar(&l.GID, "gid", -1, "group ID to run as (-1: the agent's)")
	f.IntSliceVar(&l.Groups, "group", nil, "supplementary group (repeatable)")
	f.StringVar(&l.Workdir, "workdir", "", "working directory inside the root")
	f.IntVar(&startFD, "start-fd", 0, "wait for one byte on this descriptor before anything else, and exit without running the program if it closes first (the agent's start gate)")
	return cmd
}

func newEchoCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "echo",
		Short:  "The flatnet.io/echo image's program: HTTP and UDP echo servers configured by the environment",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return nodeagent.EchoMain(cmd.Context(), slog.New(slog.NewJSONHandler(os.Stderr, nil)))
		},
	}
}

func newContainerLogCmd() *cobra.Command {
	var (
		path     string
		maxBytes int64
	)
	cmd := &cobra.Command{
		Use:    "container-log --path FILE --max-bytes N",
		Short:  "Write a container's stdout (fd 3) and stderr (fd 4) to its log as timestamped entries, rotating at the size cap (how the agent keeps container logs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if path == "" || maxBytes <= 0 {
				return fmt.Errorf("--path and a positive --max-bytes are required")
			}
			return nodeagent.LogWriterMain(path, maxBytes)
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "the container's log file")
	cmd.Flags().Int64Var(&maxBytes, "max-bytes", 0, "size at which the log moves to FILE.1")
	return cmd
}
