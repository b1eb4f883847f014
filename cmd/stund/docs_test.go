package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stund/stund/internal/flagdoc"
)

// TestDocsFlags checks the flag table of docs/stund.md against what the
// real binary's --help prints (every flag of its flag set, with its
// default and environment variable): a flag missing from the table,
// documented but gone, or with another default or variable fails.
func TestDocsFlags(t *testing.T) {
	const page = "../../docs/stund.md"
	raw, err := os.ReadFile(filepath.FromSlash(page))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := flagdoc.Table(string(raw), "<!-- flags: stund --help -->")
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	code, help, stderr := runStund(t, nil, "--help")
	if code != 0 {
		t.Fatalf("stund --help: exit %d: %s", code, stderr)
	}
	flags, err := flagdoc.Help(help)
	if err != nil {
		t.Fatalf("stund --help: %v", err)
	}
	for _, d := range flagdoc.Compare(rows, flags) {
		t.Errorf("%s: %s", page, d)
	}
}
