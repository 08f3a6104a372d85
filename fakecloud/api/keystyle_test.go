package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pascal is the key style of fakecloud's API, EC2's: PascalCase, acronyms as words (VpcId).
var pascal = regexp.MustCompile(`^[A-Z][a-zA-Z0-9]*$`)

// TestKeyStyle: every exported field of every struct this package declares carries a json tag
// whose key is PascalCase, so the whole API keeps one key style. It reads the package's source,
// so a new type is covered without being listed here.
func TestKeyStyle(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			for _, fld := range st.Fields.List {
				for _, id := range fld.Names {
					if !id.IsExported() {
						continue
					}
					checked++
					where := fset.Position(id.Pos()).String() + ": " + ts.Name.Name + "." + id.Name
					if fld.Tag == nil {
						t.Errorf("%s has no json tag", where)
						continue
					}
					raw, _ := strconv.Unquote(fld.Tag.Value)
					key, _, _ := strings.Cut(reflect.StructTag(raw).Get("json"), ",")
					if key != "-" && !pascal.MatchString(key) {
						t.Errorf("%s has the json key %q, want PascalCase", where, key)
					}
				}
			}
			return true
		})
	}
	if checked < 100 {
		t.Errorf("only %d fields checked: the walk missed the API's types", checked)
	}
}
