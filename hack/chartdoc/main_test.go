package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const chart = "../../charts/flatnet"

// charts/flatnet/README.md is what the generator makes of the chart as it is: a value added or
// reworded without make chart-docs fails here.
func TestREADMEUpToDate(t *testing.T) {
	want, err := Generate(chart)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(have), "\n")); diff != "" {
		t.Errorf("charts/flatnet/README.md is stale: run make chart-docs (-generated +file):\n%s", diff)
	}
}

// A value without a comment is refused, naming its key and line.
func TestUndocumentedValueIsAnError(t *testing.T) {
	src := "# The image.\nimage:\n  # Its tag.\n  tag: \"\"\n  pullPolicy: IfNotPresent\n# Replicas.\nreplicas: 2\nextra: {}\n"
	_, err := Values([]byte(src))
	if err == nil {
		t.Fatal("undocumented keys accepted")
	}
	for _, want := range []string{"line 5: image.pullPolicy has no comment", "line 8: extra has no comment"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

// Documented keys become rows with their type, default and comment; a map whose keys are all
// documented is a section listed key by key, a map without comments is one value.
func TestRows(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Chart.yaml", "apiVersion: v2\nname: demo\ndescription: A demo.\nversion: 1.2.3\nappVersion: \"1.2.3\"\n")
	write("values.yaml", `# Top comment of the file, not of a key.

# How many | pipes.
replicas: 2
# The server.
server:
  # Its port.
  port: 8080
  # Its <labels>.
  labels:
    a: b
  # Nothing yet.
  limit: null
`)
	write("values.schema.json", `{"properties": {"server": {"properties": {"port": {"$ref": "#/$defs/port"}}}}, "$defs": {"port": {"type": "integer"}}}`)
	got, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# The demo Helm chart\n\nA demo.\n",
		"### General\n",
		"| `replicas` | integer | `2` | How many \\| pipes. |\n",
		"### `server`\n\nThe server.\n",
		"| `server.port` | integer | `8080` | Its port. |\n",
		"| `server.labels` | map | `{a: b}` | Its &lt;labels&gt;. |\n",
		"| `server.limit` | integer or null | `null` | Nothing yet. |\n",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "Top comment") {
		t.Errorf("the file's own comment became a key's:\n%s", got)
	}
}

// -check fails on a stale README and passes on a fresh one.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Chart.yaml", "values.yaml", "values.schema.json"} {
		b, err := os.ReadFile(filepath.Join(chart, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run([]string{"-chart", dir, "-check"}); err == nil || !strings.Contains(err.Error(), "run make chart-docs") {
		t.Errorf("-check without a README: %v", err)
	}
	if err := run([]string{"-chart", dir}); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-chart", dir, "-check"}); err != nil {
		t.Errorf("-check right after writing: %v", err)
	}
}
