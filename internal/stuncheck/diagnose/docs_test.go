package diagnose

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const kubernetesDoc = "../../../docs/kubernetes.md"

// TestDocsFindings checks the findings table of docs/kubernetes.md
// against the finding ids Diagnose knows (the ID… constants): every id
// documented once, nothing documented that does not exist.
func TestDocsFindings(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "diagnose.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "ID") || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil {
					ids = append(ids, v)
				}
			}
		}

		return true
	})
	if len(ids) < 20 {
		t.Fatalf("found %d finding ids in diagnose.go: the search is broken", len(ids))
	}
	raw, err := os.ReadFile(kubernetesDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(raw), "| id | severity | when |")
	if !ok {
		t.Fatalf("%s: no findings table (| id | severity | when |)", kubernetesDoc)
	}
	row := regexp.MustCompile("^\\| `([a-z0-9-]+)` \\|")
	var documented []string
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: a findings row without an id: %q", kubernetesDoc, line)

			continue
		}
		documented = append(documented, m[1])
	}
	for _, id := range ids {
		if n := count(documented, id); n != 1 {
			t.Errorf("%s: finding %s is in the table %d times, want once", kubernetesDoc, id, n)
		}
	}
	for _, id := range documented {
		if !slices.Contains(ids, id) {
			t.Errorf("%s: the table documents %s, which Diagnose does not report", kubernetesDoc, id)
		}
	}
}

func count(s []string, x string) int {
	n := 0
	for _, v := range s {
		if v == x {
			n++
		}
	}

	return n
}
