package charttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var keyLine = regexp.MustCompile(`^( *)([A-Za-z0-9_.-]+):(.*)$`)

// valueKey is one key of values.yaml as helm-docs reads the file, line by
// line.
type valueKey struct {
	line int    // 1-based line number
	path string // dotted path, e.g. service.udp.nodePort
	// comment is the `# --` comment right above the key, its lines
	// joined by spaces; empty when there is none.
	comment string
	// inherited is set for a key inside a value that has a comment.
	inherited bool
	// inline is set when the key's value is on its own line; a section or
	// a block value (a map or list on the lines below) has none.
	inline   bool
	children int // keys directly under it
}

// documented reports whether the key is covered by a `# --` comment, its
// own or a parent's.
func (k *valueKey) documented() bool { return k.comment != "" || k.inherited }

// valueKeys walks values.yaml: every key, with the `# --` comment directly
// above it (continued by the `#` lines that follow, ended by a blank line).
func valueKeys(raw []byte) []*valueKey {
	var (
		keys    []*valueKey
		stack   []*valueKey
		indents []int
		comment []string
		pending bool
	)
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			pending, comment = false, nil
			continue
		case strings.HasPrefix(trimmed, "# --"):
			pending, comment = true, []string{strings.TrimSpace(strings.TrimPrefix(trimmed, "# --"))}
			continue
		case strings.HasPrefix(trimmed, "#"):
			if pending {
				comment = append(comment, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			}
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			pending, comment = false, nil
			continue // a list item or a continuation inside a documented value
		}
		indent := len(m[1])
		for len(stack) > 0 && indents[len(indents)-1] >= indent {
			stack, indents = stack[:len(stack)-1], indents[:len(indents)-1]
		}
		k := &valueKey{line: i + 1, path: m[2], inline: strings.TrimSpace(m[3]) != ""}
		if pending {
			k.comment = strings.Join(comment, " ")
		}
		if len(stack) > 0 {
			parent := stack[len(stack)-1]
			parent.children++
			k.path = parent.path + "." + k.path
			k.inherited = parent.documented()
		}
		keys = append(keys, k)
		stack, indents = append(stack, k), append(indents, indent)
		pending, comment = false, nil
	}

	return keys
}

// TestValuesDocumented checks the helm-docs convention: every value in
// values.yaml has a `# --` comment directly above it, or sits inside a
// documented value, or is a section whose keys are all documented.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, k := range valueKeys(raw) {
		switch {
		case k.documented():
		case k.inline:
			t.Errorf("values.yaml:%d: %s has no `# --` comment", k.line, k.path)
		case k.children == 0:
			t.Errorf("values.yaml: %s has no `# --` comment", k.path)
		}
		if !k.inherited {
			checked++
		}
	}
	if checked < 50 {
		t.Errorf("only %d values checked: the parser is broken", checked)
	}
}

// TestSchemaCoversValues checks that every value in values.yaml is described
// by values.schema.json and that the schema's objects refuse unknown keys,
// so a typo in --set or a values file fails instead of being ignored.
func TestSchemaCoversValues(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	rawSchema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(rawSchema, &schema); err != nil {
		t.Fatal(err)
	}

	var walk func(path string, v any, s map[string]any)
	walk = func(path string, v any, s map[string]any) {
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return // a free-form Kubernetes object (resources, affinity, …)
		}
		for k, child := range obj {
			sub, ok := props[k].(map[string]any)
			if !ok {
				t.Errorf("values.yaml %s%s is not in values.schema.json", path, k)
				continue
			}
			walk(path+k+".", child, sub)
		}
	}
	walk("", values, schema)

	// Objects with listed properties refuse others, except these.
	open := []string{"topologySpreadConstraints[]"}
	var strict func(path string, s map[string]any)
	strict = func(path string, s map[string]any) {
		if props, ok := s["properties"].(map[string]any); ok {
			if s["additionalProperties"] != false && !slices.Contains(open, path) {
				t.Errorf("schema %s allows unknown keys", path)
			}
			for k, sub := range props {
				if m, ok := sub.(map[string]any); ok {
					strict(strings.TrimPrefix(path+"."+k, "."), m)
				}
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			strict(path+"[]", items)
		}
	}
	strict("", schema)
}
