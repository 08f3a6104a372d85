// Command verify-imports enforces flatnet's dependency direction
// (docs/architecture.md#dependency-rules) on the import graph that `go list -deps -json` reports,
// so that what the compiler links is what gets checked: a rule broken three modules deep in the
// CNI plugin's graph fails here, where depguard (which sees one file's import lines) cannot see
// it. Test files are not checked: tests may reach anywhere.
//
// Usage: go run ./hack/verify-imports [-C dir]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "verify-imports:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("verify-imports", flag.ContinueOnError)
	dir := fs.String("C", ".", "module directory to check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mod, pkgs, loadErrs, err := load(*dir)
	if err != nil {
		return err
	}
	violations := Check(mod, pkgs)
	for _, v := range violations {
		fmt.Fprintln(out, v)
	}
	if len(loadErrs) > 0 {
		// The graph of a package that does not load is incomplete: say so rather than pass it.
		return fmt.Errorf("%d import rule violation(s), and %d package(s) that do not load:\n\t%s",
			len(violations), len(loadErrs), strings.Join(loadErrs, "\n\t"))
	}
	if len(violations) > 0 {
		return fmt.Errorf("%d import rule violation(s); the rules are in hack/verify-imports/rules.go and docs/architecture.md#dependency-rules", len(violations))
	}
	fmt.Fprintf(out, "verify-imports: %d packages checked, import direction ok\n", countModule(mod, pkgs))
	return nil
}

// listed is the part of `go list -json` output the rules need.
type listed struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Module     *struct {
		Path string
		Main bool
	}
	Error *struct{ Err string }
}

// load lists every package of the module in dir together with all its dependencies. With -e,
// go list still reports the imports of a package that fails to load; decode turns its error into
// the checker's.
func load(dir string) (string, []Package, []string, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Module,Error", "./...")
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", nil, nil, fmt.Errorf("go list in %s: %w", dir, err)
	}
	return decode(raw)
}

func decode(raw []byte) (string, []Package, []string, error) {
	var mod string
	var pkgs []Package
	var loadErrs []string
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var p listed
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, nil, fmt.Errorf("decoding go list output: %w", err)
		}
		if p.Error != nil {
			loadErrs = append(loadErrs, p.ImportPath+": "+strings.TrimSpace(p.Error.Err))
		}
		if p.Module != nil && p.Module.Main && mod == "" {
			mod = p.Module.Path
		}
		pkgs = append(pkgs, Package{ImportPath: p.ImportPath, Standard: p.Standard, Imports: p.Imports})
	}
	if mod == "" {
		return "", nil, nil, errors.New("go list reported no package of the main module")
	}
	return mod, pkgs, loadErrs, nil
}

func countModule(mod string, pkgs []Package) int {
	n := 0
	for _, p := range pkgs {
		if _, ok := relPath(mod, p.ImportPath); ok {
			n++
		}
	}
	return n
}
