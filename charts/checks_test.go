package charts_test

import (
	"encoding/base64"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// podSpec returns the pod template of a workload (DaemonSet, Deployment, Job), or nil.
func podSpec(t *testing.T, o object) *corev1.PodTemplateSpec {
	t.Helper()
	switch o.u.GetKind() {
	case "DaemonSet", "Deployment", "Job":
	default:
		return nil
	}
	raw, found, err := unstructuredMap(o, "spec", "template")
	if err != nil || !found {
		t.Fatalf("%s has no spec.template: %v", o, err)
	}
	var pt corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(raw, &pt, true); err != nil {
		t.Fatalf("%s: spec.template is no pod template: %v", o, err)
	}
	return &pt
}

func unstructuredMap(o object, path ...string) (map[string]any, bool, error) {
	v, found, err := nestedField(o.u.Object, path...)
	if err != nil || !found {
		return nil, found, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, true, fmt.Errorf("%s is a %T", strings.Join(path, "."), v)
	}
	return m, true, nil
}

func nestedField(obj map[string]any, path ...string) (any, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, fmt.Errorf("%s is not a map", p)
		}
		if cur, ok = m[p]; !ok {
			return nil, false, nil
		}
	}
	return cur, true, nil
}

// containers returns a workload's init containers and containers.
func containers(t *testing.T, o object) []corev1.Container {
	t.Helper()
	pt := podSpec(t, o)
	if pt == nil {
		return nil
	}
	return append(slices.Clone(pt.Spec.InitContainers), pt.Spec.Containers...)
}

// selector returns a workload's, PDB's, Service's or ServiceMonitor's selector as a map.
func selector(t *testing.T, o object) map[string]any {
	t.Helper()
	path := []string{"spec", "selector", "matchLabels"}
	if o.u.GetKind() == "Service" {
		path = []string{"spec", "selector"}
	}
	m, found, err := unstructuredMap(o, path...)
	if err != nil || !found {
		t.Fatalf("%s has no %s: %v", o, strings.Join(path, "."), err)
	}
	return m
}

var selectorKinds = []string{"DaemonSet", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"}

// Every container says what it runs: the image's entrypoint is not relied on (the lab's node agent
// runs images by their command, and an image change must not silently change what runs).
func TestEveryContainerHasACommand(t *testing.T) {
	ch := loadChart(t, chartDir)
	for _, set := range valueSets {
		for _, o := range objects(t, mustRender(t, ch, valuesOf(t, set))) {
			for _, c := range containers(t, o) {
				if len(c.Command) == 0 || !strings.HasPrefix(c.Command[0], "/usr/bin/flatnet-") {
					t.Errorf("%s: %s container %s: command %q, want the binary's absolute path", set, o, c.Name, c.Command)
				}
			}
		}
	}
}

// The cloud token reaches the controller as a file of a Secret only: it appears in no argument, no
// environment variable and no object but the Secret the chart makes of it.
func TestTokenOnlyInTheSecret(t *testing.T) {
	const token = "chart-test-token-9f8e7d6c"
	vals := valuesOf(t, "required")
	vals["cloud"].(map[string]any)["credentials"] = map[string]any{"token": token}
	ch := loadChart(t, chartDir)
	out := mustRender(t, ch, vals)
	encoded := base64.StdEncoding.EncodeToString([]byte(token))
	secrets := 0
	for _, o := range objects(t, out) {
		text := fmt.Sprint(o.u.Object)
		if isWebhookCert(o) {
			if strings.Contains(text, token) || strings.Contains(text, encoded) {
				t.Errorf("%s holds the token", o)
			}
			continue
		}
		if o.u.GetKind() == "Secret" {
			secrets++
			if data, _, _ := unstructuredMap(o, "data"); data["token"] != encoded {
				t.Errorf("%s: data.token is not the token", o)
			}
			continue
		}
		if strings.Contains(text, token) || strings.Contains(text, encoded) {
			t.Errorf("%s holds the token", o)
		}
		for _, c := range containers(t, o) {
			for _, a := range append(slices.Clone(c.Command), c.Args...) {
				if strings.Contains(strings.ToLower(a), "token") && !strings.HasPrefix(a, "--cloud-token-file=/") {
					t.Errorf("%s container %s: argument %q carries a token", o, c.Name, a)
				}
			}
			for _, e := range c.Env {
				if e.Value != "" {
					t.Errorf("%s container %s: env %s has a literal value; the chart passes only field references", o, c.Name, e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("%s container %s: env %s comes from a Secret: secrets are files", o, c.Name, e.Name)
				}
			}
		}
	}
	if secrets != 1 {
		t.Errorf("want the one credentials Secret, found %d", secrets)
	}
	if notes := out["flatnet/templates/NOTES.txt"]; strings.Contains(notes, token) {
		t.Error("NOTES.txt prints the token")
	}
	// With an existing Secret the chart makes none, and both pods mount it under the key given.
	objs := objects(t, mustRender(t, ch, valuesOf(t, "custom")))
	if s := slices.DeleteFunc(find(objs, "Secret"), isWebhookCert); len(s) != 0 {
		t.Errorf("cloud.credentials.existingSecret given, but the chart renders %v", s)
	}
	mounted := 0
	for _, o := range objs {
		pt := podSpec(t, o)
		if pt == nil {
			continue
		}
		for _, v := range pt.Spec.Volumes {
			if v.Secret == nil || v.Name == "webhook-tls" { // the webhook's serving certificate, not a credential
				continue
			}
			mounted++
			want := corev1.SecretVolumeSource{SecretName: "flatnet-cloud", Items: []corev1.KeyToPath{{Key: "account-token", Path: "token"}}, DefaultMode: ptr(int32(0o440))}
			if diff := cmp.Diff(want, *v.Secret); diff != "" {
				t.Errorf("%s: secret volume (-want +got):\n%s", o, diff)
			}
		}
	}
	if mounted != 2 {
		t.Errorf("the existing Secret is mounted %d times, want 2 (the controller and the uninstall Job)", mounted)
	}
}

func ptr[T any](v T) *T { return &v }

// isWebhookCert: the readiness-gate webhook's serving certificate, the one Secret besides the
// credentials.
func isWebhookCert(o object) bool {
	return o.u.GetKind() == "Secret" && strings.HasSuffix(o.u.GetName(), "-webhook-tls")
}

// ruleComment is the justification every RBAC rule carries on the line above it: the Go file and
// the function (or type) of the code that makes the calls, "# path/file.go Name: why".
var (
	ruleStart   = regexp.MustCompile(`^\s*- apiGroups:`)
	commentLine = regexp.MustCompile(`^\s*#\s*(.+)$`)
	codeRef     = regexp.MustCompile(`([a-z][\w/]*\.go) ([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)`)
)

// Every RBAC rule in the templates says, on the line above it, which code needs it, and that code
// exists: a rule whose code moved or went away fails here.
func TestEveryRBACRuleIsJustified(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	decls := map[string]map[string]bool{} // file -> names of its functions, methods and types
	declared := func(file, name string) (bool, error) {
		if decls[file] == nil {
			names, err := goDecls(filepath.Join(root, file))
			if err != nil {
				return false, err
			}
			decls[file] = names
		}
		_, last, _ := strings.Cut(name, ".")
		return decls[file][name] || (last != "" && decls[file][last]), nil
	}
	templates, err := filepath.Glob(filepath.Join(chartDir, "templates", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rulesInSource := 0
	for _, path := range templates {
		lines := strings.Split(string(rawTemplate(t, filepath.Base(path))), "\n")
		for i, line := range lines {
			if !ruleStart.MatchString(line) {
				continue
			}
			rulesInSource++
			where := fmt.Sprintf("%s:%d", path, i+1)
			m := commentLine.FindStringSubmatch(lines[max(i-1, 0)])
			if i == 0 || m == nil {
				t.Errorf("%s: the rule has no comment above it naming the code that needs it", where)
				continue
			}
			refs := codeRef.FindAllStringSubmatch(m[1], -1)
			if len(refs) == 0 {
				t.Errorf("%s: the rule's comment %q names no Go file and function (\"path/file.go Func: why\")", where, m[1])
			}
			for _, r := range refs {
				ok, err := declared(r[1], r[2])
				switch {
				case err != nil:
					t.Errorf("%s: the rule's comment names %s: %v", where, r[1], err)
				case !ok:
					t.Errorf("%s: the rule's comment names %s in %s, which declares no such function or type", where, r[2], r[1])
				}
			}
		}
	}
	// Every rule the chart renders is one of those lines (no rule comes from elsewhere, say a
	// flow-style list, unchecked).
	rendered := 0
	for _, o := range objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "required"))) {
		if k := o.u.GetKind(); k != "Role" && k != "ClusterRole" {
			continue
		}
		var role rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.u.Object, &role); err != nil {
			t.Fatal(err)
		}
		rendered += len(role.Rules)
		for _, r := range role.Rules {
			if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
				t.Errorf("%s: rule %+v uses a wildcard", o, r)
			}
		}
	}
	if rendered != rulesInSource || rendered == 0 {
		t.Errorf("the templates hold %d rules in '- apiGroups:' form, the chart renders %d", rulesInSource, rendered)
	}
}

// goDecls returns the names of a Go file's functions, methods (also as Type.Method) and types.
func goDecls(path string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			names[d.Name.Name] = true
			if d.Recv != nil && len(d.Recv.List) == 1 {
				typ := d.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					names[id.Name+"."+d.Name.Name] = true
				}
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					names[ts.Name.Name] = true
				}
			}
		}
	}
	return names, nil
}

// The conflist ipamd writes names the socket, spool and log by the paths ipamd sees, and the
// plugin reads them on the host: each of those directories is mounted at its host path.
func TestHostPathsMountedAtTheirOwnPath(t *testing.T) {
	ch := loadChart(t, chartDir)
	for _, set := range valueSets {
		objs := objects(t, mustRender(t, ch, valuesOf(t, set)))
		ds := one(t, objs, "DaemonSet", releaseName+"-ipamd")
		pt := podSpec(t, ds)
		hostPaths := map[string]string{}
		for _, v := range pt.Spec.Volumes {
			if v.HostPath != nil {
				hostPaths[v.Name] = v.HostPath.Path
			}
		}
		var ipamd *corev1.Container
		for i := range pt.Spec.Containers {
			if pt.Spec.Containers[i].Name == "ipamd" {
				ipamd = &pt.Spec.Containers[i]
			}
		}
		if ipamd == nil {
			t.Fatalf("%s: no ipamd container", set)
		}
		mounts := map[string]string{} // host path -> mount path
		for _, m := range ipamd.VolumeMounts {
			if hp, ok := hostPaths[m.Name]; ok {
				mounts[hp] = m.MountPath
			}
		}
		for _, dir := range []string{"/run/flatnet", "/var/lib/flatnet", "/var/log/flatnet"} {
			if got, ok := mounts[dir]; !ok || got != dir {
				t.Errorf("%s: host %s is mounted at %q in the ipamd container, want %s", set, dir, got, dir)
			}
		}
		for _, a := range ipamd.Args {
			for _, flag := range []string{"--socket=", "--state-dir=", "--spool-dir=", "--cni-log-file="} {
				p, ok := strings.CutPrefix(a, flag)
				if ok && !strings.HasPrefix(p, "/run/flatnet/") && !strings.HasPrefix(p, "/var/lib/flatnet/") && !strings.HasPrefix(p, "/var/log/flatnet/") {
					t.Errorf("%s: %s is not under a directory mounted at its host path", set, a)
				}
			}
		}
		cni := valuesOf(t, set)["cni"]
		binDir := "/opt/cni/bin"
		if m, ok := cni.(map[string]any); ok && m["binDir"] != nil {
			binDir = m["binDir"].(string)
		}
		if mounts[binDir] != "/host/opt/cni/bin" {
			t.Errorf("%s: the node's CNI plugin directory %s is mounted at %q, want /host/opt/cni/bin", set, binDir, mounts[binDir])
		}
	}
}

// ipamd's --mode resets the warm-pool watermarks to the mode's defaults, so it must come before
// --warm-low and --warm-high or it silently undoes them.
func TestIpamdModeBeforeWatermarks(t *testing.T) {
	objs := objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "custom")))
	pt := podSpec(t, one(t, objs, "DaemonSet", releaseName+"-ipamd"))
	args := pt.Spec.Containers[0].Args
	idx := func(prefix string) int {
		return slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, prefix) })
	}
	mode, low, high := idx("--mode="), idx("--warm-low="), idx("--warm-high=")
	if mode < 0 || low < 0 || high < 0 {
		t.Fatalf("custom values: want --mode, --warm-low and --warm-high in %q", args)
	}
	if mode > low || mode > high {
		t.Errorf("--mode comes after the watermarks in %q", args)
	}
	for _, want := range []string{"--mode=prefix", "--warm-low=16", "--warm-high=48", "--metrics-bind-address=127.0.0.1:61678", "--external-snat", "--state-sync=0"} {
		if !slices.Contains(args, want) {
			t.Errorf("custom values: %s missing from %q", want, args)
		}
	}
	if i := idx("--state-sync="); i < idx("--fast-path=") {
		t.Errorf("extraArgs must come last (they override the chart's): %q", args)
	}
}

// A workload's selector is immutable: it must not change between two releases of the chart or two
// image tags, and it must not hold a label that does.
func TestSelectorsStableAcrossVersions(t *testing.T) {
	selectors := func(ch func() map[string]string) map[string]string {
		out := map[string]string{}
		for _, o := range objects(t, ch()) {
			if slices.Contains(selectorKinds, o.u.GetKind()) {
				out[o.u.GetKind()+"/"+o.u.GetName()] = fmt.Sprint(selector(t, o))
			}
		}
		return out
	}
	// The default values with the ServiceMonitors on: every kind that selects.
	values := func() map[string]any {
		vals := valuesOf(t, "required")
		vals["metrics"] = map[string]any{"serviceMonitor": map[string]any{"enabled": true}}
		return vals
	}
	base := selectors(func() map[string]string {
		return mustRender(t, loadChart(t, chartDir), values())
	})
	other := selectors(func() map[string]string {
		ch := loadChart(t, chartDir)
		ch.Metadata.Version, ch.Metadata.AppVersion = "9.8.7", "9.8.7"
		vals := values()
		vals["image"] = map[string]any{"tag": "9.8.7-other"}
		vals["ipamd"] = map[string]any{"image": map[string]any{"tag": "9.8.7-debug"}}
		return mustRender(t, ch, vals)
	})
	if len(base) != 8 {
		t.Fatalf("found %d selectors, want the DaemonSet's, the Deployment's, the PDB's, the Services' (metrics and the webhook's) and the ServiceMonitors'", len(base))
	}
	if diff := cmpMaps(base, other); diff != "" {
		t.Errorf("selectors change with the chart version or image tag:\n%s", diff)
	}
	for name, sel := range base {
		for _, unstable := range []string{"app.kubernetes.io/version", "helm.sh/chart", "0.1.0"} {
			if strings.Contains(sel, unstable) {
				t.Errorf("%s selects on %s: %s", name, unstable, sel)
			}
		}
	}
}

func cmpMaps(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+": only in the second")
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// Each workload's selector picks its own pods only: the uninstall Job waits for the controller's
// pods to go, and would wait for itself if the Deployment's selector matched it.
func TestSelectorsPickOnlyTheirPods(t *testing.T) {
	objs := objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "custom")))
	for _, w := range objs {
		if w.u.GetKind() != "DaemonSet" && w.u.GetKind() != "Deployment" {
			continue
		}
		var ls metav1.LabelSelector
		m, _, _ := unstructuredMap(w, "spec", "selector")
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
			t.Fatal(err)
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			pt := podSpec(t, o)
			if pt == nil {
				continue
			}
			if matches := sel.Matches(labels.Set(pt.Labels)); matches != (o.String() == w.String()) {
				t.Errorf("%s's selector %s matching the pods of %s: %v", w, sel, o, matches)
			}
		}
	}
}

// The uninstall hooks' identities and permissions exist before their Jobs run (lower
// weights), the nodes' hook runs after the controller's (which needs the pod network ipamd
// provides), and every hook object is deleted once it succeeded and before a re-run.
func TestUninstallHookOrder(t *testing.T) {
	objs := objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "required")))
	jobs := map[string]object{}            // component -> its Job
	weights := map[string]map[string]int{} // component -> object -> weight
	for _, o := range objs {
		a := o.u.GetAnnotations()
		if a["helm.sh/hook"] == "" {
			continue
		}
		if a["helm.sh/hook"] != "pre-delete" {
			t.Errorf("%s: hook %q, want pre-delete", o, a["helm.sh/hook"])
		}
		if a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("%s: hook-delete-policy %q", o, a["helm.sh/hook-delete-policy"])
		}
		var w int
		if _, err := fmt.Sscan(a["helm.sh/hook-weight"], &w); err != nil {
			t.Errorf("%s: hook-weight %q: %v", o, a["helm.sh/hook-weight"], err)
		}
		comp := o.u.GetLabels()["app.kubernetes.io/component"]
		if weights[comp] == nil {
			weights[comp] = map[string]int{}
		}
		weights[comp][o.String()] = w
		if o.u.GetKind() == "Job" {
			jobs[comp] = o
		}
	}
	lbc, nodes := jobs["lbcontroller-uninstall"], jobs["ipamd-uninstall"]
	if lbc.u == nil || len(weights["lbcontroller-uninstall"]) != 6 {
		t.Fatalf("want the controller's uninstall Job and its ServiceAccount, Role, RoleBinding, ClusterRole and ClusterRoleBinding as hooks; found %v", weights)
	}
	if nodes.u == nil || len(weights["ipamd-uninstall"]) != 4 {
		t.Fatalf("want the nodes' uninstall Job and its ServiceAccount, Role and RoleBinding as hooks; found %v", weights)
	}
	for comp, ws := range weights {
		job := jobs[comp].String()
		for name, w := range ws {
			if name != job && w >= ws[job] {
				t.Errorf("%s has hook weight %d, not below its Job's %d", name, w, ws[job])
			}
		}
	}
	if lw, nw := weights["lbcontroller-uninstall"][lbc.String()], weights["ipamd-uninstall"][nodes.String()]; nw <= lw {
		t.Errorf("the nodes' uninstall Job (weight %d) must run after the controller's (weight %d)", nw, lw)
	}
	pt := podSpec(t, lbc)
	c := pt.Spec.Containers[0]
	want := []string{"--cluster-name=test-cluster", "--deployment=$(POD_NAMESPACE)/" + releaseName + "-lbcontroller",
		"--cloud=fakecloud", "--subnet-id=subnet-0123456789abcdef0", "--cloud-endpoint=https://fakecloud.example:7474",
		"--cloud-token-file=/etc/flatnet/cloud/token"}
	if got := append(slices.Clone(c.Command), c.Args...); !slices.Equal(got, append([]string{"/usr/bin/flatnet-lbcontroller", "uninstall"}, want...)) {
		t.Errorf("uninstall Job runs %q", got)
	}
	if pt.Spec.RestartPolicy != corev1.RestartPolicyNever || pt.Spec.ServiceAccountName != releaseName+"-lbcontroller-uninstall" {
		t.Errorf("uninstall Job: restartPolicy %s, serviceAccount %s", pt.Spec.RestartPolicy, pt.Spec.ServiceAccountName)
	}
	np := podSpec(t, nodes)
	nc := np.Spec.Containers[0]
	if got := append(slices.Clone(nc.Command), nc.Args...); !slices.Equal(got, []string{"/usr/bin/flatnet-ipamd", "uninstall",
		"--daemonset=$(POD_NAMESPACE)/" + releaseName + "-ipamd", "--timeout=290s"}) {
		t.Errorf("the nodes' uninstall Job runs %q", got)
	}
	if !np.Spec.HostNetwork || np.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the nodes' uninstall Job: hostNetwork %v (it stops the pod network), restartPolicy %s", np.Spec.HostNetwork, np.Spec.RestartPolicy)
	}
	// Without the hooks, nothing of them is rendered.
	vals := valuesOf(t, "required")
	vals["lbcontroller"] = map[string]any{"uninstall": map[string]any{"enabled": false}}
	vals["ipamd"] = map[string]any{"uninstall": map[string]any{"enabled": false}}
	for _, o := range objects(t, mustRender(t, loadChart(t, chartDir), vals)) {
		if o.u.GetAnnotations()["helm.sh/hook"] != "" {
			t.Errorf("uninstall.enabled=false still renders the hook %s", o)
		}
	}
}

// NOTES.txt tells what was installed and how to check it, and warns about risky values only.
func TestNotes(t *testing.T) {
	ch := loadChart(t, chartDir)
	vals := valuesOf(t, "required")
	vals["cloud"].(map[string]any)["credentials"] = map[string]any{"existingSecret": "flatnet-cloud"}
	quiet := mustRender(t, ch, vals)["flatnet/templates/NOTES.txt"]
	for _, want := range []string{"rollout status daemonset/flatnet-ipamd", "rollout status deployment/flatnet-lbcontroller", "/etc/cni/net.d/10-flatnet.conflist", "/opt/cni/bin/flatnet"} {
		if !strings.Contains(quiet, want) {
			t.Errorf("NOTES.txt does not say %q:\n%s", want, quiet)
		}
	}
	if strings.Contains(quiet, "WARNING") {
		t.Errorf("NOTES.txt warns with safe values:\n%s", quiet)
	}
	risky := mustRender(t, ch, valuesOf(t, "custom"))["flatnet/templates/NOTES.txt"]
	for _, want := range []string{"ipamd.externalSNAT is true", "ipamd.maxUnavailable is 10%", "ipamd.metrics.bindAddress is 127.0.0.1", "lbcontroller.defaultClass is true"} {
		if !strings.Contains(risky, want) {
			t.Errorf("NOTES.txt does not warn %q:\n%s", want, risky)
		}
	}
	vals = valuesOf(t, "required")
	vals["lbcontroller"] = map[string]any{"replicas": 1, "extraArgs": []any{"--fakecloud-token=s3cr3t-value"}}
	vals["ipamd"] = map[string]any{"tolerations": []any{}}
	notes := mustRender(t, ch, vals)["flatnet/templates/NOTES.txt"]
	for _, want := range []string{"lbcontroller.replicas is 1", "cloud.credentials.token is stored in the release", "lbcontroller.extraArgs has an argument that looks like a credential", "ipamd.tolerations does not tolerate every taint"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt does not warn %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "s3cr3t-value") {
		t.Errorf("NOTES.txt repeats the credential it warns about:\n%s", notes)
	}
}

// The lab and the docs rely on these names; renaming them is a breaking change.
func TestObjectNames(t *testing.T) {
	objs := objects(t, mustRender(t, loadChart(t, chartDir), valuesOf(t, "required")))
	for _, want := range [][2]string{
		{"DaemonSet", "flatnet-ipamd"}, {"ServiceAccount", "flatnet-ipamd"}, {"Deployment", "flatnet-lbcontroller"},
		{"ServiceAccount", "flatnet-lbcontroller"}, {"PodDisruptionBudget", "flatnet-lbcontroller"},
		{"Job", "flatnet-lbcontroller-uninstall"}, {"Service", "flatnet-ipamd-metrics"}, {"Service", "flatnet-lbcontroller-metrics"},
		{"Secret", "flatnet-cloud-credentials"},
	} {
		one(t, objs, want[0], want[1])
	}
	for _, o := range objs {
		if o.u.GetNamespace() != "" && o.u.GetNamespace() != releaseNS {
			t.Errorf("%s is in namespace %s, not the release's", o, o.u.GetNamespace())
		}
		l := o.u.GetLabels()
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/component", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if l[k] == "" {
				t.Errorf("%s has no label %s", o, k)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(chartDir, "templates", "NOTES.txt")); err != nil {
		t.Error(err)
	}
}
