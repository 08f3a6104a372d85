package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flatnet/flatnet/fakecloud/api"
	"github.com/flatnet/flatnet/fakecloud/fabric"
)

// Fabric modes of `fakecloud serve --fabric`.
const (
	fabricNone  = "none"
	fabricNetns = "netns"
)

// fabricOptions are serve's flags for the VPC data plane.
type fabricOptions struct {
	mode               string
	prefix             string
	mtu                int
	teardown           bool
	attach             attachFlag
	attachDefaultRoute bool
	lbBusyPoll         time.Duration
	accessLogDir       string
	accessLogMaxBytes  int64
	accessLogKeep      int
	// fab is the running fabric (nil with --fabric none), whose attachments serve reports.
	fab *fabric.Fabric
}

func (o *fabricOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.mode, "fabric", fabricNone, "VPC data plane: none, or netns (a router namespace per VPC, a namespace per instance; needs root)")
	f.StringVar(&o.prefix, "fabric-prefix", fabric.DefaultPrefix, "name prefix of the fabric's network namespaces")
	f.IntVar(&o.mtu, "fabric-mtu", 0, "MTU of the fabric's links (0: the fabric's default)")
	f.BoolVar(&o.teardown, "fabric-teardown", false, "remove every namespace and link of the fabric on exit (default: keep them for the next start to adopt)")
	f.DurationVar(&o.lbBusyPoll, "fabric-lb-busy-poll", fabric.DefaultLBBusyPoll, "how long the process's network poller busy-polls "+
		"(the application load balancers' links, whose traffic it serves) before it sleeps, as a cloud's load balancer never sleeps "+
		"(needs Linux 6.9; at most 1s; 0: never, the engines sleep as any process does)")
	f.Var(&o.attach, "fabric-attach", "make the node of instance NAME (its ID, primary IP or Name tag) the existing network namespace at PATH "+
		"(/proc/<pid>/ns/net of a container's process, or a bind mount) instead of a namespace of the fabric's: its interfaces go in as vpc<N>, "+
		"the VPC, metadata service and public VIPs are routed through them, the namespace's default route stays, and the fabric never deletes it "+
		"(repeatable; needs --fabric netns; see `fakecloud fabric attachments`)")
	f.StringVar(&o.accessLogDir, "fabric-access-log-dir", "", "directory of the access logs of application load balancers whose "+
		"access_logs.enabled attribute is true: one file of JSON lines each, <load balancer ID>.log (default: the lines go to fakecloud's log); "+
		"SIGHUP reopens the files, after an outside rotation moved them")
	f.Int64Var(&o.accessLogMaxBytes, "fabric-access-log-max-bytes", fabric.DefaultAccessLogMaxBytes, "size past which an access-log file is rotated "+
		"to <file>.1, the older ones moving up (0: never)")
	f.IntVar(&o.accessLogKeep, "fabric-access-log-keep", fabric.DefaultAccessLogKeep, "rotated access-log files kept (0: none, the file is truncated)")
	f.BoolVar(&o.attachDefaultRoute, "fabric-attach-default-route", false, "also route everything else of attached namespaces through the VPC "+
		"(0.0.0.0/1 and 128.0.0.0/1, which beat their own default route while attached and leave it in place)")
}

// orNever is a flag's 0 ("never", "none") as the fabric's Config says it: -1 (its 0 is the
// default).
func orNever(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// attachFlag is --fabric-attach NAME=PATH, checked as it is parsed: a mistake stops serve
// before anything starts.
type attachFlag []fabric.Attachment

func (a *attachFlag) String() string {
	out := make([]string, len(*a))
	for i, at := range *a {
		out[i] = at.Name + "=" + at.Netns
	}
	return strings.Join(out, ",")
}

func (a *attachFlag) Set(s string) error {
	at, err := fabric.ParseAttachment(s)
	if err != nil {
		return err
	}
	*a = append(*a, at)
	return nil
}

func (a *attachFlag) Type() string { return "NAME=PATH" }

// controlPlane is what the fabric follows and reports to: *state.Store in-process.
type controlPlane interface {
	fabric.Source
	fabric.HealthReporter
	fabric.LBStateReporter
	fabric.CertificateSource
}

// apiServer is the API the fabric serves inside each VPC, whose fault injection also reaches
// the data plane's operations.
type apiServer interface {
	http.Handler
	fabric.FaultInjector
}

// start runs the fabric in the background until ctx ends or stop is called. It follows st and
// reports its load balancers' state and their targets' health to it.
func (o *fabricOptions) start(ctx context.Context, st controlPlane, srv apiServer, log *slog.Logger, reg prometheus.Registerer) (func(), error) {
	switch o.mode {
	case fabricNone:
		if len(o.attach) > 0 || o.attachDefaultRoute {
			return nil, errors.New("--fabric-attach needs the fabric: add --fabric netns")
		}
		return func() {}, nil
	case fabricNetns:
	default:
		return nil, fmt.Errorf("--fabric %q: use none or netns", o.mode)
	}
	if o.accessLogMaxBytes < 0 || o.accessLogKeep < 0 || o.accessLogKeep > 1000 {
		return nil, fmt.Errorf("--fabric-access-log-max-bytes %d, --fabric-access-log-keep %d: want 0 or more, and at most 1000 files kept",
			o.accessLogMaxBytes, o.accessLogKeep)
	}
	if fabric.CheckLBBusyPoll(o.lbBusyPoll) != nil { // negative values too
		return nil, fmt.Errorf("--fabric-lb-busy-poll %v: want 0 (never) or from 1µs to %v", o.lbBusyPoll, fabric.MaxLBBusyPoll)
	}
	lbBusyPoll := o.lbBusyPoll
	if lbBusyPoll == 0 {
		lbBusyPoll = -1 // the fabric's "never"
	}
	attach := slices.Clone([]fabric.Attachment(o.attach))
	for i := range attach {
		attach[i].DefaultRoute = o.attachDefaultRoute
	}
	fab, err := fabric.New(fabric.Config{
		Source: st, APIHandler: srv, Registerer: reg, Logger: log.With("component", "fabric"),
		Prefix: o.prefix, MTU: o.mtu, TeardownOnExit: o.teardown, Health: st, LBStates: st, Faults: srv, Certificates: st,
		Attach: attach, LBBusyPoll: lbBusyPoll, AccessLogDir: o.accessLogDir, AccessLogMaxBytes: orNever(o.accessLogMaxBytes),
		AccessLogKeep: int(orNever(int64(o.accessLogKeep))),
	})
	if err != nil {
		return nil, fmt.Errorf("start the fabric: %w", err)
	}
	o.fab = fab
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := fab.Run(ctx); err != nil {
			log.Error("fabric stopped", "err", err)
		}
	})
	if o.accessLogDir != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		wg.Go(func() {
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := fab.ReopenAccessLogs(); err != nil {
						log.Error("SIGHUP: reopening the access logs", "err", err)
					} else {
						log.Info("SIGHUP: access logs reopened", "dir", o.accessLogDir)
					}
				}
			}
		})
	}
	log.Info("fabric running", "prefix", o.prefix, "api_in_vpc", fabric.APIEndpoint(), "metadata", "http://"+fabric.MetadataAddr,
		"attachments", len(attach))
	return func() { cancel(); wg.Wait() }, nil
}

func newFabricCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "fabric", Short: "Inspect or remove the VPC data plane (network namespaces)"}
	prefix := fabric.DefaultPrefix
	cmd.PersistentFlags().StringVar(&prefix, "prefix", fabric.DefaultPrefix, "name prefix of the fabric's namespaces")
	show := &cobra.Command{
		Use:   "show",
		Short: "Print each VPC router's table: address or prefix -> interface -> instance -> device, and its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var snap *api.Snapshot
			if c, err := g.client(); err == nil {
				if r, err := c.GetSnapshot(cmd.Context(), &api.GetSnapshotRequest{}); err == nil {
					snap = &r.Snapshot
				} else {
					fmt.Fprintf(g.stderr, "note: no snapshot from %s (%v); showing the kernel's view only\n", g.endpoint, err)
				}
			}
			return fabric.Show(g.stdout, prefix, snap)
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace and link the fabric made (also after a crash)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := fabric.Down(prefix); err != nil {
				return fmt.Errorf("fabric down: %w", err)
			}
			fmt.Fprintf(g.stdout, "fabric namespaces with prefix %q removed\n", prefix)
			return nil
		},
	}
	cmd.AddCommand(show, down, newAttachmentsCmd(g))
	return cmd
}
