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

// TestValuesDocumented checks the helm-docs convention: every value in
// values.yaml has a `# --` comment directly above it, or sits inside a
// documented value, or is a section whose keys are all documented.
func TestValuesDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		indent     int
		path       string
		documented bool
		section    bool
		children   int
	}
	var stack []frame
	pop := func(indent int) {
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			f := stack[len(stack)-1]
			if f.section && f.children == 0 {
				t.Errorf("values.yaml: %s has no `# --` comment", f.path)
			}
			stack = stack[:len(stack)-1]
		}
	}
	pending := false
	checked := 0
	for i, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			pending = false
			continue
		case strings.HasPrefix(trimmed, "# --"):
			pending = true
			continue
		case strings.HasPrefix(trimmed, "#"):
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			pending = false
			continue // a list item or a continuation inside a documented value
		}
		indent, key, rest := len(m[1]), m[2], strings.TrimSpace(m[3])
		pop(indent)
		path := key
		inherited := false
		if len(stack) > 0 {
			parent := &stack[len(stack)-1]
			parent.children++
			path = parent.path + "." + key
			inherited = parent.documented
		}
		documented := pending || inherited
		if !documented && rest != "" {
			t.Errorf("values.yaml:%d: %s has no `# --` comment", i+1, path)
		}
		if !inherited {
			checked++
		}
		stack = append(stack, frame{indent: indent, path: path, documented: documented, section: !documented && rest == ""})
		pending = false
	}
	pop(0)
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
