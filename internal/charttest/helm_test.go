package charttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const (
	// chartDir is the chart under test, relative to this package.
	chartDir = "../../charts/stund"
	// kubeVersion is the cluster version the chart is rendered for. A helm
	// built with `go install` assumes v1.20 otherwise, which the chart's
	// kubeVersion constraint refuses.
	kubeVersion = "1.34.0"
	// release and namespace of every render.
	release   = "stund"
	namespace = "stun-system"
)

var (
	// helmBin and stundBin are built once in TestMain.
	helmBin  string
	stundBin string
	// helmEnv keeps helm's cache, config and data out of the user's home.
	helmEnv []string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "charttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "charttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	helmEnv = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"),
		"KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"),
	)
	if err := buildTools(dir); err != nil {
		fmt.Fprintln(os.Stderr, "charttest:", err)
		return 1
	}

	return m.Run()
}

// buildTools builds helm (unless STUND_HELM names one) and stund into dir.
func buildTools(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}

	stundBin = filepath.Join(dir, "stund")
	build := exec.Command(goBin, "build", "-o", stundBin, "github.com/stund/stund/cmd/stund")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build cmd/stund: %w\n%s", err, out)
	}

	if p := os.Getenv("STUND_HELM"); p != "" {
		helmBin = p
	} else {
		// `go install pkg@version` builds outside any module, so it is run
		// from the temp dir with module flags cleared; the first build takes
		// minutes, later ones come from the build cache.
		helmBin = filepath.Join(dir, "helm")
		start := time.Now()
		install := exec.Command(goBin, "install", HelmModule)
		install.Dir = dir
		install.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "GOWORK=off")
		if out, err := install.CombinedOutput(); err != nil {
			return fmt.Errorf("go install %s (set STUND_HELM to a helm v3.22 binary to skip this): %w\n%s", HelmModule, err, out)
		}
		fmt.Fprintf(os.Stderr, "charttest: built %s in %s\n", HelmModule, time.Since(start).Round(time.Second))
	}
	out, err := exec.Command(helmBin, "version", "--short").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s version: %w\n%s", helmBin, err, out)
	}
	if !strings.HasPrefix(string(out), "v3.22") {
		return fmt.Errorf("%s is %s, want v3.22", helmBin, bytes.TrimSpace(out))
	}

	return nil
}

// helm runs the helm binary and returns its standard output, or an error
// carrying standard error.
func helm(args ...string) (string, error) {
	cmd := exec.Command(helmBin, args...)
	cmd.Env = helmEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}

	return stdout.String(), nil
}

// templateArgs returns `helm template` arguments for chart with the given
// values files (in testdata/) and --set options.
func templateArgs(chart string, files []string, sets []string) []string {
	args := []string{"template", release, chart, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, f := range files {
		args = append(args, "--values", filepath.Join("testdata", f))
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}

	return args
}

// object is one rendered manifest, decoded into its typed API object.
type object struct {
	Kind   string
	Name   string
	Source string // the template it came from
	Obj    any
}

// manifests is everything one `helm template` rendered.
type manifests []object

// newObject returns an empty typed object for apiVersion and kind, or nil
// when the chart is not expected to render that kind.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Pod":
		return &corev1.Pod{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	}

	return nil
}

var (
	docSep    = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceRef = regexp.MustCompile(`(?m)^# Source: (\S+)`)
)

// decodeStrict converts one YAML document to JSON (refusing duplicate keys)
// and decodes it into obj, refusing unknown fields and trailing data.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the object")
	}

	return nil
}

// parseManifests splits helm template output and decodes every document
// strictly into its typed object.
func parseManifests(t *testing.T, out string) manifests {
	t.Helper()
	var ms manifests
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		source := ""
		if m := sourceRef.FindStringSubmatch(doc); m != nil {
			source = m[1]
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", source, err, doc)
		}
		obj := newObject(head.APIVersion, head.Kind)
		if obj == nil {
			t.Fatalf("%s: unexpected %s %s", source, head.APIVersion, head.Kind)
		}
		if err := decodeStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: %s %q does not decode strictly into %T: %v\n%s", source, head.Kind, head.Metadata.Name, obj, err, doc)
		}
		ms = append(ms, object{Kind: head.Kind, Name: head.Metadata.Name, Source: source, Obj: obj})
	}
	if len(ms) == 0 {
		t.Fatalf("helm template rendered nothing")
	}

	return ms
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}

	return b.String()
}

// render runs helm template with values files and --set options and decodes
// the result; it fails the test when helm fails.
func render(t *testing.T, files []string, sets ...string) manifests {
	t.Helper()
	out, err := helm(templateArgs(chartDir, files, sets)...)
	if err != nil {
		t.Fatal(err)
	}

	return parseManifests(t, out)
}

// all returns the objects of type T.
func all[T any](ms manifests) []*T {
	var out []*T
	for _, o := range ms {
		if v, ok := o.Obj.(*T); ok {
			out = append(out, v)
		}
	}

	return out
}

// one returns the single object of type T named name, failing the test when
// there is none.
func one[T any](t *testing.T, ms manifests, name string) *T {
	t.Helper()
	for _, o := range ms {
		if v, ok := o.Obj.(*T); ok && o.Name == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %q rendered; have %s", &zero, name, ms.names())

	return nil
}

// kinds counts the rendered objects per kind.
func (ms manifests) kinds() map[string]int {
	n := map[string]int{}
	for _, o := range ms {
		n[o.Kind]++
	}

	return n
}

func (ms manifests) names() string {
	var s []string
	for _, o := range ms {
		s = append(s, o.Kind+"/"+o.Name)
	}

	return strings.Join(s, ", ")
}

// renderNotes renders templates/NOTES.txt, which helm template does not print
// and helm install --dry-run cannot render without a cluster: it copies the
// chart, adds the NOTES source as a plain file and a template that renders it
// with tpl into a ConfigMap, and returns that ConfigMap's text.
func renderNotes(t *testing.T, files []string, sets ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stund")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes-under-test.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	const probe = `apiVersion: v1
kind: ConfigMap
metadata:
  name: notes-under-test
data:
  NOTES.txt: {{ tpl (.Files.Get "notes-under-test.txt") . | toJson }}
`
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-notes-under-test.yaml"), []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(templateArgs(dir, nil, sets), "--show-only", "templates/zz-notes-under-test.yaml")
	for _, f := range files {
		abs, err := filepath.Abs(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", abs)
	}
	out, err := helm(args...)
	if err != nil {
		t.Fatal(err)
	}
	cm := one[corev1.ConfigMap](t, parseManifests(t, out), "notes-under-test")

	return cm.Data["NOTES.txt"]
}
