package diagnose

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/stund/stund/internal/cluster/clustertest"
	"github.com/stund/stund/internal/kubetest"
	"github.com/stund/stund/pkg/check"
)

// healthServer serves h on a loopback address of family network ("tcp4"
// or "tcp6") and returns its address.
func healthServer(t *testing.T, network string, h http.Handler) netip.AddrPort {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	l, err := net.Listen(network, host)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)

	return netip.MustParseAddrPort(l.Addr().String())
}

// routes is a dial function that sends a connection for a node's
// health-check address to the test server standing in for it, and
// records what was dialled.
type routes struct {
	mu     sync.Mutex
	to     map[string]netip.AddrPort
	dialed []string
}

func (r *routes) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	r.mu.Lock()
	r.dialed = append(r.dialed, addr)
	to, ok := r.to[addr]
	r.mu.Unlock()
	if !ok {
		// What an unroutable node address does: nothing, until the
		// deadline.
		<-ctx.Done()

		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}

	return (&net.Dialer{}).DialContext(ctx, network, to.String())
}

// stalls answers nothing until the client gives up.
var stalls = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })

func TestCheckHealth(t *testing.T) {
	up := healthServer(t, "tcp4", kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 1})
	two := healthServer(t, "tcp4", kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 2})
	down := healthServer(t, "tcp4", kubetest.HealthCheck{Namespace: "lab", Name: "stund"})
	sick := healthServer(t, "tcp4", kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 1, Unhealthy: true})
	slow := healthServer(t, "tcp4", stalls)
	garbage := healthServer(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>hello</html>"))
	}))
	weighted := healthServer(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", "3")
		_, _ = w.Write([]byte("ok"))
	}))
	huge := healthServer(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Valid JSON, but longer than what is read of an answer.
		_, _ = w.Write([]byte(`{"localEndpoints": 1` + strings.Repeat(" ", 8<<10) + `}`))
	}))
	notFound := healthServer(t, "tcp4", http.NotFoundHandler())
	hangUp := healthServer(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	closed := func() netip.AddrPort { // a port nothing listens on
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := netip.MustParseAddrPort(l.Addr().String())
		l.Close()

		return a
	}()

	nodeWithoutAddress := clustertest.Node("bare", "", "")
	externalOnly := clustertest.Node("ext", "", "203.0.113.9")
	dual := clustertest.Node("dual", "fd00:1::5", "198.51.100.5")
	nodes := []*corev1.Node{
		clustertest.Node("up", "10.1.0.1", "198.51.100.1"),
		clustertest.Node("two", "10.1.0.2", ""),
		clustertest.Node("down", "10.1.0.3", ""),
		clustertest.Node("sick", "10.1.0.4", ""),
		clustertest.Node("slow", "10.1.0.5", ""),
		clustertest.Node("garbage", "10.1.0.6", ""),
		clustertest.Node("weighted", "10.1.0.7", ""),
		clustertest.Node("huge", "10.1.0.8", ""),
		clustertest.Node("notfound", "10.1.0.9", ""),
		clustertest.Node("refused", "10.1.0.10", ""),
		clustertest.Node("unroutable", "10.1.0.11", ""),
		clustertest.Node("hangup", "10.1.0.12", ""),
		externalOnly, dual, nodeWithoutAddress,
	}
	r := &routes{to: map[string]netip.AddrPort{
		"10.1.0.1:32000": up, "10.1.0.2:32000": two, "10.1.0.3:32000": down, "10.1.0.4:32000": sick,
		"10.1.0.5:32000": slow, "10.1.0.6:32000": garbage, "10.1.0.7:32000": weighted, "10.1.0.8:32000": huge,
		"10.1.0.9:32000": notFound, "10.1.0.10:32000": closed, "10.1.0.12:32000": hangUp,
		"203.0.113.9:32000": up, "[fd00:1::5]:32000": down,
	}}
	cl := &Cluster{Service: clustertest.Service("stund", clustertest.Local), Nodes: derefAll(nodes)}
	got := CheckHealth(context.Background(), cl, "svc/stund", WithHealthDial(r.dial), WithHealthTimeout(200*time.Millisecond))

	type want struct {
		addr      string
		status    int
		endpoints *int
		healthy   *bool
		err       string
		summary   string
	}
	wants := []want{
		{"10.1.0.1:32000", 200, ptr.To(1), ptr.To(true), "", "200 (1 local endpoint)"},
		{"10.1.0.2:32000", 200, ptr.To(2), ptr.To(true), "", "200 (2 local endpoints)"},
		{"10.1.0.3:32000", 503, ptr.To(0), ptr.To(true), "", "503 (no local endpoint)"},
		{"10.1.0.4:32000", 503, ptr.To(1), ptr.To(false), "", "503 (1 local endpoint, kube-proxy unhealthy)"},
		{"10.1.0.5:32000", 0, nil, nil, "unreachable: i/o timeout", "unreachable: i/o timeout"},
		{"10.1.0.6:32000", 200, nil, nil, "body is not kube-proxy's JSON", "200 (body is not kube-proxy's JSON)"},
		{"10.1.0.7:32000", 200, ptr.To(3), nil, "body is not kube-proxy's JSON", "200 (3 local endpoints, body is not kube-proxy's JSON)"},
		{"10.1.0.8:32000", 200, nil, nil, "body is not kube-proxy's JSON", "200 (body is not kube-proxy's JSON)"},
		{"10.1.0.9:32000", 404, nil, nil, "body is not kube-proxy's JSON", "404 (body is not kube-proxy's JSON)"},
		{"10.1.0.10:32000", 0, nil, nil, "unreachable: connection refused", "unreachable: connection refused"},
		{"10.1.0.11:32000", 0, nil, nil, "unreachable: i/o timeout", "unreachable: i/o timeout"},
		{"10.1.0.12:32000", 0, nil, nil, "no answer: EOF", "no answer: EOF"},
		{"203.0.113.9:32000", 200, ptr.To(1), ptr.To(true), "", "200 (1 local endpoint)"},  // ExternalIP when there is no InternalIP
		{"[fd00:1::5]:32000", 503, ptr.To(0), ptr.To(true), "", "503 (no local endpoint)"}, // InternalIP first, bracketed
		{"", 0, nil, nil, "no InternalIP or ExternalIP", "no InternalIP or ExternalIP"},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d results for %d nodes: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		addr := ""
		if g.Address.IsValid() {
			addr = g.Address.String()
		}
		if g.Node != nodes[i].Name || g.Target != "svc/stund" || addr != w.addr || g.Status != w.status || g.Error != w.err ||
			!equalPtr(g.LocalEndpoints, w.endpoints) || !equalPtr(g.ServiceProxyHealthy, w.healthy) || g.Summary() != w.summary {
			t.Errorf("node %s: got %s %q status %d endpoints %v healthy %v error %q summary %q\nwant %q status %d endpoints %v healthy %v error %q summary %q",
				nodes[i].Name, g.Node, addr, g.Status, deref(g.LocalEndpoints), deref(g.ServiceProxyHealthy), g.Error, g.Summary(),
				w.addr, w.status, deref(w.endpoints), deref(w.healthy), w.err, w.summary)
		}
	}
	for _, a := range r.dialed {
		if strings.HasPrefix(a, "198.51.100.") {
			t.Errorf("dialled ExternalIP %s of a node that has an InternalIP", a)
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}

	return *p
}

// TestCheckHealthNetwork sends the checks over the real network stack,
// no dial function: to an IPv4 and an IPv6 node on loopback.
func TestCheckHealthNetwork(t *testing.T) {
	v4 := healthServer(t, "tcp4", kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 1})
	l6, err := net.Listen("tcp6", net.JoinHostPort("::1", "0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	l6.Close()
	// One port for both nodes, as healthCheckNodePort is.
	l6, err = net.Listen("tcp6", net.JoinHostPort("::1", strconvPort(v4.Port())))
	if err != nil {
		t.Skipf("port %d taken on ::1: %v", v4.Port(), err)
	}
	s6 := httptest.NewUnstartedServer(kubetest.HealthCheck{Namespace: "lab", Name: "stund"})
	s6.Listener = l6
	s6.Start()
	t.Cleanup(s6.Close)

	svc := clustertest.Service("stund", clustertest.Local, func(s *corev1.Service) { s.Spec.HealthCheckNodePort = int32(v4.Port()) })
	cl := &Cluster{Service: svc, Nodes: derefAll([]*corev1.Node{clustertest.Node("v4", "127.0.0.1", ""), clustertest.Node("v6", "::1", "")})}
	got := CheckHealth(context.Background(), cl, "svc/stund")
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	if got[0].Status != 200 || got[0].Address != v4 || got[0].LocalEndpoints == nil || *got[0].LocalEndpoints != 1 || got[0].Error != "" {
		t.Errorf("IPv4 node: %+v", got[0])
	}
	if got[1].Status != 503 || got[1].Address.String() != "[::1]:"+strconvPort(v4.Port()) || got[1].LocalEndpoints == nil || *got[1].LocalEndpoints != 0 {
		t.Errorf("IPv6 node: %+v", got[1])
	}
}

func strconvPort(p uint16) string { return strconv.Itoa(int(p)) }

// TestCheckHealthConcurrent: every check is in flight at once; a check
// that waited for the previous one would never see the others arrive.
func TestCheckHealthConcurrent(t *testing.T) {
	const n = 5
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	srv := healthServer(t, "tcp4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 1}.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	var nodes []*corev1.Node
	to := map[string]netip.AddrPort{}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)})
		nodes = append(nodes, clustertest.Node("worker-"+ip.String(), ip.String(), ""))
		to[netip.AddrPortFrom(ip, 32000).String()] = srv
	}
	cl := &Cluster{Service: clustertest.Service("stund", clustertest.Local), Nodes: derefAll(nodes)}
	for _, h := range CheckHealth(context.Background(), cl, "svc/stund", WithHealthDial((&routes{to: to}).dial), WithHealthTimeout(10*time.Second)) {
		if h.Status != 200 {
			t.Errorf("%s: %+v: the checks did not run at once", h.Node, h)
		}
	}
}

// TestCheckHealthSkipped: nothing is sent without a health check port
// or without Nodes.
func TestCheckHealthSkipped(t *testing.T) {
	nodes := derefAll(threeNodes)
	for _, tc := range []struct {
		name  string
		svc   *corev1.Service
		nodes []corev1.Node
	}{
		{"externalTrafficPolicy Cluster", clustertest.Service("stund"), nodes},
		{"Local without healthCheckNodePort", clustertest.Service("stund", clustertest.Local, func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 0 }), nodes},
		{"NodePort Service", clustertest.Service("stund", clustertest.Local, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }), nodes},
		{"no Nodes", clustertest.Service("stund", clustertest.Local), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				t.Errorf("dialled %s", addr)

				return nil, net.ErrClosed
			}
			cl := &Cluster{Service: tc.svc, Nodes: tc.nodes}
			if got := CheckHealth(context.Background(), cl, "svc/stund", WithHealthDial(dial)); got != nil {
				t.Errorf("got %+v, want nil", got)
			}
		})
	}
}

// hc is a node's answer for the diagnosis tests: status 0 is no answer.
func hc(node string, status int, endpoints int) check.HealthCheck {
	h := check.HealthCheck{Target: "svc/stund", Node: node, Address: netip.MustParseAddrPort("10.1.0.1:32000"), Status: status}
	switch status {
	case 0:
		h.Error = "unreachable: i/o timeout"
	case 200, 503:
		h.LocalEndpoints, h.ServiceProxyHealthy = ptr.To(endpoints), ptr.To(true)
	default:
		h.Error = "body is not kube-proxy's JSON"
	}

	return h
}

func TestDiagnoseHealthCheck(t *testing.T) {
	const (
		E = "error"
		W = "warning"
		I = "info"
	)
	onWorker1 := []*discoveryv1.EndpointSlice{clustertest.Slice("stund", "s1", clustertest.Endpoint{Node: "worker-1", Ready: true})}
	unanswered := []check.Probe{probe(check.UDP, "", check.Inconclusive)}
	unanswered[0].Reason = check.ReasonNoResponse
	sick := hc("worker-1", 503, 1)
	sick.ServiceProxyHealthy = ptr.To(false)
	tests := []struct {
		name    string
		slices  []*discoveryv1.EndpointSlice
		checks  []check.HealthCheck
		probes  []check.Probe
		want    []string
		mention map[string][]string
		avoid   map[string][]string
	}{
		{
			name: "agrees: 200 where the endpoint runs, 503 elsewhere", slices: onWorker1,
			checks: []check.HealthCheck{hc("worker-1", 200, 1), hc("worker-2", 503, 0), hc("worker-3", 503, 0)},
			want:   []string{"endpoints-not-on-all-nodes:" + W, "health-check:" + I},
			mention: map[string][]string{"health-check": {"lab/stund on port 32000: worker-1 200 (1 local endpoint), worker-2 503 (no local endpoint), worker-3 503 (no local endpoint)",
				"sends only to worker-1.", "agrees with the EndpointSlices", "see endpoints-not-on-all-nodes"}},
			avoid: map[string][]string{"health-check": {"contradicts", "got no answer"}, "endpoints-not-on-all-nodes": {"got no answer"}},
		},
		{
			name: "agrees, and the probes got no answer: the link to the 503 nodes", slices: onWorker1, probes: unanswered,
			checks: []check.HealthCheck{hc("worker-1", 200, 1), hc("worker-2", 503, 0), hc("worker-3", 503, 0)},
			want:   []string{"endpoints-not-on-all-nodes:" + W, "health-check:" + I},
			mention: map[string][]string{"endpoints-not-on-all-nodes": {"The probes got no answer", "the load balancer, or a route pinned to one node, delivered them",
				"health check on port 32000 says 503 (worker-2 and worker-3)"}},
			avoid: map[string][]string{"health-check": {"got no answer"}},
		},
		{
			name: "every node has an endpoint and answers 200", slices: []*discoveryv1.EndpointSlice{allReady},
			checks:  []check.HealthCheck{hc("worker-1", 200, 1), hc("worker-2", 200, 1), hc("worker-3", 200, 2)},
			want:    []string{"health-check:" + I},
			mention: map[string][]string{"health-check": {"worker-3 200 (2 local endpoints)", "sends to every node", "agrees", "Nothing to change"}},
		},
		{
			name: "503 only on a node kept out of load balancers", slices: []*discoveryv1.EndpointSlice{allReady},
			checks: []check.HealthCheck{hc("control-plane", 503, 0), hc("worker-1", 200, 1), hc("worker-2", 200, 1), hc("worker-3", 200, 1)},
			want:   []string{"health-check:" + I},
			mention: map[string][]string{"health-check": {"control-plane 503 (no local endpoint)", "sends only to worker-1, worker-2 and worker-3", "agrees",
				"make sure the load balancer health-checks port 32000"}},
		},
		{
			name: "a node with an endpoint answers 503", slices: []*discoveryv1.EndpointSlice{allReady},
			checks:  []check.HealthCheck{hc("worker-1", 503, 0), hc("worker-2", 200, 1), hc("worker-3", 200, 1)},
			want:    []string{"health-check:" + W},
			mention: map[string][]string{"health-check": {"contradicts the EndpointSlices: worker-1 runs a ready stund endpoint but answers 503", "sends only to worker-2 and worker-3", "kube-proxy"}},
			avoid:   map[string][]string{"health-check": {"agrees"}},
		},
		{
			name: "every node 503 though pods are ready, probes unanswered", slices: []*discoveryv1.EndpointSlice{allReady}, probes: unanswered,
			checks: []check.HealthCheck{hc("worker-1", 503, 0), hc("worker-2", 503, 0), hc("worker-3", 503, 0)},
			want:   []string{"health-check:" + E},
			mention: map[string][]string{"health-check": {"worker-1, worker-2 and worker-3 run a ready stund endpoint but answer 503", "sends to none",
				"No node says 200", "delivered them to a node whose health check says 503 (worker-1, worker-2 and worker-3)"}},
		},
		{
			name: "kube-proxy unhealthy on the endpoint's node", slices: onWorker1,
			checks: []check.HealthCheck{sick, hc("worker-2", 503, 0), hc("worker-3", 0, 0)},
			want:   []string{"health-check:" + E, "endpoints-not-on-all-nodes:" + W},
			mention: map[string][]string{"health-check": {"worker-1 503 (1 local endpoint, kube-proxy unhealthy)", "reports itself unhealthy",
				"worker-3 unreachable (i/o timeout)", "No node says 200"}},
		},
		{
			name: "503 where endpoints run, but a node with an endpoint did not answer", slices: []*discoveryv1.EndpointSlice{allReady},
			checks: []check.HealthCheck{hc("worker-1", 503, 0), hc("worker-2", 503, 0), hc("worker-3", 0, 0)},
			want:   []string{"health-check:" + W},
			mention: map[string][]string{"health-check": {"worker-1 and worker-2 run a ready stund endpoint but answer 503",
				"sends to none of the nodes that answered"}},
			// worker-3 did not answer and runs an endpoint: it may be the node to send to.
			avoid: map[string][]string{"health-check": {"No node says 200"}},
		},
		{
			name: "200 on a node without an endpoint", slices: onWorker1,
			checks:  []check.HealthCheck{hc("worker-1", 200, 1), hc("worker-2", 200, 1), hc("worker-3", 503, 0)},
			want:    []string{"endpoints-not-on-all-nodes:" + W, "health-check:" + W},
			mention: map[string][]string{"health-check": {"worker-2 answers 200 but runs no ready stund endpoint", "caught up"}},
		},
		{
			name: "something else on the port", slices: []*discoveryv1.EndpointSlice{allReady},
			checks:  []check.HealthCheck{hc("worker-1", 200, 1), hc("worker-2", 200, 1), hc("worker-3", 404, 0)},
			want:    []string{"health-check:" + W},
			mention: map[string][]string{"health-check": {"worker-3 404 (body is not kube-proxy's JSON)", "something other than kube-proxy", "ss -ltnp"}},
		},
		{
			name: "no node reachable", slices: onWorker1,
			checks: []check.HealthCheck{hc("worker-1", 0, 0), hc("worker-2", 0, 0), hc("worker-3", 0, 0)},
			want:   []string{"endpoints-not-on-all-nodes:" + W, "health-check:" + I},
			mention: map[string][]string{"health-check": {"worker-1 unreachable (i/o timeout)", "No node answered", "no fault",
				"run stuncheck where the nodes' addresses are reachable on port 32000"}},
			avoid: map[string][]string{"health-check": {"contradicts", "agrees"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := &Cluster{
				Service: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")),
				Slices:  derefAll(tc.slices), Nodes: derefAll(threeNodes), HealthChecks: tc.checks,
			}
			got := checkFindings(t, Diagnose(cl, tc.probes), tc.mention, tc.avoid)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCheckHealthClient: a client given with WithHealthClient sends the
// checks, to http://<node address>:<port>/.
func TestCheckHealthClient(t *testing.T) {
	var urls []string
	var mu sync.Mutex
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		urls = append(urls, r.Method+" "+r.URL.String())
		mu.Unlock()
		rec := httptest.NewRecorder()
		kubetest.HealthCheck{Namespace: "lab", Name: "stund", LocalEndpoints: 2}.ServeHTTP(rec, r)

		return rec.Result(), nil
	})}
	cl := &Cluster{Service: clustertest.Service("stund", clustertest.Local), Nodes: derefAll([]*corev1.Node{clustertest.Node("v6", "2001:db8::5", "")})}
	got := CheckHealth(context.Background(), cl, "svc/stund", WithHealthClient(client))
	if len(got) != 1 || got[0].Status != 200 || got[0].LocalEndpoints == nil || *got[0].LocalEndpoints != 2 {
		t.Errorf("%+v", got)
	}
	if want := []string{"GET http://[2001:db8::5]:32000/"}; !slices.Equal(urls, want) {
		t.Errorf("requests %q, want %q", urls, want)
	}
}
