package flagdoc

import (
	"strings"
	"testing"
)

const page = "# x\n\n<!-- flags: x --help -->\n" +
	"| Flag | Env | Default | Meaning |\n" +
	"|---|---|---|---|\n" +
	"| `--listen ADDR` | `X_LISTEN` (comma-separated) | `:3478` | where |\n" +
	"| `--drain D` | `X_DRAIN` | `1m` | how long |\n" +
	"| `--verbose` | `X_VERBOSE` | off | more \\| less |\n" +
	"| `-o`, `--output F` | | `text` | format |\n" +
	"| `--gso=false` | | `true` | batching |\n" +
	"| `--cpus N` | | one per CPU | sockets |\n" +
	"| `--ns NS` | `X_NS`, else `POD_NAMESPACE` | none | namespace |\n" +
	"\nafter\n"

const help = `Usage: x [flags]

Flags:
  --listen address
      where [X_LISTEN, comma-separated] (default :3478)
  --drain duration
      how long [X_DRAIN] (default "1m0s")
  --verbose
      more [X_VERBOSE]
  -o, --output FORMAT    text or json
                         (default text)
  --gso=false            one datagram per write
  --cpus N               sockets (default "2")
  --ns namespace
      namespace [X_NS, else POD_NAMESPACE]

Exit codes: 0.
`

func TestDocsTableAndHelpAgree(t *testing.T) {
	rows, err := Table(page, "<!-- flags: x --help -->")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 7 || rows[3].Arg != "F" || strings.Join(rows[3].Names, ",") != "o,output" || !rows[0].EnvList {
		t.Fatalf("rows = %+v", rows)
	}
	flags, err := Help(help)
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 7 || flags[3].Default != "text" || flags[4].Default != "true" || flags[0].Default != ":3478" {
		t.Fatalf("flags = %+v", flags)
	}
	if d := Compare(rows, flags); len(d) != 0 {
		t.Errorf("Compare found differences in agreeing docs: %q", d)
	}
}

// TestDocsCompareFinds checks that each kind of drift is reported.
func TestDocsCompareFinds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string // a change to the table
		want     string
	}{
		{"flag missing from the table", "| `--drain D` | `X_DRAIN` | `1m` | how long |\n", "", "--drain is a flag but not documented"},
		{"flag documented but gone", "| `--cpus N` |", "| `--cores N` |", "--cores is documented but --help has no such flag"},
		{"other default", "| `1m` |", "| `2m` |", "documented default `2m`"},
		{"default where none is", "| none |", "| `kube` |", "documented default `kube`"},
		{"none where a default is", "| `text` |", "| none |", "documented without a default"},
		{"value on one side only", "| `--verbose` |", "| `--verbose V` |", "documented with value \"V\""},
		{"other environment variable", "`X_DRAIN`", "`X_DRAINING`", "documented environment"},
		{"comma-separated lost", "`X_LISTEN` (comma-separated)", "`X_LISTEN`", "documented environment"},
		{"alias missing", "| `-o`, `--output F` |", "| `--output F` |", "documented as [output]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := strings.Replace(page, tc.old, tc.new, 1)
			if changed == page {
				t.Fatalf("%q is not in the page", tc.old)
			}
			rows, err := Table(changed, "<!-- flags: x --help -->")
			if err != nil {
				t.Fatal(err)
			}
			flags, err := Help(help)
			if err != nil {
				t.Fatal(err)
			}
			d := Compare(rows, flags)
			if !strings.Contains(strings.Join(d, "\n"), tc.want) {
				t.Errorf("Compare = %q, want one saying %q", d, tc.want)
			}
		})
	}
}

func TestDocsTableErrors(t *testing.T) {
	for _, tc := range []struct{ name, page string }{
		{"no marker", "| Flag | Default |\n|---|---|\n| `--a` | off |\n"},
		{"no table", "<!-- m -->\n\ntext\n"},
		{"no Default column", "<!-- m -->\n| Flag | Meaning |\n|---|---|\n| `--a` | x |\n"},
		{"not a flag", "<!-- m -->\n| Flag | Default |\n|---|---|\n| `a` | off |\n"},
		{"no rows", "<!-- m -->\n| Flag | Default |\n|---|---|\n"},
	} {
		if _, err := Table(tc.page, "<!-- m -->"); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := Help("Usage: x\n"); err == nil {
		t.Error("Help without a Flags: section: no error")
	}
}
