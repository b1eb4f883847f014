package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stund/stund/internal/flagdoc"
)

const docsPage = "../../docs/stuncheck.md"

// docTables are the flag tables of docs/: the page, the marker before
// each table, and the arguments that print the help it documents.
var docTables = []struct {
	page   string
	marker string
	args   []string
	// boolTail follows a flag documented without a value, so that the
	// command stops at a usage error instead of running: the exporter
	// needs no target and would serve.
	boolTail []string
}{
	{docsPage, "<!-- flags: stuncheck --help -->", nil, nil},
	{docsPage, "<!-- flags: stuncheck load --help -->", []string{"load"}, nil},
	{docsPage, "<!-- flags: stuncheck web --help -->", []string{"web"}, nil},
	{"../../docs/exporter.md", "<!-- flags: stuncheck exporter --help -->", []string{"exporter"}, []string{"unexpected-argument"}},
}

// TestDocsFlags checks the flag tables of docs/stuncheck.md and
// docs/exporter.md against the real binary: the flags --help lists, with
// their defaults, and for each documented flag whether the binary knows it
// and whether it takes a value.
func TestDocsFlags(t *testing.T) {
	for _, tbl := range docTables {
		t.Run(strings.Join(append([]string{"stuncheck"}, tbl.args...), " "), func(t *testing.T) {
			docsPage := tbl.page
			raw, err := os.ReadFile(filepath.FromSlash(docsPage))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := flagdoc.Table(string(raw), tbl.marker)
			if err != nil {
				t.Fatalf("%s: %v", docsPage, err)
			}
			r := stuncheck(t, nil, append(slices.Clone(tbl.args), "--help")...)
			if r.code != 0 {
				t.Fatalf("--help: exit %d: %s", r.code, r.stderr)
			}
			flags, err := flagdoc.Help(r.stdout)
			if err != nil {
				t.Fatalf("--help: %v", err)
			}
			for _, d := range flagdoc.Compare(rows, flags) {
				t.Errorf("%s: %s", docsPage, d)
			}
			// --help is written by hand: ask the flag parser itself.
			for _, row := range rows {
				for _, name := range row.Names {
					if name == "h" || name == "help" {
						continue
					}
					args := append(slices.Clone(tbl.args), "-"+name)
					if row.Arg == "" {
						args = append(args, tbl.boolTail...)
					}
					r := stuncheck(t, nil, args...)
					switch {
					case strings.Contains(r.stderr, "flag provided but not defined"):
						t.Errorf("%s:%d: -%s is documented, the command does not know it: %s", docsPage, row.Line, name, r.stderr)
					case strings.Contains(r.stderr, "flag needs an argument") != (row.Arg != ""):
						t.Errorf("%s:%d: -%s is documented with value %q; the command says: %s", docsPage, row.Line, name, row.Arg, r.stderr)
					}
				}
			}
		})
	}
}

// flagMethods are the flag.FlagSet methods that define a flag, and where
// the name is among their arguments.
var flagMethods = map[string]int{
	"Bool": 0, "Duration": 0, "Float64": 0, "Int": 0, "Int64": 0, "String": 0, "Uint": 0, "Uint64": 0,
	"Func": 0, "BoolFunc": 0,
	"BoolVar": 1, "DurationVar": 1, "Float64Var": 1, "IntVar": 1, "Int64Var": 1, "StringVar": 1,
	"UintVar": 1, "Uint64Var": 1, "Var": 1, "TextVar": 1,
}

// definedFlags returns the names of the flags the command's source
// defines, found as fs.String("name", …), fs.Var(&v, "name", …) and the
// like in its non-test files.
func definedFlags(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			at, ok := flagMethods[sel.Sel.Name]
			if !ok || len(call.Args) <= at {
				return true
			}
			lit, ok := call.Args[at].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if name, err := strconv.Unquote(lit.Value); err == nil {
				defined[name] = fset.Position(call.Pos()).String()
			}

			return true
		})
	}
	if len(defined) < 10 {
		t.Fatalf("found %d flag definitions in the source: the search is broken", len(defined))
	}

	return defined
}

// TestDocsFlagsInSource checks the other way round: every flag the
// command's source defines is in one of the tables of docs/, even one
// --help forgets.
func TestDocsFlagsInSource(t *testing.T) {
	documented := map[string]bool{}
	for _, tbl := range docTables {
		raw, err := os.ReadFile(filepath.FromSlash(tbl.page))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := flagdoc.Table(string(raw), tbl.marker)
		if err != nil {
			t.Fatalf("%s: %v", tbl.page, err)
		}
		for _, r := range rows {
			for _, n := range r.Names {
				documented[n] = true
			}
		}
	}
	for name, pos := range definedFlags(t) {
		if !documented[name] {
			t.Errorf("%s: flag -%s is not in a flag table of docs/ (%s, docs/exporter.md)", pos, name, docsPage)
		}
	}
}
