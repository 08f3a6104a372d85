// Command conformance is make conformance (docs/conformance.md): it brings a lab up with
// Kubernetes and the chart (which installs lbcontroller, the Gateway API CRDs and the
// GatewayClass flatnet), checks them and that the suite's backends run, then runs the official
// Gateway API conformance suite inside the lab's internet namespace, where every Gateway's
// address is reachable. It writes the suite's report, puts a summary table in the README, keeps the logs,
// tears the lab down (also on failure, unless -keep) and exits non-zero when a claimed test
// failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/flatnet/flatnet/lab"
	"github.com/flatnet/flatnet/test/conformance"
)

// The GatewayClass the suite runs against, of flatnet's controller.
const (
	gatewayClass   = "flatnet"
	controllerName = "flatnet.io/gateway-controller"
)

// options are the command's flags.
type options struct {
	binDir, k8sBinDir             string
	suite, echoBasic, coredns     string
	claims, report, readme        string
	baseManifests                 string
	experimentalCRDs              string
	logs, labDir, prefix          string
	listen, apiserverListen       string
	runTest                       string
	suiteArgs                     stringList
	suiteTimeout, backendsTimeout time.Duration
	keep                          bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.StringVar(&o.binDir, "bin-dir", "bin", "flatnet's binaries (make build)")
	fs.StringVar(&o.k8sBinDir, "k8s-bin-dir", os.Getenv(lab.K8sBinDirEnv), "etcd, kube-* and kubectl (make k8s-bins)")
	fs.StringVar(&o.suite, "suite", "bin/conformance/conformance.test", "the suite's test binary (go test -c -tags conformance ./test/conformance)")
	fs.StringVar(&o.echoBasic, "echo-basic", "bin/conformance/echo-basic", "echo-basic built from sigs.k8s.io/gateway-api/conformance (static)")
	fs.StringVar(&o.coredns, "coredns", "bin/conformance/coredns", "the coredns stand-in, test/conformance/coredns (static)")
	fs.StringVar(&o.claims, "claims", "conformance/claims.yaml", "what flatnet claims")
	fs.StringVar(&o.report, "report", "conformance/reports/gateway-api-v1.6.3.yaml", "where the suite's report goes (a -run-test run writes it under -logs instead)")
	fs.StringVar(&o.readme, "readme", "README.md", "the README whose conformance section gets the summary (not on a -run-test run)")
	fs.StringVar(&o.experimentalCRDs, "experimental-crds", "", "the Gateway API module's config/crd/experimental: its CRDs replace the chart's standard channel before the suite "+
		"(the claimed retries are an experimental HTTPRoute field, and the suite wants one channel for every CRD)")
	fs.StringVar(&o.baseManifests, "base-manifests", "", "the suite's conformance/base/manifests.yaml, applied before the suite to check its backends run")
	fs.StringVar(&o.logs, "logs", "bin/conformance/logs", "where the suite's log and the lab's logs are kept (emptied first)")
	fs.StringVar(&o.labDir, "lab-dir", "/run/flatnet-conformance", "the lab's directory")
	fs.StringVar(&o.prefix, "prefix", "flc-", "the lab's namespace prefix")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7490", "fakecloud's API address on loopback")
	fs.StringVar(&o.apiserverListen, "apiserver-listen", "127.0.0.1:6490", "the API server's port-forward on loopback")
	fs.StringVar(&o.runTest, "run-test", "", "run one test of the suite by its short name (e.g. HTTPRouteSimpleSameNamespace)")
	fs.Var(&o.suiteArgs, "suite-arg", "extra flag for the suite, e.g. -suite-arg=-debug (repeatable)")
	fs.DurationVar(&o.suiteTimeout, "suite-timeout", 30*time.Minute, "the suite's -test.timeout")
	fs.DurationVar(&o.backendsTimeout, "backends-timeout", 5*time.Minute, "how long the base manifests' pods have to be Ready")
	fs.BoolVar(&o.keep, "keep", false, "leave the lab up afterwards (and the suite's base resources in place); flatnet-lab --dir LAB-DIR down removes it")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, p := range []*string{&o.binDir, &o.suite, &o.echoBasic, &o.coredns, &o.report, &o.logs} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return o, err
		}
		*p = abs
	}
	if o.k8sBinDir == "" {
		return o, fmt.Errorf("no Kubernetes binaries: run make k8s-bins and pass -k8s-bin-dir (or set %s)", lab.K8sBinDirEnv)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance: FAILED:", err)
		os.Exit(1)
	}
}

// phases prints how long each step took.
type phases struct {
	name  string
	start time.Time
	begin time.Time
}

func (p *phases) next(name string) {
	now := time.Now()
	if p.name != "" {
		fmt.Printf("::: conformance: %s took %s\n", p.name, now.Sub(p.start).Round(time.Second))
	} else {
		p.begin = now
	}
	p.name, p.start = name, now
	if name != "" {
		fmt.Printf("::: conformance: %s\n", name)
	}
}

func run(ctx context.Context, o options) (err error) {
	claims, err := conformance.LoadClaims(o.claims)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(o.logs); err != nil {
		return err
	}
	if err := os.MkdirAll(o.logs, 0o755); err != nil {
		return err
	}
	unlock, err := lab.Lock(o.labDir)
	if err != nil {
		return err
	}
	defer unlock()
	var ph phases
	defer func() {
		ph.next("")
		fmt.Printf("::: conformance: total %s; logs in %s\n", time.Since(ph.begin).Round(time.Second), o.logs)
	}()

	ph.next("lab up (fakecloud, control plane, 3 nodes, the chart)")
	l, err := lab.Up(ctx, lab.Config{
		Dir: o.labDir, Prefix: o.prefix, BinDir: o.binDir, Listen: o.listen,
		Kubernetes: true, K8sBinDir: o.k8sBinDir, APIServerListen: o.apiserverListen,
		NodeAgentArgs: []string{
			"--image-binary", "registry.k8s.io/gateway-api/echo-basic=" + o.echoBasic,
			"--image-binary", "registry.k8s.io/coredns/coredns=" + o.coredns,
		},
		Log: os.Stdout,
	})
	if err != nil {
		return fmt.Errorf("lab up: %w", err)
	}
	defer func() {
		// The lab's directory goes with it: its logs are copied out first.
		if cerr := collectLogs(context.WithoutCancel(ctx), l, o.labDir, o.logs); cerr != nil {
			fmt.Fprintln(os.Stderr, "conformance: collect the logs:", cerr)
		}
		if o.keep {
			cp, _ := l.ControlPlane()
			fmt.Printf("::: conformance: the lab stays up: kubectl --kubeconfig %s; remove it with %s --dir %s down\n",
				cp.Kubeconfig, filepath.Join(o.binDir, "flatnet-lab"), o.labDir)
			return
		}
		ph.next("lab down")
		if derr := lab.Down(o.labDir, o.prefix, os.Stdout); derr != nil {
			err = errors.Join(err, fmt.Errorf("lab down: %w", derr))
		}
	}()

	ph.next("the chart's Gateway API CRDs and GatewayClass")
	if err := checkGatewayAPI(ctx, l); err != nil {
		return err
	}
	if o.experimentalCRDs != "" {
		ph.next("the experimental channel's Gateway API CRDs")
		if err := experimentalCRDs(ctx, l, o.experimentalCRDs); err != nil {
			return err
		}
	}
	if o.baseManifests != "" {
		ph.next("the suite's backends (base manifests) Running and Ready")
		if err := backendsReady(ctx, l, o); err != nil {
			return err
		}
	}
	ph.next("the suite, in the lab's internet namespace")
	reportPath := o.report
	if o.runTest != "" {
		reportPath = filepath.Join(o.logs, "report.yaml")
	}
	suiteErr := runSuite(ctx, l, o, claims, reportPath)
	ph.next("the report")
	return judge(o, claims, reportPath, suiteErr)
}
