// Package kubeclass makes stund Kubernetes-aware: a Classifier watches
// the Nodes, the Service that fronts stund and its EndpointSlices with
// shared informers and classifies the source of every request as a
// client, a node, a pod, the load balancer or another private address,
// from an immutable cluster.Index swapped atomically on every change, so
// classifying costs a few map lookups and no lock. Observe, which the
// server calls per request, also records rewritten sources: it logs a
// rate-limited warning naming the class and the node, and has a
// SourceIPRewritten Event recorded on the Service, asynchronously, so a
// slow or unreachable API server never delays an answer.
package kubeclass

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/stund/server"
)

// Defaults of Config.
const (
	// DefaultLogInterval is the least time between two warnings about
	// rewritten sources of one class.
	DefaultLogInterval = time.Minute
	// DefaultEventInterval is the least time between two
	// SourceIPRewritten Events on one Service.
	DefaultEventInterval = 10 * time.Minute
	// EventReason is the reason of the Events stund records.
	EventReason = "SourceIPRewritten"
	// eventTimeout bounds one Event write.
	eventTimeout = 10 * time.Second
)

// Config configures a Classifier.
type Config struct {
	// Client talks to the API server; nil means no Kubernetes: the
	// Classifier then knows only Internal and the non-public ranges.
	Client kubernetes.Interface
	// Namespace holds the Services; required with Client.
	Namespace string
	// Services are the names of the Services that front stund (one, or
	// two when UDP and TCP are split); Events go to them. Empty watches
	// Nodes only.
	Services []string
	// Internal are extra internal prefixes (--internal-cidr): sources in
	// them are ClassPrivate.
	Internal []netip.Prefix
	// Instance names this stund in Events (the pod name).
	Instance string
	// LogInterval and EventInterval rate-limit warnings (per class) and
	// Events (per Service); zero means the defaults.
	LogInterval, EventInterval time.Duration
	// LoggerFactory creates the "kube" logger; nil means pion's default.
	LoggerFactory logging.LoggerFactory

	// now is the clock; tests replace it.
	now func() time.Time
}

// Classifier implements server.Classifier from the cluster's Nodes, the
// Service and its EndpointSlices. Create it with New and Start it; until
// its caches are synced, and whenever the API is unreachable, it answers
// from what it last knew (at first: Internal and the non-public ranges).
type Classifier struct {
	cfg  Config
	log  logging.LeveledLogger
	snap atomic.Pointer[cluster.Index]

	// Per class: when the next warning may be logged, and how many
	// rewritten requests were seen since the last one.
	nextLog [server.ClassLB + 1]atomic.Int64
	seen    [server.ClassLB + 1]atomic.Uint64
	// When the next Event may be recorded (one limit for all Services:
	// a request does not say which Service it came through).
	nextEvent atomic.Int64
	events    chan rewrite
	rebuilds  chan struct{}

	mu       sync.Mutex // serialises rebuilds
	nodes    corelisters.NodeLister
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
	started  atomic.Bool
}

// rewrite is one rewritten source, as the Event writer gets it.
type rewrite struct {
	addr  netip.Addr
	who   cluster.Who
	count uint64
}

// Errors of New, inside a *server.ConfigError that names the field of
// Config; an IPv4-mapped Internal prefix is server.ErrMappedPrefix.
var (
	// ErrNoNamespace is Services given with a Client but no Namespace.
	ErrNoNamespace = errors.New("kube: a namespace is needed to watch a Service")
	// ErrBadService is a Service name that cannot be one.
	ErrBadService = errors.New("kube: Service name is not valid")
)

// New validates cfg and returns a Classifier that knows only cfg.Internal
// until Start.
func New(cfg Config) (*Classifier, error) {
	if cfg.Client != nil && cfg.Namespace == "" && len(cfg.Services) > 0 {
		return nil, server.NewConfigError("Namespace", "", ErrNoNamespace, ErrNoNamespace.Error())
	}
	for _, s := range cfg.Services {
		if s == "" || strings.ContainsAny(s, "/ ") {
			return nil, server.NewConfigError("Services", s, ErrBadService, fmt.Sprintf("kube: Service name %q is not valid", s))
		}
	}
	if err := server.CheckPrefixes("Internal", cfg.Internal); err != nil {
		return nil, err
	}
	if cfg.LogInterval <= 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	if cfg.EventInterval <= 0 {
		cfg.EventInterval = DefaultEventInterval
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	c := &Classifier{
		cfg:      cfg,
		log:      cfg.LoggerFactory.NewLogger("kube"),
		events:   make(chan rewrite, 1),
		rebuilds: make(chan struct{}, 1),
	}
	c.snap.Store(cluster.NewIndex(nil, nil, nil, cfg.Internal))

	return c, nil
}

// Classify returns the class of addr from what the Classifier knows of
// the cluster, and records nothing.
func (c *Classifier) Classify(addr netip.Addr) server.SourceClass {
	return sourceClass[c.snap.Load().Lookup(addr).Kind]
}

// Observe implements server.Classifier: it classifies the source of one
// request and, with a cluster, records a rewritten one (recordRewritten).
// It is called for every request: a lock-free snapshot lookup, plus, for
// rewritten sources, a clock read and a few atomic operations. Without a
// cluster it neither warns nor records Events: it is the static
// classifier.
func (c *Classifier) Observe(addr netip.Addr) server.SourceClass {
	w := c.snap.Load().Lookup(addr)
	class := sourceClass[w.Kind]
	if class != server.ClassClient && c.cfg.Client != nil {
		c.recordRewritten(addr, class, w)
	}

	return class
}

var _ server.Classifier = (*Classifier)(nil)

// sourceClass is the source_class of each kind of address. A node's
// pod-network gateway is Kind Node (Who.Gateway), so it counts as node:
// kube-proxy's masquerade put it there, as it puts a node's InternalIP.
var sourceClass = [...]server.SourceClass{
	cluster.Client:  server.ClassClient,
	cluster.Private: server.ClassPrivate,
	cluster.Node:    server.ClassNode,
	cluster.Pod:     server.ClassPod,
	cluster.LB:      server.ClassLB,
}

// recordRewritten counts a rewritten source and, when their rate limits
// allow, logs a warning and hands an Event to the writer without waiting.
func (c *Classifier) recordRewritten(addr netip.Addr, class server.SourceClass, w cluster.Who) {
	n := c.seen[class].Add(1)
	now := c.cfg.now().UnixNano()
	if !allow(&c.nextLog[class], now, c.cfg.LogInterval) {
		return
	}
	n = c.seen[class].Swap(0)
	c.log.Warnf("%s", c.describe(addr, w, n))
	if len(c.cfg.Services) == 0 || !allow(&c.nextEvent, now, c.cfg.EventInterval) {
		return
	}
	select {
	case c.events <- rewrite{addr: addr, who: w, count: n}:
	default: // the writer is still busy with the previous one
	}
}

// allow reports whether the limit next permits an action at now, and if
// so moves it every further.
func allow(next *atomic.Int64, now int64, every time.Duration) bool {
	at := next.Load()
	if now < at {
		return false
	}

	return next.CompareAndSwap(at, now+int64(every))
}

// describe says in one sentence what a rewritten source is and what
// usually causes it.
func (c *Classifier) describe(addr netip.Addr, w cluster.Who, n uint64) string {
	snap := c.snap.Load()
	var b strings.Builder
	fmt.Fprintf(&b, "source IP rewritten: %d request(s) from %s, source_class=%s", n, addr, sourceClass[w.Kind])
	switch w.Kind {
	case cluster.Node:
		if w.Gateway {
			describeGateway(&b, snap, w.Node)

			break
		}
		fmt.Fprintf(&b, ", the address of node %q: kube-proxy or the CNI masqueraded the clients", w.Node)
		if len(snap.Services) > 0 && !slices.Contains(snap.EndpointNodes, w.Node) {
			fmt.Fprintf(&b, " (node %q runs no ready stund endpoint, so it forwarded them to another node)", w.Node)
		}
	case cluster.Pod:
		fmt.Fprintf(&b, ", inside the pod CIDR of node %q: a proxy pod or the CNI relayed the clients (or they are pods)", w.Node)
	case cluster.LB:
		fmt.Fprintf(&b, ", an ingress address of Service %q: the load balancer is a proxy", w.Service)
	default:
		b.WriteString(", a private address: something on the path source-NATs the clients")
	}
	for _, svc := range snap.Services {
		if cluster.IsLoadBalancerOrNodePort(svc) && !cluster.IsLocal(svc) {
			fmt.Fprintf(&b, "; Service %s/%s has externalTrafficPolicy Cluster: set it to Local", svc.Namespace, svc.Name)
		}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
				fmt.Fprintf(&b, "; Service %s/%s's load balancer has ipMode Proxy: it passes clients' addresses only with PROXY protocol (stund --proxy-protocol)", svc.Namespace, svc.Name)

				break
			}
		}
	}

	return b.String()
}

// describeGateway says what masqueraded clients to node's pod-network
// gateway. kube-proxy does, with externalTrafficPolicy Cluster, for
// clients it delivers to a pod on the node that received them (it
// masquerades to the node's own address when it forwards them to another
// node); with Local it leaves them alone, so something else on the node
// did, or the clients are inside the cluster, whose traffic to the load
// balancer's address gets Cluster semantics.
func describeGateway(b *strings.Builder, snap *cluster.Index, node string) {
	fmt.Fprintf(b, ", the pod-network gateway of node %q (the first address of its pod CIDR): ", node)
	var etpCluster, etpLocal bool
	for _, svc := range snap.Services {
		if cluster.IsLoadBalancerOrNodePort(svc) {
			etpLocal = etpLocal || cluster.IsLocal(svc)
			etpCluster = etpCluster || !cluster.IsLocal(svc)
		}
	}
	switch {
	case etpCluster:
		fmt.Fprintf(b, "kube-proxy on node %q masqueraded the clients, not a proxy pod", node)
	case etpLocal:
		fmt.Fprintf(b, "with externalTrafficPolicy Local kube-proxy leaves clients from outside the cluster alone, "+
			"so a masquerade rule on node %q (the CNI's, or one added by hand) rewrote them, or the clients are pods reaching the load balancer's address", node)
	default:
		fmt.Fprintf(b, "kube-proxy (with externalTrafficPolicy Cluster) or the CNI on node %q masqueraded the clients", node)
	}
}

// Start starts the informers and the Event writer; they stop when ctx
// ends. Without a Client it does nothing. Start returns at once: use
// WaitForSync to wait for the first snapshot of the cluster.
func (c *Classifier) Start(ctx context.Context) {
	if c.cfg.Client == nil || !c.started.CompareAndSwap(false, true) {
		return
	}
	// Handlers only ask for a rebuild; one goroutine coalesces a burst of
	// changes (a large cluster's initial Nodes) into a few rebuilds.
	go c.rebuildLoop(ctx)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.requestRebuild() },
		UpdateFunc: func(old, cur any) { c.requestRebuild() },
		DeleteFunc: func(any) { c.requestRebuild() },
	}
	// Nodes, cluster-wide, trimmed to what classification uses; heartbeat
	// updates that change no address are ignored.
	nodeFactory := informers.NewSharedInformerFactoryWithOptions(c.cfg.Client, 0, informers.WithTransform(trimNode))
	nodeInf := nodeFactory.Core().V1().Nodes()
	_, _ = nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.requestRebuild() },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if ok1 && ok2 && slices.Equal(cluster.NodeAddresses(o), cluster.NodeAddresses(n)) && slices.Equal(cluster.PodCIDRs(o), cluster.PodCIDRs(n)) {
				return
			}
			c.requestRebuild()
		},
		DeleteFunc: func(any) { c.requestRebuild() },
	})
	c.nodes = nodeInf.Lister()
	c.synced = append(c.synced, nodeInf.Informer().HasSynced)
	factories := []informers.SharedInformerFactory{nodeFactory}

	if len(c.cfg.Services) > 0 {
		// The Service itself: one name is a field selector, two are
		// filtered here.
		svcFactory := informers.NewSharedInformerFactoryWithOptions(c.cfg.Client, 0,
			informers.WithNamespace(c.cfg.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				if len(c.cfg.Services) == 1 {
					o.FieldSelector = fields.OneTermEqualSelector("metadata.name", c.cfg.Services[0]).String()
				}
			}))
		svcInf := svcFactory.Core().V1().Services()
		_, _ = svcInf.Informer().AddEventHandler(handler)
		c.services = svcInf.Lister()
		// Its EndpointSlices, by the label the control plane sets.
		req, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.In, c.cfg.Services)
		if err != nil {
			c.log.Errorf("EndpointSlice selector: %v", err)
		}
		epFactory := informers.NewSharedInformerFactoryWithOptions(c.cfg.Client, 0,
			informers.WithNamespace(c.cfg.Namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				if req != nil {
					o.LabelSelector = labels.NewSelector().Add(*req).String()
				}
			}))
		epInf := epFactory.Discovery().V1().EndpointSlices()
		_, _ = epInf.Informer().AddEventHandler(handler)
		c.slices = epInf.Lister()
		c.synced = append(c.synced, svcInf.Informer().HasSynced, epInf.Informer().HasSynced)
		factories = append(factories, svcFactory, epFactory)
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	go func() {
		<-ctx.Done()
		for _, f := range factories {
			f.Shutdown()
		}
	}()
	go c.writeEvents(ctx)
}

// WaitForSync waits until every informer has its first full view of the
// cluster, or ctx ends, and reports whether they synced; when they have,
// it builds the Classifier's view from them before returning.
func (c *Classifier) WaitForSync(ctx context.Context) bool {
	if !c.started.Load() {
		return false
	}
	ok := cache.WaitForCacheSync(ctx.Done(), c.synced...)
	if ok {
		c.rebuild()
	}

	return ok
}

// Counts says how many node addresses, pod CIDRs and load-balancer
// addresses the Classifier knows, for logs.
func (c *Classifier) Counts() (nodeAddrs, podCIDRs, lbAddrs int) {
	return c.snap.Load().Counts()
}

// MissingServices returns the configured Services the API does not have.
func (c *Classifier) MissingServices() []string {
	s := c.snap.Load()
	var out []string
	for _, name := range c.cfg.Services {
		if !slices.ContainsFunc(s.Services, func(svc *corev1.Service) bool { return svc.Name == name }) {
			out = append(out, name)
		}
	}

	return out
}

// requestRebuild asks the rebuild loop for a new snapshot without waiting.
func (c *Classifier) requestRebuild() {
	select {
	case c.rebuilds <- struct{}{}:
	default: // one is pending already and will see this change
	}
}

func (c *Classifier) rebuildLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.rebuilds:
			c.rebuild()
		}
	}
}

// rebuild makes a new snapshot from the informers' caches and swaps it in.
func (c *Classifier) rebuild() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		nodes []*corev1.Node
		svcs  []*corev1.Service
		eps   []*discoveryv1.EndpointSlice
	)
	if c.nodes != nil {
		nodes, _ = c.nodes.List(labels.Everything())
	}
	if c.services != nil {
		all, _ := c.services.Services(c.cfg.Namespace).List(labels.Everything())
		for _, s := range all {
			if slices.Contains(c.cfg.Services, s.Name) {
				svcs = append(svcs, s)
			}
		}
		slices.SortFunc(svcs, func(a, b *corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	}
	if c.slices != nil {
		all, _ := c.slices.EndpointSlices(c.cfg.Namespace).List(labels.Everything())
		for _, s := range all {
			if slices.Contains(c.cfg.Services, s.Labels[discoveryv1.LabelServiceName]) {
				eps = append(eps, s)
			}
		}
	}
	c.snap.Store(cluster.NewIndex(nodes, svcs, eps, c.cfg.Internal))
}

// trimNode keeps only what classification and diagnosis read from a
// Node, so a large cluster's Nodes cost little memory.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}

	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels},
		Spec:       corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs, ProviderID: n.Spec.ProviderID},
		Status:     corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// writeEvents records a SourceIPRewritten Event on every watched Service
// for each rewrite it is handed, until ctx ends. It runs on its own
// goroutine: a slow API server delays only the Event.
func (c *Classifier) writeEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rw := <-c.events:
			for _, name := range c.cfg.Services {
				c.recordEvent(ctx, name, rw)
			}
		}
	}
}

func (c *Classifier) recordEvent(ctx context.Context, service string, rw rewrite) {
	ref := corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: c.cfg.Namespace, Name: service}
	for _, svc := range c.snap.Load().Services {
		if svc.Name == service {
			ref.UID, ref.ResourceVersion = svc.UID, svc.ResourceVersion
		}
	}
	now := c.cfg.now()
	// One name per Service and interval: when several replicas see the
	// same rewriting, the first one's Event wins and the others get
	// AlreadyExists, so the Service still gets at most one per interval.
	window := now.UnixNano() / int64(c.cfg.EventInterval)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%s.%x", service, strings.ToLower(EventReason), window),
			Namespace: c.cfg.Namespace,
		},
		InvolvedObject:      ref,
		Reason:              EventReason,
		Message:             truncate(c.describe(rw.addr, rw.who, rw.count)+". Run `stuncheck svc/"+service+"` for a diagnosis.", 1024),
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "stund"},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		ReportingController: "stund",
		ReportingInstance:   c.cfg.Instance,
	}
	ctx, cancel := context.WithTimeout(ctx, eventTimeout)
	defer cancel()
	_, err := c.cfg.Client.CoreV1().Events(c.cfg.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	switch {
	case err == nil:
		c.log.Debugf("recorded Event %s on Service %s/%s", EventReason, c.cfg.Namespace, service)
	case apierrors.IsAlreadyExists(err):
		c.log.Debugf("Event %s on Service %s/%s: another replica recorded it", EventReason, c.cfg.Namespace, service)
	default:
		c.log.Warnf("record Event %s on Service %s/%s: %v (check the RBAC: create events)", EventReason, c.cfg.Namespace, service, err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}

	return s[:n-3] + "..."
}
