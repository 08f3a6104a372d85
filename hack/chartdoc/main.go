// Command chartdoc writes a Helm chart's README.md from its Chart.yaml and the comments of its
// values.yaml: the comment block above each key is that key's documentation, so values.yaml stays
// the one place a value is described. A key without a comment is an error, which keeps values.yaml
// fully commented.
//
//	go run ./hack/chartdoc              rewrite charts/flatnet/README.md (make chart-docs)
//	go run ./hack/chartdoc -check       exit 1 when the README is stale
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chartdoc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chartdoc", flag.ContinueOnError)
	dir := fs.String("chart", "charts/flatnet", "the chart directory")
	check := fs.Bool("check", false, "write nothing; fail when README.md differs from what would be written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want, err := Generate(*dir)
	if err != nil {
		return err
	}
	path := filepath.Join(*dir, "README.md")
	if *check {
		have, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(have, want) {
			return fmt.Errorf("%s is stale: run make chart-docs", path)
		}
		return nil
	}
	return os.WriteFile(path, want, 0o644)
}

// chartMeta is what the README shows of Chart.yaml.
type chartMeta struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
}

// value is one documented key of values.yaml.
type value struct {
	path    string // ipamd.image.tag
	typ     string // string, integer, boolean, list, map, null
	def     string // the default, as YAML flow text
	doc     string // the comment above the key, one paragraph
	section bool   // a map whose keys are documented one by one
}

// Generate returns the README of the chart in dir.
func Generate(dir string) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var meta chartMeta
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("read the chart's Chart.yaml: %w", err)
	}
	vals, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	values, err := Values(vals)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json")); err == nil {
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			return nil, fmt.Errorf("values.schema.json: %w", err)
		}
		for i := range values {
			if t := schemaType(schema, schema, strings.Split(values[i].path, ".")); t != "" {
				values[i].typ = t
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return render(meta, values), nil
}

// schemaType describes what the schema allows at path: its types, and its values when it lists
// them; "" when the schema does not say.
func schemaType(root, node map[string]any, path []string) string {
	node = resolve(root, node)
	if len(path) > 0 {
		props, _ := node["properties"].(map[string]any)
		next, ok := props[path[0]].(map[string]any)
		if !ok {
			return ""
		}
		return schemaType(root, next, path[1:])
	}
	if enum, ok := node["enum"].([]any); ok {
		var vs []string
		for _, v := range enum {
			vs = append(vs, fmt.Sprint(v))
		}
		return "one of " + strings.Join(vs, ", ")
	}
	var types []string
	add := func(n map[string]any) {
		n = resolve(root, n)
		switch t := n["type"].(type) {
		case string:
			types = append(types, t)
		case []any:
			for _, x := range t {
				types = append(types, fmt.Sprint(x))
			}
		}
		if _, ok := n["enum"]; ok && n["type"] == nil {
			types = append(types, "string")
		}
	}
	add(node)
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := node[key].([]any); ok {
			for _, a := range alts {
				if m, ok := a.(map[string]any); ok {
					add(m)
				}
			}
		}
	}
	types = slices.Compact(types)
	for i, t := range types {
		if t == "object" {
			types[i] = "map"
		}
		if t == "array" {
			types[i] = "list"
		}
	}
	return strings.Join(types, " or ")
}

// resolve follows a local $ref ("#/$defs/name"), merging the referring node's own keywords.
func resolve(root, node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	target := root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		next, ok := target[part].(map[string]any)
		if !ok {
			return node
		}
		target = next
	}
	merged := map[string]any{}
	for k, v := range resolve(root, target) {
		merged[k] = v
	}
	for k, v := range node {
		if k != "$ref" {
			merged[k] = v
		}
	}
	return merged
}

// Values returns the documented keys of a values file in file order, or every key that has no
// comment, with its line.
func Values(src []byte) ([]value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the file is not a map of values")
	}
	var out []value
	var errs []error
	walk(doc.Content[0], "", &out, &errs)
	return out, errors.Join(errs...)
}

// walk collects the keys of mapping m. A map value whose own keys carry comments is a section (its
// keys are listed one by one); any other value is shown whole as the default.
func walk(m *yaml.Node, prefix string, out *[]value, errs *[]error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		path := prefix + k.Value
		doc := commentText(k.HeadComment)
		if doc == "" {
			*errs = append(*errs, fmt.Errorf("line %d: %s has no comment above it: say what it does (the comment is its documentation in README.md)", k.Line, path))
		}
		val := value{path: path, doc: doc, typ: typeOf(v), def: flow(v)}
		if isSection(v) {
			val.section, val.def = true, ""
			*out = append(*out, val)
			walk(v, path+".", out, errs)
			continue
		}
		*out = append(*out, val)
	}
}

// isSection: a map some of whose keys have comments; then every one of them must have one. A
// map without any (resources, nodeSelector) is a value shown whole.
func isSection(v *yaml.Node) bool {
	if v.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i < len(v.Content); i += 2 {
		if commentText(v.Content[i].HeadComment) != "" {
			return true
		}
	}
	return false
}

// commentText turns a comment block into one paragraph.
func commentText(c string) string {
	var words []string
	for _, line := range strings.Split(c, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if line != "" {
			words = append(words, line)
		}
	}
	return strings.Join(words, " ")
}

func typeOf(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	switch v.Tag {
	case "!!int":
		return "integer"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "integer or null" // the only nulls of the chart are optional numbers
	case "!!float":
		return "number"
	}
	return "string"
}

// flow renders a value as compact YAML on one line.
func flow(v *yaml.Node) string {
	c := *v
	c.Style = yaml.FlowStyle
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	setFlow(&c)
	b, err := yaml.Marshal(&c)
	if err != nil {
		return "?"
	}
	s := strings.TrimSpace(string(b))
	if v.Tag == "!!str" && v.Value == "" {
		return `""`
	}
	return s
}

func setFlow(n *yaml.Node) {
	n.HeadComment, n.LineComment, n.FootComment = "", "", ""
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = yaml.FlowStyle
		n.Content = append([]*yaml.Node(nil), n.Content...) // the original's children stay as they are
		for i, c := range n.Content {
			cp := *c
			setFlow(&cp)
			n.Content[i] = &cp
		}
	}
}

func render(meta chartMeta, values []value) []byte {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- Generated by hack/chartdoc from Chart.yaml and the comments of values.yaml: edit those, then run make chart-docs. -->\n")
	p("# The %s Helm chart\n\n", meta.Name)
	p("%s\n\n", strings.TrimSpace(meta.Description))
	p("Chart %s, flatnet %s. Installing, upgrading and uninstalling, the RBAC rules and the security notes are in\n", meta.Version, meta.AppVersion)
	p("[docs/chart.md](../../docs/chart.md).\n\n")
	p("```sh\n")
	p("kubectl create namespace flatnet-system\n")
	p("kubectl -n flatnet-system create secret generic flatnet-cloud --from-file=token=./account-token\n")
	p("helm install flatnet charts/%s -n flatnet-system \\\n", meta.Name)
	p("  --set cluster.name=prod-eu-1 --set cloud.subnetID=subnet-0a1b2c3d \\\n")
	p("  --set cloud.fakecloud.endpoint=https://fakecloud.internal:7474 \\\n")
	p("  --set cloud.credentials.existingSecret=flatnet-cloud\n")
	p("```\n\n")
	p("## Values\n\n")
	p("values.schema.json checks every value before anything is rendered: unknown keys, wrong types and\n")
	p("missing required values are refused with the key's path.\n")
	header := "| key | type | default | description |\n|---|---|---|---|\n"
	row := func(v value) {
		if v.section {
			p("| `%s` | map | | %s |\n", v.path, escape(v.doc))
			return
		}
		p("| `%s` | %s | `%s` | %s |\n", v.path, v.typ, escapeCode(v.def), escape(v.doc))
	}
	// Top-level values that are no section share one table.
	general := false
	for _, v := range values {
		if !strings.Contains(v.path, ".") && !v.section {
			if !general {
				p("\n### General\n\n%s", header)
				general = true
			}
			row(v)
		}
	}
	for _, v := range values {
		switch {
		case !strings.Contains(v.path, "."):
			if v.section {
				p("\n### `%s`\n\n%s\n\n%s", v.path, escape(v.doc), header)
			}
		default:
			row(v)
		}
	}
	return []byte(b.String())
}

// escape makes a comment safe in a Markdown table cell: no column breaks, no HTML tags.
func escape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

// escapeCode escapes a default shown in backticks inside a table cell.
func escapeCode(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "`", "'")
}
