package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoCluster means there is no way to reach a cluster: not running in
// one, and no kubeconfig given.
var ErrNoCluster = errors.New("not running in a Kubernetes cluster and no kubeconfig given")

// ServerConfig returns the API client configuration for stund: from the
// kubeconfig file when one is given (its current context, or context when
// set), otherwise the pod's in-cluster configuration. Outside a cluster
// without a file it returns ErrNoCluster, so stund runs without
// Kubernetes.
func ServerConfig(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" {
		if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return nil, ErrNoCluster
		}
		cfg, err := rest.InClusterConfig()
		if errors.Is(err, fs.ErrNotExist) {
			// A pod without a mounted ServiceAccount token: Kubernetes
			// access was not granted, which is not an error.
			return nil, fmt.Errorf("%w (no ServiceAccount token mounted)", ErrNoCluster)
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}

		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}

	return cfg, nil
}

// ClientConfig loads the API client configuration the way kubectl does:
// kubeconfig when given, else $KUBECONFIG, else ~/.kube/config, else the
// in-cluster configuration; context overrides the current context. It
// also returns the namespace of that context ("default" when it names
// none).
func ClientConfig(kubeconfig, context string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", fmt.Errorf("%w (pass --kubeconfig or set KUBECONFIG)", ErrNoCluster)
		}

		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
	}

	return cfg, ns, nil
}

// NewClient returns a clientset for cfg that names userAgent in the API
// server's logs.
func NewClient(cfg *rest.Config, userAgent string) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}

	return cs, nil
}
