package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const (
	// busyboxPath and caCertsPath are the builder's defaults, which
	// `make image` keeps: Debian's busybox-static and ca-certificates.
	busyboxPath = "/bin/busybox"
	caCertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// makeTimeout bounds one `make image`: seconds with a warm build
	// cache, a few minutes cold.
	makeTimeout = 10 * time.Minute
)

// tmpDir holds this run's builds.
var tmpDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "imagetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagetest:", err)

		return 1
	}
	defer os.RemoveAll(dir)
	tmpDir = dir

	return m.Run()
}

// makeImage runs `make image` with its output in dir.
func makeImage(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), makeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "image", "IMAGE_DIR="+dir)
	cmd.Dir = root
	// Not the jobserver of a make this test may run under.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("make image IMAGE_DIR=%s: %w\n%s", dir, err, out)
	}
	fmt.Fprintf(os.Stderr, "imagetest: make image IMAGE_DIR=%s in %s\n", dir, time.Since(start).Round(time.Millisecond))

	return dir, nil
}

var (
	// firstBuild is the build under test: make unit's (STUND_IMAGE_DIR)
	// or one of this run's.
	firstBuild = sync.OnceValues(func() (string, error) {
		if d := os.Getenv("STUND_IMAGE_DIR"); d != "" {
			return d, nil
		}

		return makeImage(filepath.Join(tmpDir, "first"))
	})
	// secondBuild is another build of the same tree, to compare bytes.
	secondBuild = sync.OnceValues(func() (string, error) {
		return makeImage(filepath.Join(tmpDir, "second"))
	})
)

// needBusybox skips a test that builds the images on a machine without
// busybox-static, and fails it in CI, which must have installed it.
func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busyboxPath); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: CI installs busybox-static (.ci/deps) for make image", busyboxPath)
	}
	t.Skipf("%s is missing: install busybox-static (sudo bash .ci/deps) to build and check the images", busyboxPath)
}

// imageDir returns the directory of the tarballs under test.
func imageDir(t *testing.T) string {
	t.Helper()
	needBusybox(t)
	dir, err := firstBuild()
	if err != nil {
		t.Fatal(err)
	}

	return dir
}

var archives = struct {
	sync.Mutex
	m map[string]*archive
}{m: map[string]*archive{}}

// openImage reads one image's tarball of the build under test, once.
func openImage(t *testing.T, img specImage) *archive {
	t.Helper()
	p := filepath.Join(imageDir(t), expand(t, img.File, vars(t)))
	archives.Lock()
	defer archives.Unlock()
	if a, ok := archives.m[p]; ok {
		return a
	}
	a, err := readArchive(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	archives.m[p] = a

	return a
}

// applets returns what busybox --list prints.
func applets(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", busyboxPath, err)
	}

	return strings.Fields(string(out))
}

// staticELF says why data is not a static ELF executable, or nil.
func staticELF(data []byte) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an ELF file: %w", err)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("ELF type %s, want an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked: it names an interpreter")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("dynamically linked against %v", libs)
	}

	return nil
}

// TestTarballs opens every tarball of the build and checks it against
// images.json: the tag (the chart's defaults for stund), the config, and
// layer by layer exactly the files the spec lists with their owners,
// modes, content and one timestamp; every binary static.
func TestTarballs(t *testing.T) {
	s := loadSpec(t)
	v := vars(t)
	dir := imageDir(t)
	for _, img := range s.Images {
		t.Run(img.Name, func(t *testing.T) {
			a := openImage(t, img)
			if want := []string{expand(t, img.Tag, v)}; !slices.Equal(a.repoTags, want) {
				t.Errorf("manifest.json RepoTags %q, want %q", a.repoTags, want)
			}
			want := img.Config
			want.Labels = map[string]string{}
			for k, l := range img.Config.Labels {
				want.Labels[k] = expand(t, l, v)
			}
			if !reflect.DeepEqual(a.config.Config, want) {
				t.Errorf("config %+v\nspec   %+v", a.config.Config, want)
			}
			if a.config.OS != "linux" || a.config.Architecture != runtime.GOARCH {
				t.Errorf("platform %s/%s, want linux/%s (make image builds for this machine)", a.config.OS, a.config.Architecture, runtime.GOARCH)
			}
			created := a.config.Created
			if created.IsZero() {
				t.Error("config: no created time")
			}
			if len(a.config.History) != len(img.Layers) {
				t.Errorf("config: %d history entries, %d layers", len(a.config.History), len(img.Layers))
			}
			for i, h := range a.config.History {
				if !h.Created.Equal(created) || h.EmptyLayer || h.CreatedBy == "" {
					t.Errorf("config: history[%d] %+v: want created %s, a layer and what made it", i, h, created)
				}
			}
			if len(a.layers) != len(img.Layers) {
				t.Fatalf("%d layers, the spec lists %v", len(a.layers), img.Layers)
			}
			for i, name := range img.Layers {
				checkLayer(t, dir, name, s.Layers[name], a.layers[i], created)
			}
		})
	}
}

// checkLayer compares a layer with its files in the spec: the same paths
// (with their parent directories and busybox's applet links), types,
// modes, owners and content, every entry at the image's created time.
func checkLayer(t *testing.T, dir, name string, files []specFile, l *layer, created time.Time) {
	t.Helper()
	listed := map[string]bool{}
	implied := map[string]bool{}
	for _, f := range files {
		listed[f.Path] = true
		for _, p := range parents(f.Path) {
			implied[p] = true
		}
		e := l.entries[f.Path]
		if e == nil {
			t.Errorf("layer %s: no %s", name, f.Path)

			continue
		}
		wantType := byte(tar.TypeReg)
		if f.Type == "dir" {
			wantType = tar.TypeDir
		}
		if e.hdr.Typeflag != wantType || e.hdr.Mode != f.mode(t) || e.hdr.Uid != f.UID || e.hdr.Gid != f.GID {
			t.Errorf("layer %s: %s: type %c mode %o owner %d:%d, want %c %s %d:%d",
				name, f.Path, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, wantType, f.Mode, f.UID, f.GID)
		}
		var src string
		switch {
		case f.Text != "":
			if string(e.data) != f.Text {
				t.Errorf("layer %s: %s: content %q, want %q", name, f.Path, e.data, f.Text)
			}
		case f.From == "busybox":
			src = busyboxPath
		case f.From == "ca-certificates":
			src = caCertsPath
		case strings.HasPrefix(f.From, "bin/"):
			src = filepath.Join(dir, "bin", strings.TrimPrefix(f.From, "bin/"))
		case f.From != "":
			t.Errorf("%s: %s: unknown source %q", specPath, f.Path, f.From)
		}
		if src != "" {
			if raw, err := os.ReadFile(src); err != nil {
				t.Error(err)
			} else if !bytes.Equal(raw, e.data) {
				t.Errorf("layer %s: %s is not %s", name, f.Path, src)
			}
		}
		if f.From != "" && f.From != "ca-certificates" {
			if err := staticELF(e.data); err != nil {
				t.Errorf("layer %s: %s: %v", name, f.Path, err)
			}
		}
		if f.Applets {
			list := applets(t)
			if !slices.Contains(list, "sh") {
				t.Errorf("%s --list has no sh", busyboxPath)
			}
			for _, a := range list {
				link := path.Join(path.Dir(f.Path), a)
				if link == f.Path {
					continue // the binary itself, when it lists its own name
				}
				listed[link] = true
				if e := l.entries[link]; e == nil || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != path.Base(f.Path) {
					t.Errorf("layer %s: %s is not a symlink to %s", name, link, path.Base(f.Path))
				}
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(l.entries)) {
		e := l.entries[p]
		switch {
		case listed[p]:
		case implied[p]:
			if e.hdr.Typeflag != tar.TypeDir || e.hdr.Mode != 0o755 || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
				t.Errorf("layer %s: parent directory %s: type %c mode %o owner %d:%d, want a directory 755 0:0",
					name, p, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid)
			}
		default:
			t.Errorf("layer %s: %s is not in %s", name, p, specPath)
		}
		if !e.hdr.ModTime.Equal(created) {
			t.Errorf("layer %s: %s: time %s, the image's %s", name, p, e.hdr.ModTime.UTC(), created)
		}
		if !e.hdr.AccessTime.IsZero() || !e.hdr.ChangeTime.IsZero() || len(e.hdr.PAXRecords) > 0 {
			t.Errorf("layer %s: %s: access or change time or PAX records, which vary between builds", name, p)
		}
	}
	for p := range implied {
		if l.entries[p] == nil {
			t.Errorf("layer %s: no parent directory %s", name, p)
		}
	}
}

// memberDigests returns the SHA-256 of each member of a tarball.
func memberDigests(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if _, err := io.Copy(h, tr); err != nil {
			return nil, err
		}
		out[hdr.Name] = hex.EncodeToString(h.Sum(nil))
	}
}

// TestReproducible builds the images a second time and compares the
// tarballs byte for byte; on a difference it names the members that
// differ.
func TestReproducible(t *testing.T) {
	s := loadSpec(t)
	v := vars(t)
	dir := imageDir(t)
	second, err := secondBuild()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range s.Images {
		file := expand(t, img.File, v)
		a, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(second, file))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) {
			t.Logf("%s: sha256:%s both times", file, sha256Hex(a))

			continue
		}
		hint := ""
		if os.Getenv("STUND_IMAGE_DIR") != "" {
			hint = " (STUND_IMAGE_DIR may hold an older make image: run it again)"
		}
		t.Errorf("%s: sha256:%s, then sha256:%s%s", file, sha256Hex(a), sha256Hex(b), hint)
		da, errA := memberDigests(filepath.Join(dir, file))
		db, errB := memberDigests(filepath.Join(second, file))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		for _, m := range slices.Sorted(maps.Keys(da)) {
			if db[m] != da[m] {
				t.Errorf("%s: member %s differs or is missing in the second build", file, m)
			}
		}
	}
}

// extractImage writes an image's files to a new directory.
func extractImage(t *testing.T, a *archive) string {
	t.Helper()
	dir := t.TempDir()
	if err := a.extract(dir); err != nil {
		t.Fatal(err)
	}

	return dir
}

// TestStundVersion runs the image's /stund: it starts on this machine
// with nothing but the image's files, and carries the chart's appVersion.
func TestStundVersion(t *testing.T) {
	s := loadSpec(t)
	rootfs := extractImage(t, openImage(t, s.image(t, "stund")))
	out, err := exec.Command(filepath.Join(rootfs, "stund"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("/stund --version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "stund "+appVersion(t); got != want {
		t.Errorf("/stund --version: %q, want %q", got, want)
	}
}

// TestChartTestPod checks the debug image against the chart's helm test
// pod: the command it runs (/busybox/sh) resolves inside the image to the
// busybox binary and runs a script, the /stuncheck it calls is there, and
// the pod's user is the image's. It also checks the chart's image
// defaults are the tags `make image` writes.
func TestChartTestPod(t *testing.T) {
	s := loadSpec(t)
	v := vars(t)
	var values struct {
		Image struct {
			Repository string `json:"repository"`
		} `json:"image"`
		Tests struct {
			Image struct {
				Repository string `json:"repository"`
			} `json:"image"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(readFile(t, "charts/stund/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ image, want string }{
		{"stund", values.Image.Repository + ":" + v["version"]},
		{"stund-debug", values.Tests.Image.Repository + ":" + v["version"] + "-debug"},
	} {
		if got := expand(t, s.image(t, c.image).Tag, v); got != c.want {
			t.Errorf("make image tags %s %s, the chart's default is %s", c.image, got, c.want)
		}
	}

	tmpl := string(readFile(t, "charts/stund/templates/tests/test-stuncheck.yaml"))
	cmd := regexp.MustCompile(`(?m)^\s+command:\n\s+- (\S+)\n\s+- -c$`).FindStringSubmatch(tmpl)
	if cmd == nil {
		t.Fatal("the helm test pod has no `command: [SHELL, -c]`")
	}
	for _, id := range []string{"runAsUser", "runAsGroup"} {
		m := regexp.MustCompile(id + `: (\d+)`).FindStringSubmatch(tmpl)
		uid, gid, _ := strings.Cut(s.image(t, "stund-debug").Config.User, ":")
		want := map[string]string{"runAsUser": uid, "runAsGroup": gid}[id]
		if m == nil || m[1] != want {
			t.Errorf("the helm test pod's %s is %v, the debug image's user %s:%s", id, m, uid, gid)
		}
	}

	debug := openImage(t, s.image(t, "stund-debug"))
	fs := debug.rootfs()
	for _, p := range []string{cmd[1], "/stuncheck"} {
		if !strings.Contains(tmpl, p) {
			t.Errorf("the helm test pod does not use %s", p)
		}
		if fs[p] == nil {
			t.Errorf("the debug image has no %s, which the helm test pod runs", p)
		}
	}
	rootfs := extractImage(t, debug)
	// tr from the image's applets, not this machine's.
	sh := exec.Command(filepath.Join(rootfs, cmd[1]), "-c", `say() { printf '%s\n' "$*"; }; say "$(echo ok | tr a-z A-Z)"`)
	sh.Env = []string{"PATH=" + filepath.Join(rootfs, "busybox")}
	out, err := sh.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Errorf("%s -c in the debug image: %v: %q, want OK", cmd[1], err, out)
	}
}
