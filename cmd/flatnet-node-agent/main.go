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
	root.AddCommand(newRunCmd(), newContainerCmd(), newEchoCmd())
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
	var netns string
	cmd := &cobra.Command{
		Use:    "container --netns FILE -- PROGRAM [ARG...]",
		Short:  "Enter a pod's network namespace and execute a program there (how the agent runs containers)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return nodeagent.ContainerMain(netns, args)
		},
	}
	cmd.Flags().StringVar(&netns, "netns", "", "the pod's network namespace file, /run/netns/<name> (required)")
	_ = cmd.MarkFlagRequired("netns")
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
