package archtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines keeps README.md a page a newcomer reads in five minutes;
// reference material belongs in docs/.
const readmeMaxLines = 250

// docFiles returns the Markdown pages of the documentation, relative to
// the module's directory.
func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md: the test looks in the wrong place")
	}
	files := []string{"README.md", "charts/stund/README.md"}
	for _, p := range pages {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}

	return files
}

// prose returns the lines of a Markdown page outside fenced code blocks,
// numbered from 1; code lines are empty.
func prose(text string) []string {
	lines := strings.Split(text, "\n")
	inCode := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode = !inCode
			lines[i] = ""

			continue
		}
		if inCode {
			lines[i] = ""
		}
	}

	return lines
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	codeRE    = regexp.MustCompile("`[^`]*`")
)

// anchors returns the heading anchors GitHub makes for a Markdown page:
// lower case, punctuation dropped, spaces turned to hyphens, repeats
// numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range prose(text) {
		m := headingRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}

	return out
}

// TestDocsLinks checks every relative link of README.md, docs/ and the
// chart's README: the file exists, and a #fragment names a heading of it.
// It also checks that README.md links every page of docs/.
func TestDocsLinks(t *testing.T) {
	files := docFiles(t)
	readmeLinks := map[string]bool{}
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range prose(string(raw)) {
			for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, frag, _ := strings.Cut(target, "#")
				dest := file
				if path != "" {
					dest = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
				}
				if file == "README.md" {
					readmeLinks[dest] = true
				}
				info, err := os.Stat(filepath.Join(root, dest))
				if err != nil {
					t.Errorf("%s:%d: link %s: %v", file, n+1, target, err)

					continue
				}
				if frag == "" {
					continue
				}
				if info.IsDir() || !strings.HasSuffix(dest, ".md") {
					t.Errorf("%s:%d: link %s: a #fragment on what is not a Markdown page", file, n+1, target)

					continue
				}
				destRaw, err := os.ReadFile(filepath.Join(root, dest))
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(destRaw))[frag] {
					t.Errorf("%s:%d: link %s: %s has no heading #%s", file, n+1, target, dest, frag)
				}
			}
		}
	}
	for _, file := range files {
		if strings.HasPrefix(file, "docs/") && !readmeLinks[file] {
			t.Errorf("README.md does not link %s", file)
		}
	}
}

// TestReadmeLength keeps README.md short.
func TestReadmeLength(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move reference material to docs/", n, readmeMaxLines)
	}
}

// issueTalkRE finds text about how the work was organised ("issue 7",
// "the issue's …"), which means nothing to a reader of the documentation.
var issueTalkRE = regexp.MustCompile(`(?i)\b(issue\s+#?\d+|the issue's|goal \(issue)`)

// TestDocsSayNothingOfIssues keeps the documentation about the software.
func TestDocsSayNothingOfIssues(t *testing.T) {
	for _, file := range docFiles(t) {
		raw, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(raw), "\n") {
			if m := issueTalkRE.FindString(line); m != "" {
				t.Errorf("%s:%d: %q: say what the software does, not how the work was organised", file, n+1, m)
			}
		}
	}
}

// TestDocsAnchors checks the anchor rules the link check relies on.
func TestDocsAnchors(t *testing.T) {
	got := anchors("# Load testing: `stuncheck load`\n## Flags\n```\n# not a heading\n```\n## Flags\n### Who needs it?\n")
	want := []string{"flags", "flags-1", "load-testing-stuncheck-load", "who-needs-it"}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("anchors = %v, want %v", keys, want)
	}
}
