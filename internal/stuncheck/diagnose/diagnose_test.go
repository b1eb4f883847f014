package diagnose

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stund/stund/internal/cluster/clustertest"
	"github.com/stund/stund/pkg/check"
)

func probe(tr check.Transport, mapped string, v check.Verdict) check.Probe {
	p := check.Probe{Transport: tr, Address: netip.MustParseAddrPort("198.51.100.7:3478")}
	p.Verdict = v
	if mapped != "" {
		p.Mapped = netip.AddrPortFrom(netip.MustParseAddr(mapped), 40000)
	}

	return p
}

var (
	threeNodes = []*corev1.Node{
		clustertest.Node("worker-1", "10.1.0.2", "", "10.244.1.0/24"),
		clustertest.Node("worker-2", "10.1.0.3", "", "10.244.2.0/24"),
		clustertest.Node("worker-3", "10.1.0.4", "", "10.244.3.0/24"),
	}
	allReady = clustertest.Slice("stund", "s1", clustertest.Endpoint{Node: "worker-1", Ready: true}, clustertest.Endpoint{Node: "worker-2", Ready: true}, clustertest.Endpoint{Node: "worker-3", Ready: true})
)

func derefAll[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}

	return out
}

func TestDiagnose(t *testing.T) {
	const (
		client = "203.0.113.10"
		E      = "error"
		W      = "warning"
		I      = "info"
	)
	excluded := clustertest.Node("control-plane", "10.1.0.1", "", "10.244.0.0/24")
	excluded.Labels = map[string]string{excludeFromLBLabel: ""}
	provider := func(id string) *corev1.Node {
		n := clustertest.Node("worker-1", "10.1.0.2", "")
		n.Spec.ProviderID = id

		return n
	}
	tests := []struct {
		name     string
		svc      *corev1.Service
		slices   []*discoveryv1.EndpointSlice
		nodes    []*corev1.Node
		nodesErr error
		probes   []check.Probe
		want     []string // id:severity, in order
		mention  map[string][]string
		avoid    map[string][]string // what a finding must not say
	}{
		{
			name: "masquerade: Cluster, the server saw a node",
			svc:  clustertest.Service("stund", clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, "10.1.0.3", check.Rewritten), probe(check.TCP, "10.1.0.3", check.Rewritten)},
			want:   []string{"etp-cluster:" + E, "snat-node-ip:" + E, "mixed-protocol:" + I},
			mention: map[string][]string{
				"snat-node-ip": {"10.1.0.3", "worker-2", "udp and tcp", "externalTrafficPolicy: Local"},
				"etp-cluster":  {"lab/stund", "Cluster", "kubectl -n lab patch service stund"},
			},
		},
		{
			name: "masquerade seen on both families of one node: one finding",
			svc:  clustertest.Service("stund", clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady},
			nodes:   []*corev1.Node{clustertest.Node("dual", "10.1.0.2", "fd00:1::2")},
			probes:  []check.Probe{probe(check.UDP, "10.1.0.2", check.Rewritten), probe(check.UDP, "fd00:1::2", check.Rewritten)},
			want:    []string{"etp-cluster:" + E, "snat-node-ip:" + E},
			mention: map[string][]string{"snat-node-ip": {"10.1.0.2 and fd00:1::2 over udp", `node "dual"`}},
		},
		{
			name: "Cluster but the path preserved (DSR): a warning only",
			svc:  clustertest.Service("stund", clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, client, check.Preserved)},
			want:   []string{"etp-cluster:" + W},
		},
		{
			name: "passthrough: Local, endpoints everywhere, preserved",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, client, check.Preserved)},
			want:   []string{},
		},
		{
			name: "Local, endpoint on one node of three, control plane excluded",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")),
			slices: []*discoveryv1.EndpointSlice{clustertest.Slice("stund", "s1", clustertest.Endpoint{Node: "worker-1", Ready: true}, clustertest.Endpoint{Node: "worker-2", Ready: false}),
				clustertest.Slice("stund", "s2", clustertest.Endpoint{Node: "worker-1", Ready: true})},
			nodes:   append([]*corev1.Node{excluded}, threeNodes...),
			probes:  []check.Probe{probe(check.UDP, client, check.Preserved)},
			want:    []string{"endpoints-not-on-all-nodes:" + W},
			mention: map[string][]string{"endpoints-not-on-all-nodes": {"2 of 3 nodes", "worker-2, worker-3", "healthCheckNodePort 32000", "DaemonSet"}},
		},
		{
			name:   "no ready endpoints",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")),
			slices: []*discoveryv1.EndpointSlice{clustertest.Slice("stund", "s1", clustertest.Endpoint{Node: "worker-1", Ready: false})}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, "", check.Inconclusive)},
			want:   []string{"no-ready-endpoints:" + E},
		},
		{
			name: "Local but the node still SNATs: the CNI",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes:  []check.Probe{probe(check.UDP, "10.1.0.2", check.Rewritten)},
			want:    []string{"snat-node-ip:" + E},
			mention: map[string][]string{"snat-node-ip": {"already Local", "dsr"}},
		},
		{
			name: "pod CIDR",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes:  []check.Probe{probe(check.UDP, "10.244.3.9", check.Rewritten)},
			want:    []string{"snat-pod-cidr:" + E},
			mention: map[string][]string{"snat-pod-cidr": {"10.244.3.9", "worker-3"}},
		},
		{
			name: "kube-proxy's masquerade on the endpoint's node: its pod-network gateway",
			svc:  clustertest.Service("stund", clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, "10.244.2.1", check.Rewritten), probe(check.TCP, "10.244.2.1", check.Rewritten)},
			want:   []string{"etp-cluster:" + E, "snat-node-gateway:" + E, "mixed-protocol:" + I},
			mention: map[string][]string{
				"snat-node-gateway": {"10.244.2.1 over udp and tcp", `node "worker-2"`, "pod-network gateway",
					"first address of its pod CIDR", "kube-proxy", "externalTrafficPolicy: Cluster", "externalTrafficPolicy: Local", "see etp-cluster"},
				"etp-cluster": {"pod-network gateway when the pod runs on that node"},
			},
			avoid: map[string][]string{"snat-node-gateway": {"sidecar", "ingress controller", "relayed", "already Local"}},
		},
		{
			name: "kube-proxy's masquerade to an IPv6 pod-network gateway",
			svc:  clustertest.Service("stund", clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady},
			nodes:   []*corev1.Node{clustertest.Node("dual", "10.1.0.2", "fd00:1::2", "10.244.1.0/24", "fd00:244:1::/64")},
			probes:  []check.Probe{probe(check.UDP, "fd00:244:1::1", check.Rewritten)},
			want:    []string{"etp-cluster:" + E, "snat-node-gateway:" + E},
			mention: map[string][]string{"snat-node-gateway": {"fd00:244:1::1 over udp", `node "dual"`, "kube-proxy"}},
		},
		{
			name: "Cluster, both of kube-proxy's masquerades: one node's address, another's gateway",
			svc:  clustertest.Service("stund", clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, "10.1.0.3", check.Rewritten), probe(check.UDP, "10.244.1.1", check.Rewritten)},
			want:   []string{"etp-cluster:" + E, "snat-node-gateway:" + E, "snat-node-ip:" + E},
			mention: map[string][]string{
				"snat-node-gateway": {"10.244.1.1", `node "worker-1"`},
				"snat-node-ip":      {"10.1.0.3", `node "worker-2"`},
			},
			avoid: map[string][]string{"snat-node-gateway": {"10.1.0.3"}, "snat-node-ip": {"10.244.1.1"}},
		},
		{
			name: "Local but a node's gateway: not kube-proxy",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes:  []check.Probe{probe(check.UDP, "10.244.1.1", check.Rewritten)},
			want:    []string{"snat-node-gateway:" + E},
			mention: map[string][]string{"snat-node-gateway": {"10.244.1.1", `node "worker-1"`, "already Local", "CNI", "masquerade rule", "inside the cluster"}},
			avoid:   map[string][]string{"snat-node-gateway": {"see etp-cluster", "sidecar", "relayed"}},
		},
		{
			name: "proxy load balancer: ipMode Proxy, the server saw the ingress",
			svc:  clustertest.Service("stund", clustertest.Local, clustertest.TCPOnly, clustertest.Ingress("198.51.100.7"), clustertest.ProxyMode), slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes:  []check.Probe{probe(check.TCP, "198.51.100.7", check.Rewritten)},
			want:    []string{"ipmode-proxy:" + E, "snat-lb-address:" + E},
			mention: map[string][]string{"ipmode-proxy": {"198.51.100.7", "--proxy-protocol"}},
		},
		{
			name: "ClientIP affinity on UDP",
			svc: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7"), func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			}),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"session-affinity-udp:" + W},
		},
		{
			name: "mixed protocol with a port error",
			svc: clustertest.Service("stund", clustertest.Local, clustertest.Ingress("198.51.100.7"), func(s *corev1.Service) {
				msg := "UDP not supported"
				s.Status.LoadBalancer.Ingress[0].Ports = []corev1.PortStatus{{Port: 3478, Protocol: corev1.ProtocolUDP, Error: &msg}}
			}),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want:    []string{"mixed-protocol:" + E},
			mention: map[string][]string{"mixed-protocol": {"UDP not supported", "service.split"}},
		},
		{
			name: "pending load balancer", svc: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"no-lb-ingress:" + E},
		},
		{
			name: "Nodes unreadable", svc: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodesErr: errors.New("nodes is forbidden"),
			want: []string{"nodes-unreadable:" + I},
		},
		{
			name:   "AWS NLB ip targets without TCP preservation",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annAWSTargetType, "ip")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.UDP, client, check.Preserved), probe(check.TCP, "10.1.9.9", check.Rewritten)},
			want:   []string{"aws-nlb-ip-target-tcp:" + E, "mixed-protocol:" + I},
		},
		{
			name: "AWS NLB ip targets with preservation on",
			svc: clustertest.Service("stund", clustertest.Local, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annAWSTargetType, "ip",
				annAWSTargetGroupAttrs, "deregistration_delay.timeout_seconds=10, preserve_client_ip.enabled=true")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"mixed-protocol:" + I},
		},
		{
			name:   "AWS preservation turned off",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.TCPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annAWSTargetGroupAttrs, "preserve_client_ip.enabled=false")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"aws-preserve-client-ip-off:" + E},
		},
		{
			name: "DigitalOcean without PROXY protocol", svc: clustertest.Service("stund", clustertest.Local, clustertest.TCPOnly, clustertest.Ingress("198.51.100.7")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: []*corev1.Node{provider("digitalocean://123")},
			want: []string{"digitalocean-source-ip:" + W},
		},
		{
			name:   "DigitalOcean with PROXY protocol, TCP answered and preserved",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.TCPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annDOProxyProtocol, "true")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: []*corev1.Node{provider("digitalocean://123")},
			probes:  []check.Probe{probe(check.TCP, client, check.Preserved)},
			want:    []string{"proxy-protocol-enabled:" + I},
			mention: map[string][]string{"proxy-protocol-enabled": {"--proxy-trusted-cidr", annDOProxyProtocol}},
		},
		{
			name:   "PROXY protocol on but TCP gets no answer",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.TCPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annAWSProxyProtocol, "*")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			probes: []check.Probe{probe(check.TCP, "", check.Inconclusive)},
			want:   []string{"proxy-protocol-enabled:" + E},
		},
		{
			name: "Hetzner with UDP", svc: clustertest.Service("stund", clustertest.Local, clustertest.Ingress("198.51.100.7"), clustertest.Annotate("load-balancer.hetzner.cloud/location", "fsn1")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"hetzner-no-udp:" + E, "hetzner-tcp-proxy:" + W, "mixed-protocol:" + I},
		},
		{
			name:   "OCI NLB without preserve-source",
			svc:    clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annOCILBType, "nlb")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"oci-preserve-source-off:" + W},
		},
		{
			name: "OCI NLB preserving", svc: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annOCILBType, "nlb", annOCIPreserveSource, "true")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{},
		},
		{
			name: "Linode", svc: clustertest.Service("stund", clustertest.Local, clustertest.Ingress("198.51.100.7")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: []*corev1.Node{provider("linode://42")},
			want: []string{"linode-tcp-proxy:" + W, "linode-udp-beta:" + I, "mixed-protocol:" + I},
		},
		{
			name: "Azure floating IP off", svc: clustertest.Service("stund", clustertest.Local, clustertest.UDPOnly, clustertest.Ingress("198.51.100.7"), clustertest.Annotate(annAzureFloatingIPOff, "true")),
			slices: []*discoveryv1.EndpointSlice{allReady}, nodes: threeNodes,
			want: []string{"azure-floating-ip-disabled:" + I},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := &Cluster{Service: tc.svc, Slices: derefAll(tc.slices), Nodes: derefAll(tc.nodes), NodesErr: tc.nodesErr}
			got := checkFindings(t, Diagnose(cl, tc.probes), tc.mention, tc.avoid)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}

// checkFindings returns the findings as id:severity, and checks that each
// has a message and a fix that mention what it must and avoid what it must
// not (both by finding id).
func checkFindings(t *testing.T, fs []check.Finding, mention, avoid map[string][]string) []string {
	t.Helper()
	got := []string{}
	for _, f := range fs {
		got = append(got, f.ID+":"+string(f.Severity))
		if f.Message == "" || f.Fix == "" {
			t.Errorf("%s without a message or a fix", f.ID)
		}
		for _, m := range mention[f.ID] {
			if !strings.Contains(f.Message+" "+f.Fix, m) {
				t.Errorf("%s does not mention %q:\n%s\nfix: %s", f.ID, m, f.Message, f.Fix)
			}
		}
		for _, m := range avoid[f.ID] {
			if strings.Contains(f.Message+" "+f.Fix, m) {
				t.Errorf("%s mentions %q:\n%s\nfix: %s", f.ID, m, f.Message, f.Fix)
			}
		}
	}
	return got
}

func TestTargets(t *testing.T) {
	svc := clustertest.Service("stund", clustertest.Ingress("198.51.100.7", "2001:db8:7::7"), func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{Hostname: "lb.example.com"})
		s.Spec.Ports = append(s.Spec.Ports,
			corev1.ServicePort{Name: "alt", Protocol: corev1.ProtocolUDP, Port: 19302},
			corev1.ServicePort{Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 9})
	})
	var got []string
	for _, tg := range Targets(svc, "svc/stund") {
		if tg.Input != "svc/stund" {
			t.Errorf("target input %q", tg.Input)
		}
		var trs []string
		for _, tr := range tg.Transports {
			trs = append(trs, string(tr))
		}
		got = append(got, tg.String()+" "+strings.Join(trs, ","))
	}
	want := []string{
		"198.51.100.7:3478 tcp,udp", "198.51.100.7:19302 udp",
		"[2001:db8:7::7]:3478 tcp,udp", "[2001:db8:7::7]:19302 udp",
		"lb.example.com:3478 tcp,udp", "lb.example.com:19302 udp",
	}
	if !slices.Equal(got, want) {
		t.Errorf("targets\n%q\nwant\n%q", got, want)
	}
}

func TestParseServiceRef(t *testing.T) {
	for in, want := range map[string]string{"svc/stund": "stund", "service/stund": "stund", "services/x": "x", "SVC/a": "a"} {
		if got, ok := ParseServiceRef(in); !ok || got != want {
			t.Errorf("ParseServiceRef(%q) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{"stund", "pod/stund", "stun:host", "1.2.3.4:3478", "[::1]:3478"} {
		if _, ok := ParseServiceRef(in); ok {
			t.Errorf("ParseServiceRef(%q) accepted", in)
		}
	}
}

func TestReadService(t *testing.T) {
	objs := []runtime.Object{clustertest.Service("stund", clustertest.Ingress("198.51.100.7")), allReady, clustertest.Slice("other", "o1", clustertest.Endpoint{Node: "worker-9", Ready: true})}
	for _, n := range threeNodes {
		objs = append(objs, n)
	}
	cs := fake.NewClientset(objs...)
	ctx := context.Background()
	cl, err := ReadService(ctx, cs, clustertest.NS, "stund")
	if err != nil {
		t.Fatal(err)
	}
	if cl.Service.Name != "stund" || len(cl.Slices) != 1 || len(cl.Nodes) != 3 || cl.NodesErr != nil {
		t.Errorf("read %s, %d slices, %d nodes, %v", cl.Service.Name, len(cl.Slices), len(cl.Nodes), cl.NodesErr)
	}
	if _, err := ReadService(ctx, cs, "elsewhere", "stund"); !errors.Is(err, ErrServiceNotFound) || !strings.Contains(err.Error(), "in namespace \"elsewhere\"") {
		t.Errorf("missing Service: %v", err)
	}
	cs.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("RBAC"))
	})
	cl, err = ReadService(ctx, cs, clustertest.NS, "stund")
	if err != nil || !apierrors.IsForbidden(cl.NodesErr) {
		t.Errorf("forbidden Nodes: %v, NodesErr %v", err, cl.NodesErr)
	}
}
