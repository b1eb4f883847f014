package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stund/stund/internal/kubetest"
)

// No cluster and no kubeconfig: stund runs without Kubernetes.
func TestServerConfigOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := ServerConfig("", ""); !errors.Is(err, ErrNoCluster) {
		t.Errorf("ServerConfig outside a cluster: %v, want ErrNoCluster", err)
	}
	// In a pod without a ServiceAccount token (automount off): no cluster.
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/token"); err == nil {
		t.Log("this machine has a ServiceAccount token; skipping the no-token case")
	} else if _, err := ServerConfig("", ""); !errors.Is(err, ErrNoCluster) {
		t.Errorf("ServerConfig in a pod without a token: %v, want ErrNoCluster", err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := ServerConfig(filepath.Join(t.TempDir(), "missing"), ""); err == nil {
		t.Error("ServerConfig with a missing kubeconfig succeeded")
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(kc, "http://127.0.0.1:1", "team"); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerConfig(kc, "nope"); err == nil {
		t.Error("ServerConfig with an unknown context succeeded")
	}
	if _, ns, err := ClientConfig(kc, ""); err != nil || ns != "team" {
		t.Errorf("ClientConfig namespace %q, %v; want team", ns, err)
	}
}
