package main

import (
	"context"
	"encoding/json"
	"github.com/stund/stund/internal/golden"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stund/stund/internal/kubetest"
	"github.com/stund/stund/internal/stund/server"
)

// lab describes a one-node cluster whose Service fronts a real stund on
// 127.0.0.1: its ingress is 127.0.0.1 and the node's InternalIP is
// nodeIP. With nodeIP 127.0.0.1 the server sees "the node" — the
// masquerade case. mods change the Service and the objects before the
// API server serves them.
func lab(t *testing.T, etp corev1.ServiceExternalTrafficPolicy, nodeIP string, ingress bool,
	mods ...func(svc *corev1.Service, objs *[]runtime.Object)) (kubeconfig string, api *kubetest.Server) {
	t.Helper()
	srv, err := server.New(server.Config{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	port := int32(srv.Addrs()[0].Port())
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "stund", Namespace: "lab"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp,
			Ports: []corev1.ServicePort{
				{Name: "stun-udp", Protocol: corev1.ProtocolUDP, Port: port},
				{Name: "stun-tcp", Protocol: corev1.ProtocolTCP, Port: port},
			},
		},
	}
	if ingress {
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	}
	objs := []runtime.Object{
		svc,
		&corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
			Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "stund-1", Namespace: "lab", Labels: map[string]string{discoveryv1.LabelServiceName: "stund"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.2"}, NodeName: ptr.To("worker-1"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		},
	}
	for _, m := range mods {
		m(svc, &objs)
	}
	api = kubetest.New(objs...)
	url := api.Start()
	t.Cleanup(api.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(kubeconfig, url, "default"); err != nil {
		t.Fatal(err)
	}

	return kubeconfig, api
}

type findingDoc struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Fix      string `json:"fix"`
}

func findingIDs(t *testing.T, out string) ([]string, []findingDoc) {
	t.Helper()
	var doc struct {
		Verdict  string        `json:"verdict"`
		Findings *[]findingDoc `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Findings == nil {
		t.Fatalf("no findings array in\n%s", out)
	}
	ids := []string{}
	for _, f := range *doc.Findings {
		ids = append(ids, f.ID)
	}

	return ids, *doc.Findings
}

func TestServiceTarget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		etp     corev1.ServiceExternalTrafficPolicy
		nodeIP  string
		expect  string
		code    int
		want    []string
		without []string
	}{
		{"masquerade", corev1.ServiceExternalTrafficPolicyCluster, "127.0.0.1", "203.0.113.10", 1,
			[]string{"etp-cluster", "snat-node-ip", "mixed-protocol"}, nil},
		{"passthrough", corev1.ServiceExternalTrafficPolicyLocal, "10.1.0.2", "127.0.0.1", 0,
			[]string{"mixed-protocol"}, []string{"etp-cluster", "snat-node-ip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc, api := lab(t, tc.etp, tc.nodeIP, true)
			r := stuncheck(t, nil, "-o", "json", "--kubeconfig", kc, "-n", "lab", "--expect-ip", tc.expect, "svc/stund")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			ids, fs := findingIDs(t, r.stdout)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("findings %q, want %q", ids, tc.want)
			}
			for _, f := range fs {
				if f.Severity == "" || f.Message == "" || f.Fix == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			var doc struct {
				Probes []struct {
					Target, Transport, Verdict string
				} `json:"probes"`
			}
			_ = json.Unmarshal([]byte(r.stdout), &doc)
			if len(doc.Probes) != 2 || doc.Probes[0].Target != "svc/stund" || doc.Probes[0].Transport != "udp" || doc.Probes[1].Transport != "tcp" {
				t.Errorf("probes %+v, want udp and tcp to svc/stund", doc.Probes)
			}
			// The namespace came from -n, not the kubeconfig's "default".
			if !slices.ContainsFunc(api.Requests(), func(s string) bool { return strings.HasPrefix(s, "GET /api/v1/namespaces/lab/services/stund") }) {
				t.Errorf("did not read lab/stund: %q", api.Requests())
			}
		})
	}
}

// TestServiceText is the text a user reads for the masquerade case: the
// findings under the verdict, most severe first, each with its fix.
func TestServiceText(t *testing.T) {
	kc, _ := lab(t, corev1.ServiceExternalTrafficPolicyCluster, "127.0.0.1", true)
	r := stuncheck(t, nil, "--kubeconfig", kc, "--namespace", "lab", "--expect-ip", "203.0.113.10", "service/stund")
	if r.code != 1 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ports := regexp.MustCompile(`(127\.0\.0\.1|port):? ?\d+`)
	got := ports.ReplaceAllStringFunc(r.stdout, func(s string) string {
		return regexp.MustCompile(`\d+$`).ReplaceAllString(s, "PORT")
	})
	golden.Assert(t, "service.golden.txt", []byte(got))
	v := strings.Index(got, "verdict:")
	e, w, i := strings.Index(got, "✗ error"), strings.Index(got, "! warning"), strings.Index(got, "i info")
	if v < 0 || e < v || i < e || (w >= 0 && (w < e || w > i)) {
		t.Errorf("findings are not under the verdict, most severe first:\n%s", got)
	}
}

func TestServiceTargetErrors(t *testing.T) {
	kc, _ := lab(t, corev1.ServiceExternalTrafficPolicyLocal, "10.1.0.2", false)
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		stderrHas string
		findings  []string
	}{
		{"no such Service", []string{"--kubeconfig", kc, "-n", "lab", "svc/nope"}, 2,
			`stuncheck: service not found: "nope" in namespace "lab" (check -n/--namespace and --context) (see stuncheck --help)` + "\n", nil},
		{"empty Service name", []string{"--kubeconfig", kc, "-n", "lab", "svc/"}, 2, "not a Service name", nil},
		{"bad Service name", []string{"--kubeconfig", kc, "-n", "lab", "svc/Stund_1"}, 2, "not a Service name", nil},
		{"wrong namespace", []string{"--kubeconfig", kc, "svc/stund"}, 2, `namespace "default"`, nil},
		{"unknown context", []string{"--kubeconfig", kc, "--context", "prod", "-n", "lab", "svc/stund"}, 2, "prod", nil},
		{"kube flags without a Service", []string{"--kubeconfig", kc, "127.0.0.1"}, 2, "svc/NAME", nil},
		{"pending load balancer", []string{"-o", "json", "--kubeconfig", kc, "-n", "lab", "svc/stund"}, 3, "", []string{"no-lb-ingress", "mixed-protocol"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := stuncheck(t, nil, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderrHas) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.stderrHas)
			}
			if tc.findings != nil {
				if ids, _ := findingIDs(t, r.stdout); !slices.Equal(ids, tc.findings) {
					t.Errorf("findings %q, want %q", ids, tc.findings)
				}
			}
		})
	}
	// An API server that is gone: inconclusive (3), not a usage error.
	dead := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kubetest.WriteKubeconfig(dead, "http://127.0.0.1:1", "lab"); err != nil {
		t.Fatal(err)
	}
	if r := stuncheck(t, nil, "--kubeconfig", dead, "svc/stund"); r.code != 3 || !strings.Contains(r.stderr, "kubernetes API") {
		t.Errorf("unreachable API: exit %d, %q", r.code, r.stderr)
	}
}
