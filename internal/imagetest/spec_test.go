package imagetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	// root is the module's directory, relative to this package.
	root = "../.."
	// specPath is the images' description the builder embeds.
	specPath = "tools/image/images.json"
)

// spec mirrors tools/image/images.json. It is decoded strictly: a field
// the builder learns and these tests do not fails here first.
type spec struct {
	Comment []string              `json:"comment"`
	Layers  map[string][]specFile `json:"layers"`
	Images  []specImage           `json:"images"`
}

type specFile struct {
	Path    string `json:"path"`
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	From    string `json:"from"`
	Text    string `json:"text"`
	Applets bool   `json:"applets"`
}

type specImage struct {
	Name       string `json:"name"`
	File       string `json:"file"`
	Tag        string `json:"tag"`
	Dockerfile *struct {
		Target string `json:"target"`
		From   string `json:"from"`
	} `json:"dockerfile"`
	Layers []string    `json:"layers"`
	Config imageConfig `json:"config"`
}

// imageConfig is the part of an image config the spec sets; the tarball's
// config is decoded into it strictly too.
type imageConfig struct {
	User         string              `json:"User"`
	Entrypoint   []string            `json:"Entrypoint"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	Env          []string            `json:"Env"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
}

// readFile reads a file of the repository.
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}

	return raw
}

// decodeStrict decodes JSON, refusing unknown fields and trailing data.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errTrailing
	}

	return nil
}

var errTrailing = errors.New("data after the JSON value")

// loadSpec reads images.json.
func loadSpec(t *testing.T) *spec {
	t.Helper()
	var s spec
	if err := decodeStrict(readFile(t, specPath), &s); err != nil {
		t.Fatalf("%s: %v", specPath, err)
	}
	if len(s.Images) < 3 {
		t.Fatalf("%s: %d images, want stund, its debug image and pause", specPath, len(s.Images))
	}

	return &s
}

// image returns the spec's image of that name.
func (s *spec) image(t *testing.T, name string) specImage {
	t.Helper()
	for _, img := range s.Images {
		if img.Name == name {
			return img
		}
	}
	t.Fatalf("%s has no image %q", specPath, name)

	return specImage{}
}

// files returns every file entry of the image's layers, in order.
func (s *spec) files(img specImage) []specFile {
	var out []specFile
	for _, l := range img.Layers {
		out = append(out, s.Layers[l]...)
	}

	return out
}

// mode parses a spec file's octal mode.
func (f specFile) mode(t *testing.T) int64 {
	t.Helper()
	m, err := strconv.ParseInt(f.Mode, 8, 64)
	if err != nil {
		t.Fatalf("%s: %s: mode %q: %v", specPath, f.Path, f.Mode, err)
	}

	return m
}

// appVersion is the chart's appVersion, which `make image` tags with.
func appVersion(t *testing.T) string {
	t.Helper()
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(readFile(t, "charts/stund/Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion == "" {
		t.Fatal("charts/stund/Chart.yaml has no appVersion")
	}

	return chart.AppVersion
}

// makeDefault returns the default of a `NAME ?= value` line of the Makefile.
func makeDefault(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` \?= (\S+)\s*$`).FindSubmatch(readFile(t, "Makefile"))
	if m == nil {
		t.Fatalf("Makefile has no line %q", name+" ?= …")
	}

	return string(m[1])
}

// vars are the builder's placeholders as `make image` fills them.
func vars(t *testing.T) map[string]string {
	t.Helper()

	return map[string]string{
		"version":    appVersion(t),
		"repository": makeDefault(t, "IMAGE_REPO"),
		"pauseTag":   makeDefault(t, "PAUSE_TAG"),
	}
}

var placeholderRE = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// expand fills the {placeholders} of s.
func expand(t *testing.T, s string, v map[string]string) string {
	t.Helper()

	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		val, ok := v[p[1:len(p)-1]]
		if !ok {
			t.Fatalf("%s: %q: unknown placeholder %s", specPath, s, p)
		}

		return val
	})
}

// parents returns the directories above an absolute path, "/" excluded.
func parents(p string) []string {
	var out []string
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		out = append(out, dir)
	}

	return out
}

// passwdHas reports whether a passwd or group text has an entry whose
// third field is id.
func passwdHas(text, id string) bool {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Split(line, ":"); len(f) >= 3 && f[2] == id {
			return true
		}
	}

	return false
}

// TestSpec checks that images.json holds together: every image's layers
// exist, an image with /etc/passwd has entries for its user and group,
// and the stund images' user is the one the chart runs as.
func TestSpec(t *testing.T) {
	s := loadSpec(t)
	var values struct {
		PodSecurityContext struct {
			RunAsUser  int `json:"runAsUser"`
			RunAsGroup int `json:"runAsGroup"`
		} `json:"podSecurityContext"`
	}
	if err := yaml.Unmarshal(readFile(t, "charts/stund/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	chartUser := strconv.Itoa(values.PodSecurityContext.RunAsUser) + ":" + strconv.Itoa(values.PodSecurityContext.RunAsGroup)
	for _, img := range s.Images {
		t.Run(img.Name, func(t *testing.T) {
			for _, l := range img.Layers {
				if _, ok := s.Layers[l]; !ok {
					t.Errorf("no layer %q", l)
				}
			}
			uid, gid, ok := strings.Cut(img.Config.User, ":")
			if !ok {
				t.Fatalf("User %q is not UID:GID", img.Config.User)
			}
			for _, f := range s.files(img) {
				switch f.Path {
				case "/etc/passwd":
					if !passwdHas(f.Text, uid) {
						t.Errorf("/etc/passwd has no user %s", uid)
					}
				case "/etc/group":
					if !passwdHas(f.Text, gid) {
						t.Errorf("/etc/group has no group %s", gid)
					}
				}
			}
			if img.Dockerfile != nil && img.Config.User != chartUser {
				t.Errorf("User %s, but the chart runs stund as %s (values.yaml podSecurityContext)", img.Config.User, chartUser)
			}
		})
	}
}
