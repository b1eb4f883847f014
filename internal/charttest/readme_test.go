package charttest

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	valuesBegin = "<!-- values:begin: generated from values.yaml by `go test ./internal/charttest -run Readme -update` -->"
	valuesEnd   = "<!-- values:end -->"
)

// update rewrites the values table of the chart's README; it is the same
// -update that rewrites golden files, when that flag is already defined.
var update = lookupOrDefineBool("update", "rewrite golden files and the chart README's values table")

func lookupOrDefineBool(name, usage string) func() bool {
	if f := flag.Lookup(name); f != nil {
		return func() bool { return f.Value.String() == "true" }
	}
	b := flag.Bool(name, false, usage)

	return func() bool { return *b }
}

// valuesTable renders the README's values table from values.yaml: one row
// per key with its own `# --` comment, its default as JSON, and the
// comment, as helm-docs does.
func valuesTable(t *testing.T, raw []byte) string {
	t.Helper()
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
	rows := 0
	for _, k := range valueKeys(raw) {
		if k.comment == "" {
			continue // a section, or inside a documented value
		}
		var v any = values
		for _, part := range strings.Split(k.path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("values.yaml:%d: %s: %s is not a map", k.line, k.path, part)
			}
			v = m[part]
		}
		def, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", k.path, def, strings.ReplaceAll(k.comment, "|", `\|`))
		rows++
	}
	if rows < 50 {
		t.Fatalf("only %d documented values: the parser is broken", rows)
	}

	return b.String()
}

// TestReadmeValues checks the values table of charts/stund/README.md
// against values.yaml: every documented key with its default and its
// `# --` comment, and nothing else. -update rewrites the table.
func TestReadmeValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := valuesTable(t, raw)
	path := filepath.Join(chartDir, "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(string(readme), valuesBegin+"\n")
	if !ok {
		t.Fatalf("%s has no line %s", path, valuesBegin)
	}
	got, tail, ok := strings.Cut(rest, valuesEnd)
	if !ok {
		t.Fatalf("%s has no %s after the table", path, valuesEnd)
	}
	if got == want {
		return
	}
	if update() {
		if err := os.WriteFile(path, []byte(head+valuesBegin+"\n"+want+valuesEnd+tail), 0o644); err != nil {
			t.Fatal(err)
		}

		return
	}
	gotRows, wantRows := tableRows(got), tableRows(want)
	for key, row := range wantRows {
		switch g, ok := gotRows[key]; {
		case !ok:
			t.Errorf("the values table of %s lacks %s:\n\t%s", path, key, row)
		case g != row:
			t.Errorf("the values table of %s has\n\t%s\nwant\n\t%s", path, g, row)
		}
	}
	for key := range gotRows {
		if _, ok := wantRows[key]; !ok {
			t.Errorf("the values table of %s has %s, which values.yaml does not document", path, key)
		}
	}
	t.Errorf("the values table of %s differs from values.yaml; go test ./internal/charttest -run Readme -update rewrites it", path)
}

// tableRows maps each row of a Markdown table to its first cell.
func tableRows(table string) map[string]string {
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.HasPrefix(line, "|---") {
			continue
		}
		rows[strings.TrimSpace(cells[1])] = line
	}

	return rows
}
