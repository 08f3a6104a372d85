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
	"time"

	"k8s.io/client-go/rest"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/ipamd"
	"github.com/flatnet/flatnet/ipamd/kube"
	"github.com/flatnet/flatnet/providers/all"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flatnet-ipamd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "install-cni" {
		return installCNI(args[1:])
	}
	if len(args) > 0 && args[0] == "uninstall" {
		return uninstall(args[1:])
	}
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Println("flatnet-ipamd", flatnet.Version)
		return nil
	}
	fs := flag.NewFlagSet("flatnet-ipamd", flag.ContinueOnError)
	config := ipamd.Flags(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	kubeconfig := fs.String("kubeconfig", "", "publish the node's address capacity, a condition and pod events through this kubeconfig (empty with --node-name: the pod's service account)")
	nodeName := fs.String("node-name", "", "this node's Kubernetes Node: turns the Kubernetes side on (required with --kubeconfig)")
	daemonSet := fs.String("daemonset", "", "<namespace>/<name> of the DaemonSet running ipamd: when ipamd stops and it is gone or being deleted (uninstall), the conflist and the plugin are removed")
	hostPods := fs.Int("host-network-pods", 0, "added to the address capacity in the Node's published pods capacity: room for host-network pods, which take no address (ipamd's own DaemonSet pod is one)")
	cniBinDir := fs.String("cni-bin-dir", "", "where install-cni put the plugin; removed with the conflist at uninstall (see --daemonset)")
	procs := fs.Int("max-procs", 1, "CPUs ipamd's Go code runs on at once (GOMAXPROCS); 0: Go's default (the CPUs the process may use)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config()
	if err != nil {
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
	deps := ipamd.Deps{Clouds: all.Registry()} // the drivers this binary carries (docs/providers.md)
	var reporter *kube.Reporter
	var ds kube.DaemonSetRef
	if *daemonSet != "" {
		var err error
		if ds, err = kube.ParseDaemonSetRef(*daemonSet); err != nil {
			return err
		}
		if *nodeName == "" {
			return fmt.Errorf("--daemonset needs the Kubernetes side (--node-name)")
		}
	}
	if *kubeconfig != "" && *nodeName == "" {
		return fmt.Errorf("--kubeconfig %s needs --node-name", *kubeconfig)
	}
	var rc *rest.Config
	if *nodeName != "" {
		var err error
		if rc, err = kube.RestConfig(*kubeconfig); err != nil {
			return err
		}
		if *hostPods < 0 {
			return fmt.Errorf("--host-network-pods %d: want 0 or more", *hostPods)
		}
		r, err := kube.New(kube.Config{RestConfig: rc, NodeName: *nodeName, HostNetworkPods: *hostPods, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		reporter, deps.Observer = r, r
	}
	d, err := ipamd.New(ctx, cfg, deps)
	if err != nil {
		return err
	}
	if reporter != nil {
		go reporter.Run(ctx)
	}
	err = d.Run(ctx)
	if ds.Name != "" {
		uninstallIfDeleted(cfg.Logger, rc, ds, cfg.CNIConfDir, *cniBinDir)
	}
	return err
}

// uninstallIfDeleted removes the node's CNI configuration when ipamd stops because its
// DaemonSet is going away (helm uninstall); on a rolling update or a crash it is kept.
func uninstallIfDeleted(log *slog.Logger, rc *rest.Config, ds kube.DaemonSetRef, confDir, binDir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gone, err := kube.Uninstalling(ctx, rc, ds)
	if err != nil {
		// Unknown: keep the configuration. A node left with a conflist whose ipamd is gone
		// reports its network not ready (CNI STATUS), which is loud; a node whose conflist
		// vanished during an upgrade would drop pods.
		log.Warn("could not tell an uninstall from a restart: the CNI configuration stays", "daemonset", ds.Namespace+"/"+ds.Name, "err", err)
		return
	}
	if !gone {
		return
	}
	if err := ipamd.UninstallCNI(confDir, binDir); err != nil {
		log.Error("uninstall: remove the CNI configuration", "err", err)
		return
	}
	log.Info("uninstall: the DaemonSet is being deleted, CNI configuration removed", "conf-dir", confDir, "bin-dir", binDir)
}

// installCNI is the chart's init container: it copies the plugin from the image into the
// node's CNI plugin directory.
func installCNI(args []string) error {
	fs := flag.NewFlagSet("flatnet-ipamd install-cni", flag.ContinueOnError)
	plugin := fs.String("plugin", "/opt/cni/bin/"+ipamd.PluginName, "the plugin to install (in the image)")
	dir := fs.String("cni-bin-dir", "", "the node's CNI plugin directory (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("install-cni: --cni-bin-dir is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("install-cni: unexpected arguments %q", fs.Args())
	}
	dst, err := ipamd.InstallPlugin(*plugin, *dir)
	if err != nil {
		return err
	}
	fmt.Printf("installed %s (flatnet %s)\n", dst, flatnet.Version)
	return nil
}

// uninstall is the chart's pre-delete hook: it deletes ipamd's DaemonSet in the foreground and
// waits for its pods, while the release's RBAC still lets each ipamd see that it is being
// uninstalled (see kube.DeleteDaemonSet).
func uninstall(args []string) error {
	fs := flag.NewFlagSet("flatnet-ipamd uninstall", flag.ContinueOnError)
	daemonSet := fs.String("daemonset", "", "<namespace>/<name> of ipamd's DaemonSet (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig (empty: the pod's service account)")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for the DaemonSet's pods to stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ds, err := kube.ParseDaemonSetRef(*daemonSet)
	if err != nil {
		return err
	}
	rc, err := kube.RestConfig(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	if err := kube.DeleteDaemonSet(ctx, rc, ds, func() { time.Sleep(500 * time.Millisecond) }); err != nil {
		return err
	}
	fmt.Printf("uninstall: DaemonSet %s/%s and its pods are gone after %s; each node's CNI configuration went with its ipamd\n",
		ds.Namespace, ds.Name, time.Since(start).Round(time.Second))
	return nil
}
