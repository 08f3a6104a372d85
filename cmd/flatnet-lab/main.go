// Command flatnet-lab runs flatnet on one machine without Docker: fakecloud with its netns
// fabric, ipamd on every node, pods wired by the CNI plugin. It needs root.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flatnet/flatnet/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:           "flatnet-lab",
		Short:         "A multi-node VPC on network namespaces: fakecloud, ipamd per node, pods through the CNI plugin (root)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&dir, "dir", "/run/flatnet-lab", "the lab's directory (state, logs, sockets)")
	root.AddCommand(newUpCmd(&dir), newDownCmd(&dir), newStatusCmd(&dir), newPodCmd(&dir), newDemoCmd(&dir), newAgentCmd())
	return root
}

// withLock runs fn holding the lab directory's lock.
func withLock(dir string, fn func() error) error {
	unlock, err := lab.Lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// locked runs fn holding the lab's lock, with the lab loaded.
func locked(dir string, fn func(*lab.Lab) error) error {
	return withLock(dir, func() error {
		l, err := lab.Open(dir)
		if err != nil {
			return err
		}
		return fn(l)
	})
}

func newUpCmd(dir *string) *cobra.Command {
	cfg := lab.Config{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring a lab up (an earlier one in the same directory is removed first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLock(*dir, func() error {
				cfg.Dir, cfg.Log = *dir, cmd.OutOrStdout()
				l, err := lab.Up(cmd.Context(), cfg)
				if err != nil {
					return err
				}
				return l.PrintStatus(cmd.Context(), cmd.OutOrStdout())
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Nodes, "nodes", 3, "number of nodes")
	f.StringVar(&cfg.InstanceType, "instance-type", "m5.large", "instance type of the nodes")
	f.BoolVar(&cfg.PrefixMode, "prefix-mode", false, "ipamd leases /28 prefixes instead of single addresses")
	f.StringVar(&cfg.BinDir, "bin-dir", "", "where fakecloud, flatnet-ipamd and flatnet-cni are (default: beside flatnet-lab)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7480", "fakecloud's API address on loopback")
	f.StringSliceVar(&cfg.IpamdArgs, "ipamd-arg", nil, "extra flag for every ipamd (repeatable)")
	f.StringArrayVar(&cfg.NodeAgentArgs, "node-agent-arg", nil, "extra flag for every node agent, with --kubernetes (repeatable; e.g. --node-agent-arg=--image-binary=REPO=PATH)")
	f.StringVar(&cfg.Cloud, "cloud", lab.CloudFakecloud, "how ipamd and lbcontroller reach fakecloud: "+lab.CloudFakecloud+" (its own API) or "+lab.CloudAWSAPI+" (the AWS driver on its EC2/ELBv2 endpoint)")
	f.BoolVar(&cfg.Kubernetes, "kubernetes", false, "also run a Kubernetes control plane on an instance of its own (needs make k8s-bins)")
	f.StringVar(&cfg.K8sBinDir, "k8s-bin-dir", "", "where etcd, kube-* and kubectl are (default $"+lab.K8sBinDirEnv+"; make k8s-bins prints it)")
	f.StringVar(&cfg.APIServerListen, "apiserver-listen", "127.0.0.1:6443", "loopback address of the port-forward to the API server (with --kubernetes)")
	return cmd
}

func newDownCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the lab: pods, processes, namespaces and files (safe to run any time)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLock(*dir, func() error {
				if err := lab.Down(*dir, "", cmd.OutOrStdout()); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "lab down")
				return nil
			})
		},
	}
}

func newStatusCmd(dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show nodes, interfaces, pool sizes and pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return locked(*dir, func(l *lab.Lab) error { return l.PrintStatus(cmd.Context(), cmd.OutOrStdout()) })
		},
	}
}

func newPodCmd(dir *string) *cobra.Command {
	cmd := &cobra.Command{Use: "pod", Short: "Create, delete, check and list pods"}
	var node string
	add := &cobra.Command{
		Use:   "add NAME --node NODE",
		Short: "Create a pod: a namespace wired by the CNI plugin, running an echo agent on port 8080",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return locked(*dir, func(l *lab.Lab) error {
				p, err := l.AddPod(cmd.Context(), args[0], node)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pod %s on %s: %s\n", p.Name, p.Node, p.IP)
				return nil
			})
		},
	}
	add.Flags().StringVar(&node, "node", "node-1", "node to run the pod on")
	del := &cobra.Command{
		Use:   "del NAME...",
		Short: "Delete pods (CNI DEL, then the namespace)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return locked(*dir, func(l *lab.Lab) error {
				for _, name := range args {
					if err := l.DelPod(cmd.Context(), name); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "pod %s deleted\n", name)
				}
				return nil
			})
		},
	}
	check := &cobra.Command{
		Use:   "check NAME",
		Short: "Run CNI CHECK on a pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return locked(*dir, func(l *lab.Lab) error {
				if err := l.CheckPod(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pod %s: CHECK passed\n", args[0])
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return locked(*dir, func(l *lab.Lab) error {
				for _, p := range l.State().Pods {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", p.Name, p.Node, p.IP)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, del, check, list)
	return cmd
}

func newDemoCmd(dir *string) *cobra.Command {
	opts := lab.DemoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Bring up a 3-node lab, show pods with VPC addresses reaching each other, then tear down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withLock(*dir, func() error {
				opts.Dir, opts.Out = *dir, cmd.OutOrStdout()
				return lab.Demo(cmd.Context(), opts)
			})
		},
	}
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "leave the lab running afterwards (flatnet-lab down removes it)")
	cmd.Flags().StringVar(&opts.BinDir, "bin-dir", "", "where the binaries are (default: beside flatnet-lab)")
	cmd.Flags().BoolVar(&opts.Kubernetes, "kubernetes", true, "also run the Kubernetes cluster part (needs make k8s-bins; --kubernetes=false for the network proofs only)")
	cmd.Flags().StringVar(&opts.K8sBinDir, "k8s-bin-dir", "", "directory of etcd, kube-* and kubectl (default $"+lab.K8sBinDirEnv+")")
	cmd.Flags().StringVar(&opts.APIServerListen, "apiserver-listen", "127.0.0.1:6443", "loopback address of the port-forward to the API server")
	cmd.Flags().StringVar(&opts.Cloud, "cloud", lab.CloudFakecloud, "how ipamd and lbcontroller reach fakecloud: "+lab.CloudFakecloud+" (its own API) or "+lab.CloudAWSAPI+" (the AWS driver on its EC2/ELBv2 endpoint)")
	return cmd
}

// newAgentCmd holds the programs the lab runs inside pods, and its helpers on the host.
func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Programs the lab runs inside pods and on the host", Hidden: true}
	var name, listen string
	echo := &cobra.Command{
		Use:   "echo",
		Short: "Answer HTTP requests with the agent's name and the addresses it sees",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return lab.RunEcho(cmd.Context(), name, listen)
		},
	}
	echo.Flags().StringVar(&name, "name", "", "name to report")
	echo.Flags().StringVar(&listen, "listen", ":8080", "address to listen on")
	var netns, pfListen, target string
	pf := &cobra.Command{
		Use:   "port-forward --netns NS --listen 127.0.0.1:PORT --target IP:PORT",
		Short: "Relay a loopback port of the host to an address dialed from inside a lab namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return lab.RunPortForward(cmd.Context(), log, netns, pfListen, target)
		},
	}
	pf.Flags().StringVar(&netns, "netns", "", "namespace to dial the target from")
	pf.Flags().StringVar(&pfListen, "listen", "", "loopback address to listen on")
	pf.Flags().StringVar(&target, "target", "", "address to dial inside the namespace")
	for _, f := range []string{"netns", "listen", "target"} {
		_ = pf.MarkFlagRequired(f)
	}
	cmd.AddCommand(echo, pf)
	return cmd
}
