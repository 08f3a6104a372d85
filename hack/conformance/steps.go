package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/flatnet/flatnet"
	"github.com/flatnet/flatnet/lab"
	"github.com/flatnet/flatnet/test/conformance"
)

// The namespaces of the suite's base manifests.
var baseNamespaces = []string{"gateway-conformance-infra", "gateway-conformance-app-backend", "gateway-conformance-web-backend"}

// checkGatewayAPI checks what the chart installs for the suite: the Gateway API CRDs and the
// GatewayClass of flatnet's controller.
func checkGatewayAPI(ctx context.Context, l *lab.Lab) error {
	if _, err := l.Kubectl(ctx, "get", "crd", "gatewayclasses.gateway.networking.k8s.io"); err != nil {
		return fmt.Errorf("the chart installed no Gateway API CRDs (charts/flatnet/crds): %w", err)
	}
	out, err := l.Kubectl(ctx, "get", "gatewayclass", gatewayClass, "-o", "jsonpath={.spec.controllerName}")
	if err != nil {
		return fmt.Errorf("the chart made no GatewayClass %s (lbcontroller.gatewayAPI.gatewayClassName): %w", gatewayClass, err)
	}
	if got := strings.TrimSpace(string(out)); got != controllerName {
		return fmt.Errorf("GatewayClass %s has controllerName %q, want %s", gatewayClass, got, controllerName)
	}
	fmt.Printf("the chart installed the Gateway API CRDs and GatewayClass %s (%s)\n", gatewayClass, controllerName)
	return nil
}

// experimentalCRDs replaces the chart's standard-channel Gateway API CRDs with those of the
// experimental channel of the same version, in dir (the CRDs only: not the bundle's admission
// policy), and waits until they serve. The chart keeps the standard channel for its users
// (docs/gateway.md says how to switch).
func experimentalCRDs(ctx context.Context, l *lab.Lab, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	args := []string{"apply", "--server-side", "--force-conflicts"}
	for _, f := range files {
		if b := filepath.Base(f); b == "kustomization.yaml" || strings.Contains(b, "_vap_") {
			continue
		}
		args = append(args, "-f", f)
	}
	if len(args) == 3 {
		return fmt.Errorf("no Gateway API CRDs in %s", dir)
	}
	if _, err := l.Kubectl(ctx, args...); err != nil {
		return fmt.Errorf("apply the experimental channel's CRDs: %w", err)
	}
	if _, err := l.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		return fmt.Errorf("the experimental channel's CRDs do not serve: %w", err)
	}
	fmt.Printf("the experimental channel's Gateway API CRDs replace the chart's (%d files from %s)\n", len(args)/2-1, dir)
	return nil
}

// backendsReady applies the suite's base manifests (as the suite will again) and waits until
// their pods are Ready, so that a node agent that cannot run the backends shows here rather
// than as a setup timeout of the suite. Pods mounting a Secret that does not exist yet are left
// out: the suite creates those certificates itself, and one made here would be kept by it.
func backendsReady(ctx context.Context, l *lab.Lab, o options) error {
	raw, err := os.ReadFile(o.baseManifests)
	if err != nil {
		return fmt.Errorf("the suite's base manifests: %w", err)
	}
	path := filepath.Join(o.logs, "base-manifests.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(raw), "{GATEWAY_CLASS_NAME}", gatewayClass)), 0o644); err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, "apply", "-f", path); err != nil {
		return fmt.Errorf("apply the suite's base manifests: %w", err)
	}
	kc, err := l.Kube()
	if err != nil {
		return err
	}
	start := time.Now()
	deadline := start.Add(o.backendsTimeout)
	for {
		ready, waiting, notReady, err := podsReady(ctx, kc.CoreV1())
		if err == nil && len(notReady) == 0 && len(ready) > 0 {
			fmt.Printf("%d pods Ready after %s: %s\n", len(ready), time.Since(start).Round(time.Second), strings.Join(ready, " "))
			if len(waiting) > 0 {
				fmt.Printf("%d wait for the certificate Secrets the suite creates: %s\n", len(waiting), strings.Join(waiting, " "))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the base manifests' pods are not Ready after %s: %s (err %w); see pods.txt, events.txt and the node agents' logs", o.backendsTimeout, strings.Join(notReady, "; "), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// podsReady sorts the base namespaces' pods: Ready, waiting for a Secret that does not exist,
// and not Ready (with why).
func podsReady(ctx context.Context, core typedcorev1.CoreV1Interface) (ready, waiting, notReady []string, err error) {
	for _, ns := range baseNamespaces {
		pods, err := core.Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, nil, err
		}
		for _, p := range pods.Items {
			name := ns + "/" + p.Name
			switch {
			case isReady(&p):
				ready = append(ready, name)
			case missingSecret(ctx, core, &p):
				waiting = append(waiting, name)
			default:
				notReady = append(notReady, fmt.Sprintf("%s (%s)", name, why(&p)))
			}
		}
	}
	return ready, waiting, notReady, nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func missingSecret(ctx context.Context, core typedcorev1.CoreV1Interface, p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if _, err := core.Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return true
		}
	}
	return false
}

// why is a pod's state in a few words: its phase and its containers' waiting reasons.
func why(p *corev1.Pod) string {
	parts := []string{string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			parts = append(parts, cs.Name+": "+w.Reason+" "+w.Message)
		}
	}
	return strings.Join(parts, ", ")
}

// The addresses GatewayStaticAddresses is run with: fakecloud's public pool is 198.51.100.0/24,
// handed out from the bottom; 203.0.113.0/24 (TEST-NET-3) is no address of the lab's.
const (
	staticUsable   = "198.51.100.250"
	staticUnusable = "203.0.113.250"
)

// runSuite runs the suite's test binary inside the lab's internet namespace with the lab's
// in-VPC kubeconfig (the internet routes to the VPC, so the API server's VPC address answers
// there, as do the Gateways' addresses). Its whole output goes to suite.log; the test results
// are echoed.
func runSuite(ctx context.Context, l *lab.Lab, o options, claims conformance.Claims, reportPath string) error {
	cp, _ := l.ControlPlane()
	args := []string{"-test.v", "-test.timeout", o.suiteTimeout.String(), "-test.run", "^TestConformance$",
		"-gateway-class", gatewayClass,
		"-conformance-profiles", claims.SuiteProfiles(),
		"-supported-features", claims.SupportedFeatures(),
		"-report-output", reportPath,
		// GatewayStaticAddresses: a free address of fakecloud's public pool (the Gateways the
		// suite creates take the lowest ones), and one outside it.
		"-usable-address", staticUsable, "-unusable-address", staticUnusable,
		"-organization", "flatnet", "-project", "flatnet", "-url", "https://github.com/flatnet/flatnet",
		"-version", "v" + strings.TrimPrefix(flatnet.Version, "v"), "-contact", "https://github.com/flatnet/flatnet/issues",
	}
	if o.runTest != "" {
		args = append(args, "-run-test", o.runTest)
	}
	if o.keep {
		args = append(args, "-cleanup-base-resources=false")
	}
	args = append(args, o.suiteArgs...)
	logPath := filepath.Join(o.logs, "suite.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, o.suite, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.VPCKubeconfig)
	cmd.Dir = o.logs
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	fmt.Printf("%s %s\n(in namespace %s, KUBECONFIG=%s; whole output in %s)\n", o.suite, strings.Join(args, " "), l.InternetNetns(), cp.VPCKubeconfig, logPath)
	if err := lab.StartInNetns(l.InternetNetns(), cmd); err != nil {
		return fmt.Errorf("start the suite: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		echoResults(io.TeeReader(pr, logf), os.Stdout)
	}()
	err = cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("the suite: %w (see %s)", err, logPath)
	}
	return nil
}

// echoResults copies the lines of the suite's output that say how a test ended.
func echoResults(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "Test Setup") || strings.HasPrefix(line, "FAIL") ||
			strings.HasPrefix(line, "PASS") || strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "panic:") {
			fmt.Fprintln(w, line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// judge reads the report, writes the README's summary (a whole run only) and says whether the
// claims hold.
func judge(o options, claims conformance.Claims, reportPath string, suiteErr error) error {
	report, err := conformance.ReadReport(reportPath)
	if err != nil {
		return errors.Join(suiteErr, err)
	}
	readmeDir, _ := filepath.Abs(filepath.Dir(o.readme))
	rel, err := filepath.Rel(readmeDir, reportPath)
	if err != nil {
		rel = reportPath
	}
	table := conformance.SummaryTable(report, claims, rel)
	fmt.Print("\n" + table + "\n")
	if o.runTest == "" {
		doc, err := os.ReadFile(o.readme)
		if err != nil {
			return err
		}
		out, err := conformance.ReplaceSection(string(doc), table)
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.readme, []byte(out), 0o644); err != nil {
			return err
		}
		fmt.Printf("report: %s; summary written to %s\n", reportPath, o.readme)
	}
	if v := conformance.Verdict(report, claims, o.runTest); len(v) > 0 {
		return fmt.Errorf("claimed tests failed:\n  %s", strings.Join(v, "\n  "))
	}
	if suiteErr != nil {
		fmt.Printf("every claimed test passed; the suite still exited with an error, from tests outside the claims (reported profiles): %v\n", suiteErr)
	}
	return nil
}

// collectLogs copies what the lab's directory holds before it goes: every log (container logs
// named by pod), and the cluster's pods, events and Gateway API objects.
func collectLogs(ctx context.Context, l *lab.Lab, labDir, dst string) error {
	for name, args := range map[string][]string{
		"pods.txt":         {"get", "pods", "-A", "-o", "wide"},
		"events.txt":       {"get", "events", "-A", "--sort-by=.lastTimestamp"},
		"gateway-api.yaml": {"get", "gatewayclasses,gateways,httproutes,grpcroutes,tlsroutes,referencegrants", "-A", "-o", "yaml"},
	} {
		out, err := l.Kubectl(ctx, args...)
		if err != nil {
			out = append(out, []byte("\n"+err.Error()+"\n")...)
		}
		if err := os.WriteFile(filepath.Join(dst, name), out, 0o644); err != nil {
			return err
		}
	}
	pods := sandboxPods(labDir)
	return filepath.WalkDir(labDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return err
		}
		rel, _ := filepath.Rel(labDir, p)
		target := filepath.Join(dst, "lab", rel)
		if id, ctr, ok := strings.Cut(strings.TrimSuffix(d.Name(), ".log"), "_"); ok && pods[id] != "" {
			target = filepath.Join(dst, "pods", pods[id]+"_"+ctr+".log")
		}
		return copyFile(p, target)
	})
}

// sandboxPods maps the node agents' sandbox IDs to namespace_pod, from their records.
func sandboxPods(labDir string) map[string]string {
	out := map[string]string{}
	records, _ := filepath.Glob(filepath.Join(labDir, "nodes", "*", "node-agent", "sandboxes", "*.json"))
	for _, r := range records {
		raw, err := os.ReadFile(r)
		if err != nil {
			continue
		}
		var rec struct{ ID, Namespace, Name string }
		if json.Unmarshal(raw, &rec) == nil && rec.ID != "" {
			out[rec.ID] = rec.Namespace + "_" + rec.Name
		}
	}
	return out
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
