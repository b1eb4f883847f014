package imagetest

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stund/stund/internal/flagdoc"
)

const docsPage = "docs/development.md"

// TestDocsFlags checks the builder's flag table in docs/development.md against
// its --help.
func TestDocsFlags(t *testing.T) {
	cmd := exec.Command("go", "run", "-buildvcs=false", ".", "--help")
	cmd.Dir = root + "/tools/image"
	// A module of its own: no workspace, none of the caller's module flags.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tools/image --help: %v\n%s", err, stderr.String())
	}
	flags, err := flagdoc.Help(string(out))
	if err != nil {
		t.Fatalf("tools/image --help: %v\n%s", err, out)
	}
	rows, err := flagdoc.Table(string(readFile(t, docsPage)), "<!-- flags: image --help -->")
	if err != nil {
		t.Fatalf("%s: %v", docsPage, err)
	}
	for _, d := range flagdoc.Compare(rows, flags) {
		t.Errorf("%s: %s", docsPage, d)
	}
}

// TestDocsMakeVariables checks the make variables table of docs/development.md:
// each is a variable of the Makefile, and a default written as code is the
// Makefile's.
func TestDocsMakeVariables(t *testing.T) {
	page := string(readFile(t, docsPage))
	_, section, ok := strings.Cut(page, "\n### Make variables\n")
	if !ok {
		t.Fatalf("%s has no Make variables section", docsPage)
	}
	section, _, _ = strings.Cut(section, "\n#")
	mk := string(readFile(t, "Makefile"))
	row := regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| ([^|]*) \\|")
	rows := row.FindAllStringSubmatch(section, -1)
	if len(rows) < 4 {
		t.Fatalf("%s: %d make variables documented", docsPage, len(rows))
	}
	for _, r := range rows {
		name, def := r[1], strings.TrimSpace(r[2])
		m := regexp.MustCompile(`(?m)^` + name + ` (\?|:)?= ?(.*)$`).FindStringSubmatch(mk)
		if m == nil {
			t.Errorf("%s documents %s, which the Makefile does not set", docsPage, name)

			continue
		}
		if code, ok := strings.CutPrefix(def, "`"); ok && strings.Count(def, "`") == 2 {
			code = strings.TrimSuffix(code, "`")
			if got := strings.TrimPrefix(m[2], "$(CURDIR)/"); got != code {
				t.Errorf("%s: %s defaults to %s, the Makefile to %s", docsPage, name, def, m[2])
			}
		}
	}
}
