package exporter

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

const deployDir = "../../../deploy"

// promtool returns the path of promtool, skipping the test without it;
// under CI=true a missing promtool fails instead.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and promtool is missing (Debian: apt-get install prometheus; .ci/deps installs it)")
		}
		t.Skip("promtool is missing (Debian: apt-get install prometheus)")
	}

	return p
}

// TestPrometheusFiles checks the shipped rules (syntax and their unit
// tests) and the example scrape configuration with promtool.
func TestPrometheusFiles(t *testing.T) {
	pt := promtool(t)
	dir := filepath.Join(deployDir, "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "stuncheck-rules.yml"},
		{"test", "rules", "stuncheck-rules.test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestRulesUseExportedMetrics checks that every stuncheck_ metric the
// rules name is one the exporter answers with.
func TestRulesUseExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "stuncheck-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := probeRegistry(outcome{}).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	names = append(names, "stuncheck_probe_verdict", "stuncheck_probe_relay_works") // vectors without series here
	used := regexp.MustCompile(`stuncheck_[a-z_]+`).FindAllString(string(raw), -1)
	if len(used) < 3 {
		t.Fatalf("the rules name %d stuncheck metrics", len(used))
	}
	for _, n := range used {
		if !slices.Contains(names, n) {
			t.Errorf("the rules use %s, which the exporter does not export", n)
		}
	}
}

// TestExampleConfig loads the shipped example modules.
func TestExampleConfig(t *testing.T) {
	f, err := LoadFile(filepath.Join(deployDir, "exporter.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Modules[DefaultModule]; !ok {
		t.Error("the example has no default module")
	}
}
