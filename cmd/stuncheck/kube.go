package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/stuncheck/diagnose"
	"github.com/stund/stund/pkg/check"
)

// kubeFlags are the kubectl-style flags for svc/NAME targets.
type kubeFlags struct {
	kubeconfig, context, namespace string
}

func addKubeFlags(fs *flag.FlagSet) *kubeFlags {
	k := &kubeFlags{}
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&k.context, "context", "", "")
	fs.StringVar(&k.namespace, "n", "", "")
	fs.StringVar(&k.namespace, "namespace", "", "")

	return k
}

// kubeTarget is a Service given as svc/NAME, read from the cluster.
type kubeTarget struct {
	input   string
	cluster *diagnose.Cluster
	targets []check.Target
}

// apiTimeout bounds reading the Service, its EndpointSlices and the Nodes.
const apiTimeout = 15 * time.Second

// errAPI marks a cluster that did not answer (exit 3), as opposed to a
// configuration mistake (exit 2).
var errAPI = errors.New("kubernetes API")

// readServices reads each svc/NAME reference and returns its probe
// targets. A mistake in the flags or the names is a flagError; an API
// server that does not answer wraps errAPI.
func (k *kubeFlags) readServices(ctx context.Context, refs []string) ([]kubeTarget, error) {
	if len(refs) == 0 {
		if k.kubeconfig != "" || k.context != "" || k.namespace != "" {
			return nil, flagErrorf("--kubeconfig, --context and -n apply only to svc/NAME targets")
		}

		return nil, nil
	}
	cfg, ns, err := cluster.ClientConfig(k.kubeconfig, k.context)
	if err != nil {
		return nil, flagError{err}
	}
	if k.namespace != "" {
		ns = k.namespace
	}
	cs, err := cluster.NewClient(cfg, "stuncheck")
	if err != nil {
		return nil, flagError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var out []kubeTarget
	for _, ref := range refs {
		name, _ := diagnose.ParseServiceRef(ref)
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			return nil, flagErrorf("%s: %q is not a Service name: %s", ref, name, strings.Join(errs, "; "))
		}
		cl, err := diagnose.ReadService(ctx, cs, ns, name)
		if err != nil {
			if errors.Is(err, diagnose.ErrServiceNotFound) {
				return nil, flagErrorf("%w (check -n/--namespace and --context)", err)
			}

			return nil, fmt.Errorf("%w: %w", errAPI, err)
		}
		out = append(out, kubeTarget{input: ref, cluster: cl, targets: diagnose.Targets(cl.Service, ref)})
	}

	return out, nil
}

// checkHealth sends kube-proxy's health check of every Service to its
// nodes in the background, each check bounded by the shorter of
// diagnose.DefaultHealthTimeout and --timeout; wait returns once every
// answer is in its Service's Cluster.HealthChecks.
func checkHealth(ctx context.Context, kts []kubeTarget, timeout time.Duration) (wait func()) {
	var wg sync.WaitGroup
	for _, kt := range kts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kt.cluster.HealthChecks = diagnose.CheckHealth(ctx, kt.cluster, kt.input,
				diagnose.WithHealthTimeout(min(diagnose.DefaultHealthTimeout, timeout)))
		}()
	}

	return wg.Wait
}

// addFindings adds the findings of every Service to rep, from the probes
// sent to its load-balancer ingress, and the health-check answers of its
// nodes.
func addFindings(rep *check.Report, kts []kubeTarget) {
	if len(kts) == 0 {
		return
	}
	rep.Findings = []check.Finding{}
	for _, kt := range kts {
		rep.HealthChecks = append(rep.HealthChecks, kt.cluster.HealthChecks...)
		var probes []check.Probe
		for _, p := range rep.Probes {
			if p.Target == kt.input {
				probes = append(probes, p)
			}
		}
		rep.Findings = append(rep.Findings, diagnose.Diagnose(kt.cluster, probes)...)
	}
	check.SortFindings(rep.Findings)
}

// writeReport writes rep as JSON or text.
func writeReport(w io.Writer, rep *check.Report, output string, color bool) error {
	if output == "json" {
		return rep.WriteJSON(w)
	}

	return rep.WriteText(w, check.TextOptions{Color: color})
}
