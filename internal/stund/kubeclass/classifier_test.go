package kubeclass

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/cluster/clustertest"
	"github.com/stund/stund/internal/stund/server"
)

// syncBuffer is a log destination tests read while loggers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.String()
}

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC).UnixNano())

	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type started struct {
	c     *Classifier
	log   *syncBuffer
	clock *fakeClock
}

// start runs a Classifier against cs and waits for its caches.
func start(t *testing.T, cs kubernetes.Interface, services []string, internal ...netip.Prefix) started {
	t.Helper()
	log := &syncBuffer{}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = log
	lf.DefaultLogLevel = logging.LogLevelWarn
	clock := newFakeClock()
	c, err := New(Config{
		Client: cs, Namespace: clustertest.NS, Services: services, Internal: internal,
		Instance: "stund-0", LoggerFactory: lf, now: clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if !c.WaitForSync(sctx) {
		t.Fatal("caches did not sync")
	}

	return started{c: c, log: log, clock: clock}
}

func sampleCluster() []runtime.Object {
	return []runtime.Object{
		clustertest.Node("worker-1", "10.1.0.2", "198.51.100.20", "10.244.1.0/24", "fd00:244:1::/64"),
		clustertest.Node("worker-2", "fd00:1::3", "", "10.244.2.0/24"),
		clustertest.Service("stund", clustertest.Ingress("198.51.100.7", "2001:db8:7::7")),
		clustertest.Slice("stund", "stund-abc", clustertest.Endpoint{Node: "worker-1", Ready: true}),
	}
}

func TestClassify(t *testing.T) {
	s := start(t, fake.NewClientset(sampleCluster()...), []string{"stund"}, netip.MustParsePrefix("192.0.2.0/24"))
	for _, tc := range []struct {
		addr string
		want server.SourceClass
	}{
		{"203.0.113.10", server.ClassClient},
		{"2001:db8:c::10", server.ClassClient},
		{"10.1.0.2", server.ClassNode},         // InternalIP
		{"198.51.100.20", server.ClassNode},    // ExternalIP, public
		{"::ffff:10.1.0.2", server.ClassNode},  // IPv4-mapped
		{"fd00:1::3", server.ClassNode},        // IPv6 InternalIP
		{"10.244.1.77", server.ClassPod},       // worker-1's pod CIDR
		{"10.244.2.5", server.ClassPod},        // worker-2's
		{"fd00:244:1::99", server.ClassPod},    // IPv6 pod CIDR
		{"10.244.3.1", server.ClassPrivate},    // no node owns it
		{"198.51.100.7", server.ClassLB},       // ingress
		{"2001:db8:7::7", server.ClassLB},      // ingress, IPv6
		{"192.0.2.9", server.ClassPrivate},     // --internal-cidr
		{"100.64.1.1", server.ClassPrivate},    // CGNAT
		{"198.51.100.21", server.ClassClient},  // next to a node's address
		{"fd00:244:2::1", server.ClassPrivate}, // ULA, nobody's pod CIDR

		// A node's pod-network gateway, the first address of its pod
		// CIDR, is an address of the node: kube-proxy masquerades to it.
		{"10.244.2.1", server.ClassNode},
		{"::ffff:10.244.1.1", server.ClassNode},
		{"fd00:244:1::1", server.ClassNode},
	} {
		if got := s.c.Classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Classify(%s) = %s, want %s", tc.addr, got, tc.want)
		}
		if got := s.c.Observe(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Observe(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// TestClassifyRecordsNothing checks that Classify only answers: counting,
// warning and Events are Observe's.
func TestClassifyRecordsNothing(t *testing.T) {
	cs := fake.NewClientset(sampleCluster()...)
	s := start(t, cs, []string{"stund"})
	for range 10 {
		if got := s.c.Classify(netip.MustParseAddr("10.1.0.2")); got != server.ClassNode {
			t.Fatalf("Classify = %s, want node", got)
		}
		s.clock.advance(time.Hour)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(listEvents(t, cs)); n != 0 || s.log.String() != "" {
		t.Errorf("Classify recorded %d Events and logged %q", n, s.log)
	}
}

// Without Kubernetes the Classifier is the static one plus --internal-cidr.
func TestClassifyWithoutCluster(t *testing.T) {
	c, err := New(Config{Internal: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(context.Background()) // does nothing
	if c.WaitForSync(context.Background()) {
		t.Error("WaitForSync without a client reported a sync")
	}
	log := &syncBuffer{}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer, lf.DefaultLogLevel = log, logging.LogLevelDebug
	c, err = New(Config{Internal: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	static := server.StaticClassifier{Internal: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	for _, a := range []string{"203.0.113.1", "10.0.0.1", "198.51.100.7", "fd00::1", "2001:db8::1", "127.0.0.1"} {
		ip := netip.MustParseAddr(a)
		if got, want := c.Observe(ip), static.Observe(ip); got != want {
			t.Errorf("Observe(%s) = %s, StaticClassifier says %s", a, got, want)
		}
	}
	if log.String() != "" {
		t.Errorf("without a cluster the Classifier logged:\n%s", log)
	}
}

func eventually(t *testing.T, what string, cond func() bool, logs ...*syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, l := range logs {
				t.Log(l.String())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Changes to the watched objects reach the classification.
func TestClassifyFollowsChanges(t *testing.T) {
	cs := fake.NewClientset(sampleCluster()...)
	s := start(t, cs, []string{"stund"})
	ctx := context.Background()
	newIP := netip.MustParseAddr("10.1.0.99")
	if got := s.c.Classify(newIP); got != server.ClassPrivate {
		t.Fatalf("before: %s", got)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, clustertest.Node("worker-3", "10.1.0.99", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new node", func() bool { return s.c.Classify(newIP) == server.ClassNode })

	svc, _ := cs.CoreV1().Services(clustertest.NS).Get(ctx, "stund", metav1.GetOptions{})
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.8"}}
	if _, err := cs.CoreV1().Services(clustertest.NS).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new ingress", func() bool {
		return s.c.Classify(netip.MustParseAddr("198.51.100.8")) == server.ClassLB &&
			s.c.Classify(netip.MustParseAddr("198.51.100.7")) == server.ClassClient
	})
	// The warning names the proxy load balancer once its ipMode says so.
	svc.Status.LoadBalancer.Ingress[0].IPMode = ptr.To(corev1.LoadBalancerIPModeProxy)
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	if _, err := cs.CoreV1().Services(clustertest.NS).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ipMode Proxy", func() bool {
		return strings.Contains(s.c.describe(netip.MustParseAddr("198.51.100.8"), cluster.Who{Kind: cluster.LB, Service: "stund"}, 1), "ipMode Proxy")
	})
	if d := s.c.describe(netip.MustParseAddr("198.51.100.8"), cluster.Who{Kind: cluster.LB, Service: "stund"}, 1); strings.Contains(d, "externalTrafficPolicy Cluster") {
		t.Errorf("Local Service described as Cluster: %s", d)
	}

	if err := cs.CoreV1().Nodes().Delete(ctx, "worker-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node gone", func() bool { return s.c.Classify(netip.MustParseAddr("10.1.0.2")) == server.ClassPrivate })

	// Another Service's ingress is not ours.
	other := clustertest.Service("other", clustertest.Ingress("198.51.100.50"))
	if _, err := cs.CoreV1().Services(clustertest.NS).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := s.c.Classify(netip.MustParseAddr("198.51.100.50")); got != server.ClassClient {
		t.Errorf("another Service's ingress classified %s", got)
	}
}

func listEvents(t *testing.T, cs kubernetes.Interface) []corev1.Event {
	t.Helper()
	l, err := cs.CoreV1().Events(clustertest.NS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}

	return l.Items
}

// Rewritten sources give a rate-limited warning naming class and node, and
// at most one Event per Service per interval.
func TestWarningsAndEvents(t *testing.T) {
	cs := fake.NewClientset(sampleCluster()...)
	s := start(t, cs, []string{"stund"})
	nodeIP := netip.MustParseAddr("10.1.0.2")
	for range 100 {
		s.c.Observe(nodeIP)
		s.c.Observe(netip.MustParseAddr("203.0.113.10"))
	}
	eventually(t, "first Event", func() bool { return len(listEvents(t, cs)) == 1 })
	ev := listEvents(t, cs)[0]
	if ev.Reason != "SourceIPRewritten" || ev.Type != corev1.EventTypeWarning ||
		ev.InvolvedObject.Kind != "Service" || ev.InvolvedObject.Name != "stund" || ev.InvolvedObject.UID == "" {
		t.Errorf("Event %+v", ev)
	}
	for _, want := range []string{"worker-1", "source_class=node", "10.1.0.2", "externalTrafficPolicy Cluster"} {
		if !strings.Contains(ev.Message, want) {
			t.Errorf("Event message %q does not mention %q", ev.Message, want)
		}
	}
	if n := strings.Count(s.log.String(), "source IP rewritten"); n != 1 {
		t.Errorf("%d warnings for 100 requests in one interval, want 1:\n%s", n, s.log)
	}
	if !strings.Contains(s.log.String(), "worker-1") || !strings.Contains(s.log.String(), "source_class=node") {
		t.Errorf("warning does not name the node and class:\n%s", s.log)
	}

	// A minute later: another warning (counting what was seen meanwhile),
	// no second Event within ten minutes.
	s.c.Observe(nodeIP)
	s.clock.advance(DefaultLogInterval)
	s.c.Observe(nodeIP)
	if n := strings.Count(s.log.String(), "source IP rewritten"); n != 2 {
		t.Errorf("%d warnings after a minute, want 2:\n%s", n, s.log)
	}
	// 99 held back in the first interval, then two more.
	if !strings.Contains(s.log.String(), "101 request(s) from 10.1.0.2") {
		t.Errorf("second warning does not count the requests since the first:\n%s", s.log)
	}
	// worker-1 runs the endpoint; worker-2 (fd00:1::3) does not, so it
	// forwarded the traffic.
	if strings.Contains(s.log.String(), "runs no ready stund endpoint") {
		t.Errorf("worker-1 runs the endpoint, yet the warning says it does not:\n%s", s.log)
	}
	s.c.Observe(netip.MustParseAddr("fd00:1::3"))
	s.clock.advance(DefaultLogInterval)
	s.c.Observe(netip.MustParseAddr("fd00:1::3"))
	if !strings.Contains(s.log.String(), `node "worker-2" runs no ready stund endpoint`) {
		t.Errorf("warning does not say worker-2 forwarded the traffic:\n%s", s.log)
	}
	// A pod source warns on its own limit, naming the pod CIDR's node.
	s.c.Observe(netip.MustParseAddr("10.244.2.5"))
	if !strings.Contains(s.log.String(), `pod CIDR of node "worker-2"`) {
		t.Errorf("pod warning does not name the node:\n%s", s.log)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(listEvents(t, cs)); n != 1 {
		t.Errorf("%d Events within ten minutes, want 1", n)
	}
	s.clock.advance(DefaultEventInterval)
	s.c.Observe(nodeIP)
	eventually(t, "second Event after ten minutes", func() bool { return len(listEvents(t, cs)) == 2 })
}

// A node's pod-network gateway is where kube-proxy's masquerade leaves
// clients it delivers to a pod on that same node (externalTrafficPolicy
// Cluster): the warning and the Event blame kube-proxy on that node, not a
// proxy pod, and with Local they name what else masquerades.
func TestGatewayWarning(t *testing.T) {
	for _, tc := range []struct {
		name     string
		svc      []clustertestOption
		services []string
		source   string
		want     []string
		avoid    []string
		event    bool
	}{
		{
			name: "Cluster", services: []string{"stund"}, source: "10.244.1.1", event: true,
			want: []string{
				"from 10.244.1.1", "source_class=node", `the pod-network gateway of node "worker-1"`,
				`kube-proxy on node "worker-1" masqueraded the clients`,
				"Service lab/stund has externalTrafficPolicy Cluster: set it to Local",
			},
			avoid: []string{"relayed", "inside the pod CIDR", "runs no ready stund endpoint", "source_class=pod"},
		},
		{
			name: "Cluster, IPv6", services: []string{"stund"}, source: "fd00:244:1::1", event: true,
			want:  []string{"from fd00:244:1::1", "source_class=node", `kube-proxy on node "worker-1" masqueraded the clients`},
			avoid: []string{"relayed", "inside the pod CIDR"},
		},
		{
			name: "Local", svc: []clustertestOption{clustertest.Local}, services: []string{"stund"}, source: "10.244.1.1", event: true,
			want: []string{
				"source_class=node", `the pod-network gateway of node "worker-1"`, "externalTrafficPolicy Local",
				`a masquerade rule on node "worker-1"`, "the CNI's",
			},
			avoid: []string{"kube-proxy on node", "set it to Local", "relayed"},
		},
		{
			name: "no Service known", source: "10.244.2.1",
			want:  []string{"source_class=node", `the pod-network gateway of node "worker-2"`, "externalTrafficPolicy Cluster", `the CNI on node "worker-2" masqueraded the clients`},
			avoid: []string{"relayed", "inside the pod CIDR"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := sampleCluster()
			objs[2] = clustertest.Service("stund", append([]clustertestOption{clustertest.Ingress("198.51.100.7")}, tc.svc...)...)
			cs := fake.NewClientset(objs...)
			s := start(t, cs, tc.services)
			if got := s.c.Observe(netip.MustParseAddr(tc.source)); got != server.ClassNode {
				t.Errorf("Observe(%s) = %s, want node", tc.source, got)
			}
			texts := map[string]string{"warning": s.log.String()}
			if tc.event {
				eventually(t, "the Event", func() bool { return len(listEvents(t, cs)) == 1 }, s.log)
				texts["Event"] = listEvents(t, cs)[0].Message
			}
			for what, text := range texts {
				for _, w := range tc.want {
					if !strings.Contains(text, w) {
						t.Errorf("%s does not say %q:\n%s", what, w, text)
					}
				}
				for _, a := range tc.avoid {
					if strings.Contains(text, a) {
						t.Errorf("%s says %q:\n%s", what, a, text)
					}
				}
			}
		})
	}
}

type clustertestOption = clustertest.ServiceOption

// Client sources never warn nor record Events.
func TestNoEventForClients(t *testing.T) {
	cs := fake.NewClientset(sampleCluster()...)
	s := start(t, cs, []string{"stund"})
	for range 10 {
		s.c.Observe(netip.MustParseAddr("203.0.113.10"))
		s.clock.advance(time.Hour)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(listEvents(t, cs)); n != 0 {
		t.Errorf("%d Events for client sources", n)
	}
	if s.log.String() != "" {
		t.Errorf("log for client sources: %s", s.log)
	}
}

func TestMissingServices(t *testing.T) {
	s := start(t, fake.NewClientset(sampleCluster()...), []string{"stund", "stund-tcp"})
	if got := s.c.MissingServices(); len(got) != 1 || got[0] != "stund-tcp" {
		t.Errorf("MissingServices() = %q, want [stund-tcp]", got)
	}
}

// TestNewValidates checks that New says which field it refuses, so that
// stund can name the flag, and that it names no flag itself.
func TestNewValidates(t *testing.T) {
	cs := fake.NewClientset()
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
		want  error
	}{
		{"no namespace", Config{Client: cs, Services: []string{"stund"}}, "Namespace", ErrNoNamespace},
		{"bad name", Config{Client: cs, Namespace: clustertest.NS, Services: []string{"a/b"}}, "Services", ErrBadService},
		{"empty name", Config{Client: cs, Namespace: clustertest.NS, Services: []string{""}}, "Services", ErrBadService},
		{"mapped internal prefix", Config{Internal: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}}, "Internal", server.ErrMappedPrefix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			var ce *server.ConfigError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("New: %#v, want a ConfigError for %s wrapping %v", err, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a command-line flag", err)
			}
		})
	}
}

func BenchmarkObserve(b *testing.B) {
	var objs []runtime.Object
	for i := range 2000 {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		objs = append(objs, clustertest.Node("n"+ip.String(), ip.String(), "",
			netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + i>>8), byte(i), 0}), 24).String()))
	}
	objs = append(objs, clustertest.Service("stund", clustertest.Ingress("198.51.100.7")))
	c, err := New(Config{Client: fake.NewClientset(objs...), Namespace: clustertest.NS, Services: []string{"stund"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)
	c.WaitForSync(ctx)
	for _, bc := range []struct{ name, addr string }{
		{"client", "203.0.113.10"}, {"node", "10.1.3.4"}, {"pod", "10.101.7.9"},
	} {
		ip := netip.MustParseAddr(bc.addr)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Observe(ip)
			}
		})
	}
}
