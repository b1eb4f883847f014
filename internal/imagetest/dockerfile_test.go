package imagetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// stage is one FROM … AS name section of a Dockerfile, with the
// instructions the image spec also states.
type stage struct {
	name, from string
	line       int
	user       string
	expose     []string
	entrypoint []string
	labels     map[string]string
	copies     []copyInstr
}

// copyInstr is a COPY instruction: its --from stage, sources and
// destination.
type copyInstr struct {
	from string
	srcs []string
	dest string
}

var labelRE = regexp.MustCompile(`([^\s=]+)="((?:[^"\\]|\\.)*)"`)

// parseDockerfile splits a Dockerfile into stages. It knows the
// instructions this repository's Dockerfile uses, and refuses a second
// USER, EXPOSE or ENTRYPOINT in one stage rather than guess which wins.
func parseDockerfile(text string) ([]*stage, error) {
	var (
		stages []*stage
		cur    *stage
		joined strings.Builder
		start  int
	)
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if joined.Len() == 0 {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			joined.WriteString(cont + " ")

			continue
		}
		joined.WriteString(l)
		instr := joined.String()
		joined.Reset()

		word, args, _ := strings.Cut(instr, " ")
		args = strings.TrimSpace(args)
		fields := strings.Fields(args)
		switch strings.ToUpper(word) {
		case "FROM":
			var rest []string
			for _, f := range fields {
				if !strings.HasPrefix(f, "--") {
					rest = append(rest, f)
				}
			}
			cur = &stage{from: rest[0], line: start, labels: map[string]string{}}
			if len(rest) == 3 && strings.EqualFold(rest[1], "AS") {
				cur.name = rest[2]
			}
			stages = append(stages, cur)
		case "USER", "EXPOSE", "ENTRYPOINT", "LABEL", "COPY":
			if cur == nil {
				return nil, fmt.Errorf("line %d: %s before FROM", start, word)
			}
			if err := cur.add(strings.ToUpper(word), args, fields); err != nil {
				return nil, fmt.Errorf("line %d: %w", start, err)
			}
		}
	}

	return stages, nil
}

// add records one instruction of the stage.
func (s *stage) add(word, args string, fields []string) error {
	switch word {
	case "USER":
		if s.user != "" {
			return fmt.Errorf("stage %s: a second USER", s.name)
		}
		s.user = args
	case "EXPOSE":
		if s.expose != nil {
			return fmt.Errorf("stage %s: a second EXPOSE", s.name)
		}
		for _, p := range fields {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			s.expose = append(s.expose, p)
		}
	case "ENTRYPOINT":
		if s.entrypoint != nil {
			return fmt.Errorf("stage %s: a second ENTRYPOINT", s.name)
		}
		if err := json.Unmarshal([]byte(args), &s.entrypoint); err != nil {
			return fmt.Errorf("stage %s: ENTRYPOINT %s: want the JSON (exec) form: %w", s.name, args, err)
		}
	case "LABEL":
		for _, m := range labelRE.FindAllStringSubmatch(args, -1) {
			s.labels[m[1]] = strings.ReplaceAll(m[2], `\"`, `"`)
		}
	case "COPY":
		c := copyInstr{}
		var rest []string
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "--from="); ok {
				c.from = v
			} else if !strings.HasPrefix(f, "--") {
				rest = append(rest, f)
			}
		}
		if len(rest) < 2 {
			return fmt.Errorf("stage %s: COPY %s: no source or destination", s.name, args)
		}
		c.srcs, c.dest = rest[:len(rest)-1], rest[len(rest)-1]
		s.copies = append(s.copies, c)
	}

	return nil
}

// dockerfileVars turn the Dockerfile's build arguments into the spec's
// placeholders.
var dockerfileVars = strings.NewReplacer("${VERSION}", "{version}", "$VERSION", "{version}")

// TestDockerfile checks that the Dockerfile and images.json describe the
// same images: every stage but the build stage is one of the spec's images,
// from the base image the spec names, with the same user, entrypoint,
// exposed ports and labels, and its COPY --from=build puts the same
// binaries at the same paths as the spec's bin/NAME files.
func TestDockerfile(t *testing.T) {
	stages, err := parseDockerfile(string(readFile(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	s := loadSpec(t)
	byTarget := map[string]specImage{}
	for _, img := range s.Images {
		if img.Dockerfile != nil {
			byTarget[img.Dockerfile.Target] = img
		}
	}
	if len(byTarget) < 2 {
		t.Fatalf("%s names %d Dockerfile targets, want the runtime and the debug image", specPath, len(byTarget))
	}
	seen := map[string]bool{}
	for _, st := range stages {
		if st.name == "build" {
			continue
		}
		img, ok := byTarget[st.name]
		if !ok {
			t.Errorf("Dockerfile:%d: stage %q is no image of %s", st.line, st.name, specPath)

			continue
		}
		seen[st.name] = true
		t.Run(st.name, func(t *testing.T) {
			if st.from != img.Dockerfile.From {
				t.Errorf("Dockerfile:%d: FROM %s, %s says %s", st.line, st.from, img.Name, img.Dockerfile.From)
			}
			if st.user != img.Config.User {
				t.Errorf("USER %q, %s has User %q", st.user, img.Name, img.Config.User)
			}
			if !slices.Equal(st.entrypoint, img.Config.Entrypoint) {
				t.Errorf("ENTRYPOINT %q, %s has %q", st.entrypoint, img.Name, img.Config.Entrypoint)
			}
			if got, want := slices.Sorted(slices.Values(st.expose)), slices.Sorted(maps.Keys(img.Config.ExposedPorts)); !slices.Equal(got, want) {
				t.Errorf("EXPOSE %v, %s exposes %v", got, img.Name, want)
			}
			labels := map[string]string{}
			for k, v := range st.labels {
				labels[k] = dockerfileVars.Replace(v)
			}
			if !maps.Equal(labels, img.Config.Labels) {
				t.Errorf("LABEL %v, %s has %v", labels, img.Name, img.Config.Labels)
			}

			// The binaries: Dockerfile COPY --from=build /out/NAME DEST
			// against the spec's files from bin/NAME.
			copied := map[string]string{} // path in the image -> binary name
			for _, c := range st.copies {
				if c.from != "build" {
					t.Errorf("COPY --from=%s: the spec knows only the build stage's binaries", c.from)

					continue
				}
				for _, src := range c.srcs {
					dest := c.dest
					if strings.HasSuffix(dest, "/") {
						dest = path.Join(dest, path.Base(src))
					}
					copied[dest] = path.Base(src)
				}
			}
			fromBin := map[string]string{}
			for _, f := range s.files(img) {
				if name, ok := strings.CutPrefix(f.From, "bin/"); ok {
					fromBin[f.Path] = name
				}
			}
			if !maps.Equal(copied, fromBin) {
				t.Errorf("COPY --from=build puts %v (path: binary), %s has %v", copied, img.Name, fromBin)
			}
		})
	}
	for target := range byTarget {
		if !seen[target] {
			t.Errorf("%s names Dockerfile target %q, which the Dockerfile lacks", specPath, target)
		}
	}
}

// TestBuildFlags checks that `make image` builds stund and stuncheck as the
// Dockerfile does: static (CGO_ENABLED=0), -trimpath -buildvcs=false, and
// the same -ldflags with the version.
func TestBuildFlags(t *testing.T) {
	dockerfile := string(readFile(t, "Dockerfile"))
	recipe := imageRecipe(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "./cmd/stund", "./cmd/stuncheck"} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("the Dockerfile's build has no %s", want)
		}
		if !strings.Contains(recipe, want) {
			t.Errorf("make image's build has no %s", want)
		}
	}
	df := regexp.MustCompile(`-ldflags="([^"]*)"`).FindStringSubmatch(dockerfile)
	mk := regexp.MustCompile(`-ldflags='([^']*)'[^\n]*\./cmd/stund`).FindStringSubmatch(recipe)
	if df == nil || mk == nil {
		t.Fatalf("no -ldflags for ./cmd/stund: Dockerfile %q, make image %q", df, mk)
	}
	if got, want := strings.ReplaceAll(mk[1], "$(IMAGE_VERSION)", "VERSION"), strings.ReplaceAll(df[1], "${VERSION}", "VERSION"); got != want {
		t.Errorf("make image builds with -ldflags %q, the Dockerfile with %q", mk[1], df[1])
	}
}

// imageRecipe returns the recipe of the Makefile's image target, one
// command a line.
func imageRecipe(t *testing.T) string {
	t.Helper()
	mk := string(readFile(t, "Makefile"))
	_, rest, ok := strings.Cut(mk, "\nimage:")
	if !ok {
		t.Fatal("Makefile has no image target")
	}
	var b strings.Builder
	for _, l := range strings.Split(rest, "\n")[1:] {
		if !strings.HasPrefix(l, "\t") {
			break
		}
		line, cont := strings.CutSuffix(l, `\`)
		b.WriteString(strings.TrimSpace(line))
		if cont {
			b.WriteString(" ")
		} else {
			b.WriteString("\n")
		}
	}

	return b.String()
}
