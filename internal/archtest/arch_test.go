package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	// module is the module path; packages are named relative to it.
	module = "github.com/stund/stund"
	// root is the module's directory, relative to this package.
	root = "../.."
	// archDoc is the page whose import trees are checked.
	archDoc = "docs/architecture.md"
)

// testHelpers are packages only tests may import: no binary holds one.
var testHelpers = []string{
	"internal/stuntest",
	"internal/kubetest",
	"internal/golden",
	"internal/cluster/clustertest",
	"internal/stund/server/servertest",
	"internal/charttest",
	"internal/imagetest",
	"internal/archtest",
	"internal/flagdoc",
}

// sharedCore are the packages both programs contain; they import neither
// program's tree.
var sharedCore = []string{"internal/wire", "internal/netclass", "internal/cluster", "internal/logs"}

// under reports whether package p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// goList runs go list in the module's directory.
func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}

	return out
}

// local returns the module-relative name of an import path, and whether
// it is one of the module's packages.
func local(path string) (string, bool) {
	return strings.CutPrefix(path, module+"/")
}

// realImports returns the module's packages and every import between
// them ("A -> B"), tests left out, as go list sees them.
func realImports(t *testing.T) (pkgs []string, edges map[string]bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(goList(t, "-json=ImportPath,Imports", "./...")))
	edges = map[string]bool{}
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -json: %v", err)
		}
		from, ok := local(p.ImportPath)
		if !ok {
			continue
		}
		pkgs = append(pkgs, from)
		for _, imp := range p.Imports {
			if to, ok := local(imp); ok {
				edges[from+" -> "+to] = true
			}
		}
	}
	if len(pkgs) < 10 || len(edges) < 10 {
		t.Fatalf("go list found %d packages and %d imports: the module is not where the test looks", len(pkgs), len(edges))
	}

	return pkgs, edges
}

// localDeps returns the module's packages that pkg is built from, itself
// included.
func localDeps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	deps := map[string]bool{}
	for _, line := range strings.Fields(string(goList(t, "-deps", "-f", "{{.ImportPath}}", "./"+pkg))) {
		if p, ok := local(line); ok {
			deps[p] = true
		}
	}

	return deps
}

// tree is one import tree of the diagram: a root and every package drawn
// under it.
type tree struct {
	root  string
	nodes map[string]bool
}

const arrow = "─▶"

// parseTrees reads the import trees between the imports markers of doc.
// A line without an arrow starts a tree; a line "│ ├─▶ pkg" is an import
// of the nearest package drawn left of its arrow on the lines above.
func parseTrees(doc string) ([]tree, map[string]bool, error) {
	_, rest, ok := strings.Cut(doc, "<!-- imports:begin -->")
	if !ok {
		return nil, nil, errors.New("no <!-- imports:begin --> marker")
	}
	block, _, ok := strings.Cut(rest, "<!-- imports:end -->")
	if !ok {
		return nil, nil, errors.New("no <!-- imports:end --> marker")
	}
	type drawn struct {
		col  int
		name string
	}
	var (
		trees []tree
		stack []drawn
	)
	edges := map[string]bool{}
	for i, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "```") {
			stack = nil
			continue
		}
		at := strings.Index(line, arrow)
		if at < 0 {
			name := strings.Fields(trimmed)[0]
			trees = append(trees, tree{root: name, nodes: map[string]bool{name: true}})
			stack = []drawn{{col: -1, name: name}}
			continue
		}
		fields := strings.Fields(line[at+len(arrow):])
		if len(stack) == 0 || len(fields) == 0 {
			return nil, nil, fmt.Errorf("imports block line %d: %q: an arrow with no package above it or after it", i, line)
		}
		col := utf8.RuneCountInString(line[:at])
		for len(stack) > 1 && stack[len(stack)-1].col >= col {
			stack = stack[:len(stack)-1]
		}
		name := fields[0]
		edges[stack[len(stack)-1].name+" -> "+name] = true
		trees[len(trees)-1].nodes[name] = true
		stack = append(stack, drawn{col: col, name: name})
	}
	if len(trees) == 0 {
		return nil, nil, errors.New("no import tree between the markers")
	}

	return trees, edges, nil
}

// missing returns the keys of m that are not in other, sorted.
func missing(m, other map[string]bool) []string {
	var out []string
	for k := range m {
		if !other[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)

	return out
}

// TestArchitecture checks docs/architecture.md's import trees against the
// real imports, both ways, and each command's tree against the packages
// the command is built from.
func TestArchitecture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, archDoc))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	trees, drawnEdges, err := parseTrees(doc)
	if err != nil {
		t.Fatalf("%s: %v", archDoc, err)
	}
	pkgs, realEdges := realImports(t)
	for _, e := range missing(realEdges, drawnEdges) {
		t.Errorf("%s does not draw the import %s", archDoc, e)
	}
	for _, e := range missing(drawnEdges, realEdges) {
		t.Errorf("%s draws %s, which is not an import", archDoc, e)
	}
	drawn := map[string]bool{}
	for _, tr := range trees {
		for p := range tr.nodes {
			drawn[p] = true
		}
		if !under(tr.root, "cmd") {
			continue // a helper's tree shows its imports, not all it is built from
		}
		deps := localDeps(t, tr.root)
		for _, p := range missing(deps, tr.nodes) {
			t.Errorf("%s: the tree of %s lacks %s, which it is built from", archDoc, tr.root, p)
		}
		for _, p := range missing(tr.nodes, deps) {
			t.Errorf("%s: the tree of %s holds %s, which it is not built from", archDoc, tr.root, p)
		}
	}
	for _, p := range pkgs {
		if !drawn[p] && !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("%s does not name the package %s", archDoc, p)
		}
	}
}

// TestArchitectureRules checks what each binary may be built from: stund
// nothing of stuncheck's tree and stuncheck nothing of stund's, neither a
// test helper, and the shared core nothing of either tree.
func TestArchitectureRules(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"cmd/stund", append([]string{"internal/stuncheck", "pkg/check"}, testHelpers...)},
		{"cmd/stuncheck", append([]string{"internal/stund"}, testHelpers...)},
	}
	for _, core := range sharedCore {
		rules = append(rules, struct {
			pkg       string
			forbidden []string
		}{core, []string{"internal/stund", "internal/stuncheck", "pkg", "cmd"}})
	}
	for _, r := range rules {
		deps := localDeps(t, r.pkg)
		if !deps[r.pkg] {
			t.Fatalf("go list -deps ./%s does not list %s itself", r.pkg, r.pkg)
		}
		for _, p := range missing(deps, nil) {
			for _, f := range r.forbidden {
				if under(p, f) {
					t.Errorf("%s is built from %s: it must not contain anything under %s", r.pkg, p, f)
				}
			}
		}
	}
}
