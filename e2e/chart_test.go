//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceMonitorCRD stands in for prometheus-operator's CRD, without its
// schema: the real API server then accepts the kind, and what it validates
// for real is every core object the chart renders.
const serviceMonitorCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestKubeChartDryRun renders the chart with each values file of the chart
// tests (and its defaults) and sends every object to a real API server as
// a server-side dry run: validation, defaulting and admission as a real
// install gets them. A single-stack cluster takes everything but the
// dual-stack Service, which it must refuse; a dual-stack cluster takes
// that too.
func TestKubeChartDryRun(t *testing.T) {
	helm := helmTool(t)
	kubectl := kubeTool(t, "kubectl")
	files := []string{""} // the defaults
	entries, err := os.ReadDir("../internal/charttest/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			files = append(files, e.Name())
		}
	}
	if len(files) < 5 {
		t.Fatalf("only %d values files found", len(files))
	}
	for _, c := range []struct {
		name, ranges string
		refused      map[string]string // values file → what the refusal says
	}{
		{"single-stack", "10.96.0.0/16", map[string]string{"dualstack.yaml": "RequireDualStack"}},
		{"dual-stack", "10.96.0.0/16,fd00:96::/108", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := NewKubeAPI(t, c.ranges)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := k.API.CoreV1().Namespaces().Create(ctx,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clusterNS}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			k.kubectl(t, kubectl, serviceMonitorCRD, "apply", "-f", "-")
			for _, f := range files {
				name := f
				if name == "" {
					name = "defaults"
				}
				t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
					args := []string{"template", kubeRelease, "../charts/stund", "--namespace", clusterNS,
						"--kube-version", "v1.37.2", "--api-versions", "monitoring.coreos.com/v1"}
					if f != "" {
						args = append(args, "--values", filepath.Join("../internal/charttest/testdata", f))
					}
					manifest := k.helm(t, helm, args...)
					k.createServiceAccounts(t, manifest)
					out, err := k.kubectlErr(kubectl, manifest, "apply", "--dry-run=server", "-n", clusterNS, "-f", "-")
					want, refused := c.refused[f]
					switch {
					case refused && err == nil:
						t.Errorf("the API server accepted %s; want it refused (%s):\n%s", name, want, out)
					case refused && !strings.Contains(out, want):
						t.Errorf("refused, but not for %s:\n%s", want, out)
					case !refused && err != nil:
						t.Errorf("the API server refused the chart with %s: %v\n%s", name, err, out)
					case !refused && !strings.Contains(out, "(server dry run)"):
						t.Errorf("kubectl did not do a server-side dry run:\n%s", out)
					}
				})
			}
		})
	}
}

// createServiceAccounts creates, for real, every ServiceAccount the
// manifest's pods name: a dry run creates nothing, so the helm test pod
// would not find the chart's account, nor one that a values file says
// exists already.
func (k *KubeLab) createServiceAccounts(t testing.TB, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, line := range strings.Split(manifest, "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "serviceAccountName: ")
		if !ok {
			continue
		}
		_, err := k.API.CoreV1().ServiceAccounts(clusterNS).Create(ctx,
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: strings.Trim(name, `"'`)}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// kubectl runs kubectl in the router's namespace as the cluster admin with
// stdin, failing the test on error.
func (k *KubeLab) kubectl(t testing.TB, kubectl, stdin string, args ...string) string {
	t.Helper()
	out, err := k.kubectlErr(kubectl, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (k *KubeLab) kubectlErr(kubectl, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := k.Router.Command(ctx, kubectl, append([]string{"--kubeconfig", k.kcfg["admin"]}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
