// Package charts_test checks the flatnet Helm chart (charts/flatnet) the way Helm uses it: the
// chart is loaded and rendered with the Helm v4 SDK, its values are validated against
// values.schema.json as helm install does, the output is compared with golden files, inspected
// object by object, and applied to a real API server in a server-side dry run (dryrun_test.go).
//
//	go test ./charts -update    rewrites testdata/golden from the current chart
package charts_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	chartcommon "helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flatnet/flatnet"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current chart")

const (
	chartDir    = "flatnet"
	releaseName = "flatnet"
	releaseNS   = "flatnet-system"
)

// The two value sets the golden files and the object checks cover.
var valueSets = []string{"required", "custom", "aws"}

// loadChart loads the chart directory as helm install does.
func loadChart(t *testing.T, dir string) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", dir, err)
	}
	return ch
}

// readValues reads a values file as helm install -f does.
func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartcommon.ReadValuesFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v.AsMap()
}

// valuesOf reads testdata/values/<set>.yaml.
func valuesOf(t *testing.T, set string) map[string]any {
	t.Helper()
	return readValues(t, filepath.Join("testdata", "values", set+".yaml"))
}

// render does what helm install does before it talks to the cluster: coalesce the user's values
// with the chart's, validate them against values.schema.json, render every template. The result
// maps each template (flatnet/templates/x.yaml) to its output; partials are left out.
func render(ch *chart.Chart, vals map[string]any) (map[string]string, error) {
	opts := chartcommon.ReleaseOptions{Name: releaseName, Namespace: releaseNS, Revision: 1, IsInstall: true}
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, nil, false)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, top)
	if err != nil {
		return nil, err
	}
	for name := range out {
		if strings.HasPrefix(filepath.Base(name), "_") {
			delete(out, name)
		}
	}
	return out, nil
}

// mustRender renders or fails the test.
func mustRender(t *testing.T, ch *chart.Chart, vals map[string]any) map[string]string {
	t.Helper()
	out, err := render(ch, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// manifest joins the rendered templates in name order, each under its source, as helm template
// prints them; templates that rendered to nothing are left out.
func manifest(out map[string]string) string {
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		body := strings.TrimSpace(out[n])
		if body == "" {
			continue
		}
		fmt.Fprintf(&b, "# Source: %s\n%s\n---\n", n, body)
	}
	return b.String()
}

// object is one rendered Kubernetes object and the template it came from.
type object struct {
	source string
	u      *unstructured.Unstructured
}

func (o object) String() string {
	return fmt.Sprintf("%s %s (%s)", o.u.GetKind(), o.u.GetName(), o.source)
}

// objects parses every rendered YAML document into an object; NOTES.txt is not one.
func objects(t *testing.T, out map[string]string) []object {
	t.Helper()
	var objs []object
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		for i, doc := range splitDocs(out[n]) {
			var m map[string]any
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatalf("%s, document %d, is not YAML: %v\n%s", n, i, err, doc)
			}
			if m == nil {
				continue // only comments
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				t.Fatalf("%s, document %d, has no apiVersion, kind or name:\n%s", n, i, doc)
			}
			objs = append(objs, object{source: n, u: u})
		}
	}
	return objs
}

// splitDocs splits a YAML stream at its document separators.
func splitDocs(s string) []string {
	var docs []string
	var cur []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, strings.Join(cur, "\n"))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, strings.Join(cur, "\n"))
}

// find returns the objects of a kind.
func find(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.u.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of a kind and name.
func one(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	var got []object
	for _, o := range find(objs, kind) {
		if o.u.GetName() == name {
			got = append(got, o)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one %s %s, found %d", kind, name, len(got))
	}
	return got[0]
}

// The chart's version and appVersion are the project's (VERSION, flatnet.Version), and the images
// default to that tag.
func TestChartVersionIsTheProjectVersion(t *testing.T) {
	ch := loadChart(t, chartDir)
	if ch.Metadata.APIVersion != chart.APIVersionV2 {
		t.Errorf("Chart.yaml apiVersion %q, want %q", ch.Metadata.APIVersion, chart.APIVersionV2)
	}
	if ch.Metadata.Version != flatnet.Version {
		t.Errorf("Chart.yaml version %q, but VERSION says %q: change both together", ch.Metadata.Version, flatnet.Version)
	}
	if ch.Metadata.AppVersion != flatnet.Version {
		t.Errorf("Chart.yaml appVersion %q, but VERSION says %q: change both together", ch.Metadata.AppVersion, flatnet.Version)
	}
	objs := objects(t, mustRender(t, ch, valuesOf(t, "required")))
	images := 0
	for _, o := range objs {
		for _, c := range containers(t, o) {
			images++
			if want := ":" + flatnet.Version; !strings.HasSuffix(c.Image, want) {
				t.Errorf("%s container %s: image %s, want the tag %s by default", o, c.Name, c.Image, flatnet.Version)
			}
		}
	}
	if images != 5 {
		t.Errorf("found %d containers (install-cni, ipamd, lbcontroller and the two uninstall hooks'), want 5", images)
	}
}

// helm lint finds nothing to warn about with either value set (make chart-test also runs the
// pinned helm binary's lint --strict).
func TestLint(t *testing.T) {
	for _, set := range valueSets {
		res := lint.RunAll(chartDir, valuesOf(t, set), releaseNS)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", set, m)
			} else {
				t.Logf("%s: %s", set, m)
			}
		}
	}
	// And it does fail: a values file the schema refuses is an error.
	res := lint.RunAll(chartDir, readValues(t, filepath.Join("testdata", "bad", "typo-nested.yaml")), releaseNS)
	if res.HighestSeverity < support.ErrorSev {
		t.Errorf("lint passed values with a misspelt key: %v", res.Messages)
	}
}

// generatedCert matches the lines of the webhook's serving certificate the chart generates.
var generatedCert = regexp.MustCompile(`(?m)^(\s*(?:ca\.crt|tls\.crt|tls\.key|caBundle)): [A-Za-z0-9+/=]{100,}$`)

// The rendered chart for each value set is its golden file (go test ./charts -update rewrites them).
func TestGolden(t *testing.T) {
	ch := loadChart(t, chartDir)
	for _, set := range valueSets {
		t.Run(set, func(t *testing.T) {
			// The webhook's certificate is generated at each render: its bytes are not compared.
			got := generatedCert.ReplaceAllString(manifest(mustRender(t, ch, valuesOf(t, set))), "$1: <generated>")
			path := filepath.Join("testdata", "golden", set+".yaml")
			header := fmt.Sprintf("# helm template %s charts/flatnet -n %s -f charts/testdata/values/%s.yaml\n"+
				"# Generated by go test ./charts -update: do not edit.\n", releaseName, releaseNS, set)
			got = header + got
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./charts -update writes it)", err)
			}
			if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got, "\n")); diff != "" {
				t.Errorf("the chart renders differently from %s (-want +got); if the change is meant, run go test ./charts -update and review the diff:\n%s", path, diff)
			}
		})
	}
}

// Every file under testdata/bad is refused, by the schema or by the chart's own checks, with an
// error naming what the user has to change (its "# want:" lines).
func TestBadValuesAreRefused(t *testing.T) {
	ch := loadChart(t, chartDir)
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files in testdata/bad", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(raw), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatalf("%s has no '# want: <part of the error>' line", f)
			}
			_, err = render(ch, readValues(t, f))
			if err == nil {
				t.Fatalf("%s was accepted; want an error with %q", f, wants)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// The value sets of the golden files pass the schema: the bad-values test is not passing because
// the schema refuses everything.
func TestGoodValuesAreAccepted(t *testing.T) {
	ch := loadChart(t, chartDir)
	for _, set := range valueSets {
		if _, err := render(ch, valuesOf(t, set)); err != nil {
			t.Errorf("%s: %v", set, err)
		}
	}
	// lbcontroller off needs no cloud settings at all.
	vals := map[string]any{"cluster": map[string]any{"name": "c1"}, "lbcontroller": map[string]any{"enabled": false}}
	objs := objects(t, mustRender(t, ch, vals))
	for _, o := range objs {
		if strings.Contains(o.u.GetName(), "lbcontroller") || o.u.GetKind() == "Secret" {
			t.Errorf("lbcontroller.enabled=false still renders %s", o)
		}
	}
	if len(find(objs, "DaemonSet")) != 1 {
		t.Errorf("lbcontroller.enabled=false: want the ipamd DaemonSet still")
	}
}

// A template with a syntax error fails rendering with the file and the line, as a chart author
// needs to find it.
func TestBrokenTemplateNamesFileAndLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flatnet")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	const file, line = "ipamd-daemonset.yaml", 12
	path := filepath.Join(dir, "templates", file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	// A misspelt function: the template does not parse.
	lines = slices.Insert(lines, line-1, "  broken: {{ .Values.ipamd.mode | quot }}")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = render(loadChart(t, dir), valuesOf(t, "required"))
	if err == nil {
		t.Fatal("the broken template rendered")
	}
	if want := fmt.Sprintf("flatnet/templates/%s:%d", file, line); !strings.Contains(err.Error(), want) {
		t.Errorf("the error does not name %s:\n%v", want, err)
	}
	// And a call that fails while rendering names its place too.
	lines[line-1] = `  broken: {{ include "flatnet.nosuchhelper" . }}`
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = render(loadChart(t, dir), valuesOf(t, "required"))
	if err == nil {
		t.Fatal("the failing template rendered")
	}
	if want := fmt.Sprintf("flatnet/templates/%s:%d", file, line); !strings.Contains(err.Error(), want) {
		t.Errorf("the error does not name %s:\n%v", want, err)
	}
}

// rawTemplate reads a template's source.
func rawTemplate(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "templates", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}
