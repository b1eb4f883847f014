// Package flagdoc reads the flag tables of docs/ and the flag list that a
// command's --help prints, and says where they differ, for the tests that
// keep the documentation of stund and stuncheck true.
package flagdoc

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one flag of a documented flag table.
type Row struct {
	Line  int      // 1-based line in the page
	Names []string // without dashes, e.g. "o" and "output"
	Arg   string   // the value's placeholder; empty for a boolean flag
	// Default is the Default column as written.
	Default string
	// Env are the environment variables the Env column names; HasEnv
	// says whether the table has that column at all.
	Env     []string
	EnvList bool // the Env column says comma-separated
	HasEnv  bool
}

// Flag is one flag as --help lists it.
type Flag struct {
	Names   []string // without dashes
	Arg     string   // the value's placeholder; empty for a boolean flag
	Default string   // from "(default X)"; empty when none is printed
	Env     []string // from "[STUND_X, …]"
	EnvList bool     // the brackets say comma-separated
}

var (
	codeSpanRE = regexp.MustCompile("`([^`]+)`")
	envRE      = regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b`)
	bracketRE  = regexp.MustCompile(`\[([A-Z][^\]]*)\]`)
	defaultRE  = regexp.MustCompile(`\(default:? "?([^")]*?)"?\)`)
	allCodeRE  = regexp.MustCompile("^`[^`]+`(, `[^`]+`)*$")
)

// cells splits a Markdown table row on the pipes that are not escaped.
func cells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var out []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}

	return append(out, strings.TrimSpace(cur.String()))
}

// flagToken splits "--gso=false" or "-o" into the name and what follows
// an equals sign.
func flagToken(tok string) (name, value string, ok bool) {
	if !strings.HasPrefix(tok, "-") {
		return "", "", false
	}
	name, value, _ = strings.Cut(strings.TrimLeft(tok, "-"), "=")

	return name, value, name != ""
}

// Table reads the flag table that follows the line holding marker in
// page: a Markdown table whose columns include Flag and Default, and
// optionally Env.
func Table(page, marker string) ([]Row, error) {
	lines := strings.Split(page, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, marker) })
	if start < 0 {
		return nil, fmt.Errorf("no line %q", marker)
	}
	i := start + 1
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i]), "|") {
		return nil, fmt.Errorf("no table after %q", marker)
	}
	header := cells(lines[i])
	col := func(name string) int { return slices.Index(header, name) }
	flagCol, defCol, envCol := col("Flag"), col("Default"), col("Env")
	if flagCol < 0 || defCol < 0 {
		return nil, fmt.Errorf("line %d: the table after %q has no Flag or no Default column", i+1, marker)
	}
	var rows []Row
	for i += 2; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
		c := cells(lines[i])
		if len(c) != len(header) {
			return nil, fmt.Errorf("line %d: %d cells, the header has %d", i+1, len(c), len(header))
		}
		r := Row{Line: i + 1, Default: c[defCol], HasEnv: envCol >= 0}
		for _, span := range codeSpanRE.FindAllStringSubmatch(c[flagCol], -1) {
			f := strings.Fields(span[1])
			name, _, ok := flagToken(f[0])
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not a flag", i+1, span[1])
			}
			r.Names = append(r.Names, name)
			if len(f) > 1 {
				r.Arg = f[1]
			}
		}
		if len(r.Names) == 0 {
			return nil, fmt.Errorf("line %d: no `--flag` in the Flag column", i+1)
		}
		if r.HasEnv {
			r.Env = envRE.FindAllString(c[envCol], -1)
			r.EnvList = strings.Contains(c[envCol], "comma-separated")
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("the table after %q has no rows", marker)
	}

	return rows, nil
}

// Help reads the flags of a --help text: the lines after "Flags:" up to
// the next blank line, each flag on a line that starts with two spaces
// and a dash ("  --name ARG  usage" or "  -o, --output FORMAT  usage"),
// its usage on that line and the more indented ones below it.
func Help(help string) ([]Flag, error) {
	lines := strings.Split(help, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "Flags:" })
	if start < 0 {
		return nil, errors.New("no Flags: section")
	}
	var (
		flags  []Flag
		usages []string
	)
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		if !strings.HasPrefix(l, "  -") {
			if len(flags) == 0 {
				return nil, fmt.Errorf("%q: usage before any flag", l)
			}
			usages[len(usages)-1] += " " + strings.TrimSpace(l)

			continue
		}
		head, usage, _ := strings.Cut(strings.TrimSpace(l), "  ")
		var f Flag
		for _, part := range strings.Split(head, ", ") {
			fields := strings.Fields(part)
			name, value, ok := flagToken(fields[0])
			if !ok {
				return nil, fmt.Errorf("%q: %q is not a flag", l, fields[0])
			}
			f.Names = append(f.Names, name)
			if value == "false" { // "--gso=false": a boolean that is on by default
				f.Default = "true"
			}
			if len(fields) > 1 {
				f.Arg = fields[1]
			}
		}
		flags = append(flags, f)
		usages = append(usages, strings.TrimSpace(usage))
	}
	for i := range flags {
		if m := defaultRE.FindAllStringSubmatch(usages[i], -1); m != nil {
			flags[i].Default = m[len(m)-1][1]
		}
		if m := bracketRE.FindStringSubmatch(usages[i]); m != nil {
			flags[i].Env = envRE.FindAllString(m[1], -1)
			flags[i].EnvList = strings.Contains(m[1], "comma-separated")
		}
	}
	if len(flags) == 0 {
		return nil, errors.New("no flag in the Flags: section")
	}

	return flags, nil
}

// sameDefault compares two defaults as durations or numbers when both
// parse as such, as text otherwise.
func sameDefault(a, b string) bool {
	if a == b {
		return true
	}
	if da, err := time.ParseDuration(a); err == nil {
		db, err := time.ParseDuration(b)

		return err == nil && da == db
	}
	if fa, err := strconv.ParseFloat(a, 64); err == nil {
		fb, err := strconv.ParseFloat(b, 64)

		return err == nil && fa == fb
	}

	return false
}

// Compare returns, one sentence each, where a documented table and the
// flags of --help differ: a flag missing on either side, other aliases,
// a value on one side only, another default where the table states one
// (one or more code spans; "off" for a boolean, "none" for no default;
// other words are not compared), other environment variables.
func Compare(rows []Row, flags []Flag) []string {
	var diffs []string
	byName := map[string]*Row{}
	for i := range rows {
		for _, n := range rows[i].Names {
			if byName[n] != nil {
				diffs = append(diffs, fmt.Sprintf("line %d: --%s is documented twice", rows[i].Line, n))
			}
			byName[n] = &rows[i]
		}
	}
	seen := map[*Row]bool{}
	for _, f := range flags {
		var r *Row
		for _, n := range f.Names {
			if r = byName[n]; r != nil {
				break
			}
		}
		if r == nil {
			diffs = append(diffs, fmt.Sprintf("--%s is a flag but not documented", f.Names[0]))

			continue
		}
		seen[r] = true
		name := fmt.Sprintf("line %d: --%s", r.Line, f.Names[0])
		if !slices.Equal(slices.Sorted(slices.Values(r.Names)), slices.Sorted(slices.Values(f.Names))) {
			diffs = append(diffs, fmt.Sprintf("%s is documented as %v, --help has %v", name, r.Names, f.Names))
		}
		if (r.Arg == "") != (f.Arg == "") {
			diffs = append(diffs, fmt.Sprintf("%s: documented with value %q, --help with %q", name, r.Arg, f.Arg))
		}
		def := strings.TrimSpace(r.Default)
		switch {
		case def == "off":
			if f.Arg != "" || (f.Default != "" && f.Default != "false") {
				diffs = append(diffs, fmt.Sprintf("%s: documented default off, --help has a value %q, default %q", name, f.Arg, f.Default))
			}
		case strings.HasPrefix(def, "none"):
			if f.Default != "" {
				diffs = append(diffs, fmt.Sprintf("%s: documented without a default, --help says %q", name, f.Default))
			}
		case allCodeRE.MatchString(def):
			var vals []string
			for _, m := range codeSpanRE.FindAllStringSubmatch(def, -1) {
				vals = append(vals, m[1])
			}
			if !sameDefault(strings.Join(vals, ", "), f.Default) {
				diffs = append(diffs, fmt.Sprintf("%s: documented default %s, --help says %q", name, def, f.Default))
			}
		}
		if r.HasEnv {
			if !slices.Equal(r.Env, f.Env) || r.EnvList != f.EnvList {
				diffs = append(diffs, fmt.Sprintf("%s: documented environment %v (comma-separated: %t), --help has %v (%t)",
					name, r.Env, r.EnvList, f.Env, f.EnvList))
			}
		}
	}
	for i := range rows {
		if !seen[&rows[i]] {
			diffs = append(diffs, fmt.Sprintf("line %d: --%s is documented but --help has no such flag", rows[i].Line, rows[i].Names[0]))
		}
	}

	return diffs
}
