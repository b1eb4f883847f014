package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/stund/kubeclass"
	"github.com/stund/stund/internal/stund/server"
)

// kubeOptions are the flags of the Kubernetes-aware source classification.
type kubeOptions struct {
	kubeconfig string
	namespace  string
	services   listFlag
	internal   listFlag

	// internalCIDRs are the parsed --internal-cidr values.
	internalCIDRs listValues[netip.Prefix]
	// noCluster and apiErr say why build found no cluster, for logMode.
	noCluster bool
	apiErr    error

	classifier *kubeclass.Classifier
	synced     chan struct{} // closed once the informers have synced
	log        logging.LeveledLogger
}

// readyWait bounds how long readiness waits for the first view of the
// cluster, so that the first requests a load balancer sends are already
// classified; STUN is answered meanwhile, and an API that is down delays
// readiness by this much at most.
const readyWait = 5 * time.Second

func addKubeFlags(fs *flag.FlagSet, k *kubeOptions) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", envOr("STUND_KUBECONFIG", ""),
		"kubeconfig `file` for the Kubernetes API; empty uses the pod's service account when running in a cluster, "+
			"and without either stund classifies sources by address ranges alone [STUND_KUBECONFIG]")
	fs.StringVar(&k.namespace, "namespace", envOr("STUND_NAMESPACE", os.Getenv("POD_NAMESPACE")),
		"`namespace` of --service [STUND_NAMESPACE, else POD_NAMESPACE]")
	if v := envOr("STUND_SERVICE", ""); v != "" {
		k.services.values = strings.Split(v, ",")
	}
	fs.Var(&k.services, "service", "`name` of the Service in front of stund: its load-balancer addresses count as source_class=lb "+
		"and SourceIPRewritten Events go to it; repeat for split UDP and TCP Services [STUND_SERVICE, comma-separated]")
	if v := envOr("STUND_INTERNAL_CIDR", ""); v != "" {
		k.internal.values = strings.Split(v, ",")
	}
	fs.Var(&k.internal, "internal-cidr", "`CIDR` whose sources count as source_class=private, e.g. a cluster's pod range or a "+
		"platform's internal network; repeatable, works without Kubernetes too [STUND_INTERNAL_CIDR, comma-separated]")
}

// build returns the classifier for server.Config: Kubernetes-aware when
// a cluster is reachable, otherwise by address ranges alone. A kubeconfig
// that was asked for but cannot be loaded is a usage error; a cluster
// that cannot be reached is not: stund serves without it, and logMode
// says so. Errors of kubeclass.New are returned as they are, for
// options.flagError to word.
func (k *kubeOptions) build(lf logging.LoggerFactory) (server.Classifier, error) {
	var err error
	if k.internalCIDRs, err = parsePrefixes("--internal-cidr", k.internal.values); err != nil {
		return nil, err
	}
	internal := k.internalCIDRs.values
	k.log = lf.NewLogger("kube")
	cfg := kubeclass.Config{Internal: internal, LoggerFactory: lf, Instance: instanceName()}
	rc, err := cluster.ServerConfig(k.kubeconfig, "")
	switch {
	case err == nil:
		if cfg.Client, err = cluster.NewClient(rc, "stund/"+buildVersion()); err != nil {
			return nil, err
		}
		cfg.Namespace, cfg.Services = k.namespace, k.services.values
	case k.kubeconfig != "":
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	case errors.Is(err, cluster.ErrNoCluster):
		// Without cluster access everything else keeps working: a pod
		// whose token is not mounted must not crash-loop over it.
		k.noCluster = true
	default:
		k.apiErr = err
	}
	if cfg.Client == nil {
		// Without a cluster stund works as before: address ranges only.
		return server.StaticClassifier{Internal: internal}, nil
	}
	c, err := kubeclass.New(cfg)
	if err != nil {
		return nil, err
	}
	k.classifier = c

	return c, nil
}

// logMode logs how sources are classified when build found no cluster to
// read: run calls it once the whole configuration is accepted, so that a
// usage error is the only line stund prints.
func (k *kubeOptions) logMode() {
	switch {
	case k.apiErr != nil:
		k.log.Warnf("Kubernetes API unavailable, classifying sources by address ranges only: %v", k.apiErr)
	case k.noCluster && len(k.services.values) > 0:
		k.log.Warnf("--service %s given, but there is no cluster to read it from (no ServiceAccount token in this pod, no --kubeconfig): classifying sources by address ranges only",
			strings.Join(k.services.values, ","))
	case k.noCluster:
		k.log.Debugf("no Kubernetes cluster: classifying sources by address ranges only")
	}
}

// start runs the informers in the background and returns the function
// that stops them. STUN is served meanwhile: the API's state never
// delays it.
func (k *kubeOptions) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	if k.classifier == nil {
		return cancel
	}
	k.synced = make(chan struct{})
	k.classifier.Start(ctx)
	go func() {
		log := k.log
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		defer scancel()
		synced := k.classifier.WaitForSync(sctx)
		if synced {
			close(k.synced)
		}
		if !synced {
			if ctx.Err() == nil {
				log.Warnf("Kubernetes caches not synced after a minute (RBAC? API down?); classifying by what is known meanwhile")
			}

			return
		}
		for _, name := range k.classifier.MissingServices() {
			log.Warnf("Service %s/%s not found: its load-balancer addresses are unknown and Events cannot be tied to it (check --service and --namespace)", k.namespace, name)
		}
		nodes, pods, lbs := k.classifier.Counts()
		log.Infof("kubernetes: watching %d node addresses, %d pod CIDRs, %d load-balancer addresses (namespace %q, service %q)",
			nodes, pods, lbs, k.namespace, strings.Join(k.services.values, ","))
	}()

	return cancel
}

// waitSynced waits until the informers have synced, at most readyWait.
func (k *kubeOptions) waitSynced() {
	if k.synced == nil {
		return
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-k.synced:
	case <-t.C:
		k.log.Warnf("no view of the cluster after %s (API server unreachable? RBAC?): ready anyway, classifying sources by address ranges until it comes", readyWait)
	}
}

// instanceName names this stund in Events: the pod's name.
func instanceName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()

	return n
}
