package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/flatnet/flatnet/internal/jsonstyle"
)

// TestKeyStyle: every exported field of every struct type this package declares (named or
// inline, requests, responses and resources alike) carries a json key in EC2's style, PascalCase
// with acronyms as words (VpcId, never VpcID), so the whole API keeps one key style. It reads the
// package's source rather than a list of types, so a type or field added later is covered
// without being listed here.
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
		var typeName string
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.TypeSpec:
				typeName = n.Name.Name
			case *ast.StructType:
				checked += checkStruct(t, fset, typeName, n)
			}
			return true
		})
	}
	if checked < 100 {
		t.Errorf("only %d fields checked: the walk missed the API's types", checked)
	}
}

// checkStruct checks the keys of one struct type's fields and returns how many it checked.
func checkStruct(t *testing.T, fset *token.FileSet, typeName string, st *ast.StructType) int {
	t.Helper()
	checked := 0
	for _, fld := range st.Fields.List {
		var key string
		tagged := false
		if fld.Tag != nil {
			raw, err := strconv.Unquote(fld.Tag.Value)
			if err != nil {
				t.Errorf("%s: %s has a malformed tag %s", fset.Position(fld.Pos()), typeName, fld.Tag.Value)
				continue
			}
			var tag string
			tag, tagged = reflect.StructTag(raw).Lookup("json")
			key, _, _ = strings.Cut(tag, ",")
			if tag == "-" {
				continue
			}
		}
		if len(fld.Names) == 0 && key == "" {
			continue // embedded without a key: its fields are checked where it is declared
		}
		for _, id := range fld.Names {
			if !id.IsExported() {
				continue
			}
			checked++
			where := fset.Position(id.Pos()).String() + ": " + typeName + "." + id.Name
			if !tagged || key == "" {
				t.Errorf("%s has no json key (it would be keyed %q)", where, id.Name)
			} else if why := jsonstyle.PascalCase.Problem(key); why != "" {
				t.Errorf("%s has the json key %q: %s", where, key, why)
			}
		}
	}
	return checked
}
