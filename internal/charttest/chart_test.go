package charttest

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// valuesFiles are the values files in testdata/ that must lint and render.
var valuesFiles = []string{
	"proxy.yaml",
	"daemonset.yaml",
	"split.yaml",
	"dualstack.yaml",
	"metrics-off.yaml",
	"rbac-off.yaml",
	"servicemonitor.yaml",
	"tcp-only.yaml",
	"cluster-etp.yaml",
}

// repeatableFlags may be given more than once; flagValues joins their
// values with commas.
var repeatableFlags = map[string]bool{
	"listen": true, "service": true, "internal-cidr": true, "proxy-trusted-cidr": true, "rate-limit-exempt": true,
}

// stundFlags lists the flags the built stund documents in --help; stund
// refuses unknown flags, so the chart may pass no others.
var stundFlags = sync.OnceValues(func() ([]string, error) {
	out, err := exec.Command(stundBin, "--help").Output()
	if err != nil {
		return nil, err
	}
	var flags []string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "  --"); ok {
			name, _, _ := strings.Cut(rest, " ")
			flags = append(flags, name)
		}
	}

	return flags, nil
})

func TestValuesFilesAreTested(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") && !slices.Contains(valuesFiles, e.Name()) {
			t.Errorf("testdata/%s is not in valuesFiles", e.Name())
		}
	}
}

func TestLintStrict(t *testing.T) {
	cases := append([]string{""}, valuesFiles...)
	for _, f := range cases {
		name := f
		if name == "" {
			name = "defaults"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir}
			if f != "" {
				args = append(args, "--values", filepath.Join("testdata", f))
			}
			out, err := helm(args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("unexpected lint output:\n%s", out)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	ms := render(t, nil)

	wantKinds := map[string]int{
		"Deployment": 1, "Service": 2, "ServiceAccount": 1, "PodDisruptionBudget": 1,
		"ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Pod": 1,
	}
	if got := ms.kinds(); !maps.Equal(got, wantKinds) {
		t.Errorf("rendered kinds = %v, want %v", got, wantKinds)
	}
	checkCommon(t, ms)

	svc := one[corev1.Service](t, ms, "stund")
	checkStunService(t, svc, corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "UDP", "TCP")
	// A single-stack API server refuses a Service that requires two
	// families: by default the cluster picks (its primary family).
	for _, s := range all[corev1.Service](ms) {
		if p := s.Spec.IPFamilyPolicy; p != nil {
			t.Errorf("Service %s: ipFamilyPolicy %s, want none by default", s.Name, *p)
		}
		if f := s.Spec.IPFamilies; len(f) != 0 {
			t.Errorf("Service %s: ipFamilies %v, want none by default", s.Name, f)
		}
	}

	dep := one[appsv1.Deployment](t, ms, "stund")
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.RollingUpdate == nil || dep.Spec.Strategy.RollingUpdate.MaxUnavailable.String() != "0" {
		t.Errorf("strategy = %+v, want a surge rollout with maxUnavailable 0", dep.Spec.Strategy)
	}
	spec := dep.Spec.Template.Spec
	c := stundContainer(t, &spec)
	if got, want := c.Image, "ghcr.io/stund/stund:0.1.0"; got != want {
		t.Errorf("image = %q, want %q", got, want)
	}
	args := flagValues(t, c.Args)
	for flag, want := range map[string]string{
		"listen": ":3478", "http-listen": ":9478", "drain-timeout": "15s",
		"log-level": "info", "log-format": "json", "software": "stund",
	} {
		if got := args[flag]; got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	for _, off := range []string{"rfc3489", "response-origin"} {
		if _, ok := args[off]; ok {
			t.Errorf("--%s is passed by default", off)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("preStop = %+v, want a 5s sleep", c.Lifecycle)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g != 30 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 30 (5 preStop + 15 drain + 10)", g)
	}
	if len(spec.TopologySpreadConstraints) != 1 {
		t.Fatalf("topologySpreadConstraints = %+v, want the default spread over nodes", spec.TopologySpreadConstraints)
	}
	tsc := spec.TopologySpreadConstraints[0]
	if tsc.TopologyKey != "kubernetes.io/hostname" || tsc.LabelSelector == nil ||
		!maps.Equal(tsc.LabelSelector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("topology spread = %+v, want hostname spread selecting the stund pods", tsc)
	}

	pdb := one[policyv1.PodDisruptionBudget](t, ms, "stund")
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB = %+v, want maxUnavailable 1", pdb.Spec)
	}
	if !maps.Equal(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selector %v != Deployment selector %v", pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels)
	}

	metrics := one[corev1.Service](t, ms, "stund-metrics")
	if metrics.Spec.Type != corev1.ServiceTypeClusterIP || len(metrics.Spec.Ports) != 1 ||
		metrics.Spec.Ports[0].Port != 9478 || metrics.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("metrics Service = %+v, want ClusterIP 9478 -> http", metrics.Spec)
	}
	if !maps.Equal(metrics.Spec.Selector, dep.Spec.Selector.MatchLabels) {
		t.Errorf("metrics Service selector %v != pod selector", metrics.Spec.Selector)
	}

	sa := one[corev1.ServiceAccount](t, ms, "stund")
	if spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, ServiceAccount is %q", spec.ServiceAccountName, sa.Name)
	}
	checkRBAC(t, ms, "stund")
	checkTestPod(t, ms, map[string]string{"stund": "udp,tcp"})
}

func TestDaemonSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		sets  []string
	}{
		{name: "set", sets: []string{"kind=DaemonSet"}},
		{name: "file", files: []string{"daemonset.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := render(t, tc.files, tc.sets...)
			checkCommon(t, ms)
			k := ms.kinds()
			if k["DaemonSet"] != 1 || k["Deployment"] != 0 {
				t.Fatalf("kinds = %v, want one DaemonSet and no Deployment", k)
			}
			if k["PodDisruptionBudget"] != 0 {
				t.Errorf("a PDB is rendered for a DaemonSet")
			}
			ds := one[appsv1.DaemonSet](t, ms, "stund")
			spec := ds.Spec.Template.Spec
			stundContainer(t, &spec)
			if len(spec.TopologySpreadConstraints) != 0 {
				t.Errorf("topology spread on a DaemonSet: %+v", spec.TopologySpreadConstraints)
			}
			if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ds.Spec.UpdateStrategy.RollingUpdate == nil ||
				ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge.String() != "1" {
				t.Errorf("updateStrategy = %+v, want surge 1", ds.Spec.UpdateStrategy)
			}
			if tc.name == "file" {
				if spec.NodeSelector["node-role.kubernetes.io/edge"] != "" || len(spec.NodeSelector) != 1 ||
					len(spec.Tolerations) != 1 || spec.PriorityClassName != "system-node-critical" {
					t.Errorf("scheduling values not applied: %v %v %q", spec.NodeSelector, spec.Tolerations, spec.PriorityClassName)
				}
			}
			svc := one[corev1.Service](t, ms, "stund")
			checkStunService(t, svc, corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "UDP", "TCP")
		})
	}
}

func TestSplitServices(t *testing.T) {
	ms := render(t, []string{"split.yaml"})
	checkCommon(t, ms)
	if n := len(all[corev1.Service](ms)); n != 3 {
		t.Fatalf("%d Services, want stund-udp, stund-tcp and stund-metrics: %s", n, ms.names())
	}
	for _, p := range []struct {
		name, proto, other string
		nodePort           int32
	}{
		{"stund-udp", "UDP", "udp", 31478},
		{"stund-tcp", "TCP", "tcp", 31479},
	} {
		svc := one[corev1.Service](t, ms, p.name)
		checkStunService(t, svc, corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, corev1.Protocol(p.proto))
		if svc.Spec.Ports[0].NodePort != p.nodePort {
			t.Errorf("%s nodePort = %d, want %d", p.name, svc.Spec.Ports[0].NodePort, p.nodePort)
		}
		if got := svc.Spec.LoadBalancerClass; got == nil || *got != "service.k8s.aws/nlb" {
			t.Errorf("%s loadBalancerClass = %v", p.name, got)
		}
		want := map[string]string{
			"service.beta.kubernetes.io/aws-load-balancer-type":            "external",
			"service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "instance",
			"example.com/protocol": p.other,
		}
		if !maps.Equal(svc.Annotations, want) {
			t.Errorf("%s annotations = %v, want %v", p.name, svc.Annotations, want)
		}
		if !slices.Equal(svc.Spec.LoadBalancerSourceRanges, []string{"0.0.0.0/0"}) {
			t.Errorf("%s loadBalancerSourceRanges = %v", p.name, svc.Spec.LoadBalancerSourceRanges)
		}
	}
	checkTestPod(t, ms, map[string]string{"stund-udp": "udp", "stund-tcp": "tcp"})
}

func TestDualStack(t *testing.T) {
	ms := render(t, []string{"dualstack.yaml"})
	checkCommon(t, ms)
	svc := one[corev1.Service](t, ms, "stund")
	checkStunService(t, svc, corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "UDP", "TCP")
	if p := svc.Spec.IPFamilyPolicy; p == nil || *p != corev1.IPFamilyPolicyRequireDualStack {
		t.Errorf("ipFamilyPolicy = %v, want RequireDualStack", p)
	}
	if want := []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}; !slices.Equal(svc.Spec.IPFamilies, want) {
		t.Errorf("ipFamilies = %v, want %v", svc.Spec.IPFamilies, want)
	}
	if !slices.Equal(svc.Spec.LoadBalancerSourceRanges, []string{"0.0.0.0/0", "::/0"}) {
		t.Errorf("loadBalancerSourceRanges = %v", svc.Spec.LoadBalancerSourceRanges)
	}
	// One wildcard listener serves both families.
	c := stundContainer(t, &one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec)
	if got := flagValues(t, c.Args)["listen"]; got != ":3478" {
		t.Errorf("--listen = %q, want the dual-stack wildcard :3478", got)
	}
}

// TestKubernetesAware checks the wiring of the Kubernetes-aware
// diagnosis: by default stund gets --service for its Service (both when
// split) and the token; turned off, neither.
func TestKubernetesAware(t *testing.T) {
	services := func(args []string) []string {
		var out []string
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--service="); ok {
				out = append(out, v)
			}
		}

		return out
	}
	for _, tc := range []struct {
		name     string
		files    []string
		sets     []string
		services []string
		internal string
	}{
		{"default", nil, nil, []string{"stund"}, ""},
		{"split", []string{"split.yaml"}, nil, []string{"stund-udp", "stund-tcp"}, ""},
		{"off, with internal CIDRs", nil, []string{"kubernetes.enabled=false", "kubernetes.internalCIDRs={10.0.0.0/8}"}, nil, "10.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := render(t, tc.files, tc.sets...)
			checkCommon(t, ms)
			c := stundContainer(t, workloadSpec(t, ms))
			if got := services(c.Args); fmt.Sprint(got) != fmt.Sprint(tc.services) {
				t.Errorf("--service %v, want %v", got, tc.services)
			}
			if got := flagValues(t, c.Args)["internal-cidr"]; got != tc.internal {
				t.Errorf("--internal-cidr %q, want %q", got, tc.internal)
			}
			if sas := all[corev1.ServiceAccount](ms); len(sas) == 1 {
				mounted := sas[0].AutomountServiceAccountToken != nil && *sas[0].AutomountServiceAccountToken
				if mounted != (tc.services != nil) {
					t.Errorf("ServiceAccount automount %v, want %v", mounted, tc.services != nil)
				}
			}
		})
	}
}

// TestProxyAndLimits renders PROXY protocol behind a proxy load balancer
// with its address exempt from the per-source limits.
func TestProxyAndLimits(t *testing.T) {
	ms := render(t, []string{"proxy.yaml"})
	checkCommon(t, ms)
	c := stundContainer(t, &one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec)
	args := flagValues(t, c.Args)
	for flag, want := range map[string]string{
		"proxy-protocol": "", "proxy-trusted-cidr": "10.0.0.0/24",
		"rate-limit": "50", "rate-limit-burst": "500", "global-rate-limit": "100000",
		"rate-limit-exempt": "100.64.0.0/10", "max-tcp-conns": "2000", "max-tcp-conns-per-source": "0",
		"tcp-idle-timeout": "30s",
	} {
		if got, ok := args[flag]; !ok || got != want {
			t.Errorf("--%s = %q (present %v), want %q", flag, got, ok, want)
		}
	}
	if _, ok := args["proxy-protocol-optional"]; ok {
		t.Error("--proxy-protocol-optional rendered although off")
	}
	// The defaults: limits on, PROXY protocol off.
	def := flagValues(t, stundContainer(t, &one[appsv1.Deployment](t, render(t, nil), "stund").Spec.Template.Spec).Args)
	if _, ok := def["proxy-protocol"]; ok {
		t.Error("--proxy-protocol rendered by default")
	}
	if def["rate-limit"] != "20" || def["rate-limit-burst"] != "100" || def["max-tcp-conns-per-source"] != "100" {
		t.Errorf("default limits = %v", def)
	}
}

func TestMetricsOff(t *testing.T) {
	ms := render(t, []string{"metrics-off.yaml"})
	checkCommon(t, ms)
	for _, svc := range all[corev1.Service](ms) {
		if svc.Name != "stund" {
			t.Errorf("unexpected Service %s with metrics off", svc.Name)
		}
	}
	if n := len(all[monitoringv1.ServiceMonitor](ms)); n != 0 {
		t.Errorf("%d ServiceMonitors with metrics off", n)
	}
	// The HTTP port still serves the probes.
	stundContainer(t, &one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec)
}

func TestRBACOff(t *testing.T) {
	ms := render(t, []string{"rbac-off.yaml"})
	checkCommon(t, ms)
	k := ms.kinds()
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if k[kind] != 0 {
			t.Errorf("%d %s rendered with rbac and serviceAccount off", k[kind], kind)
		}
	}
	spec := one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec
	if spec.ServiceAccountName != "stund-managed" {
		t.Errorf("serviceAccountName = %q, want stund-managed", spec.ServiceAccountName)
	}
	checkTestPod(t, ms, map[string]string{"stund": "udp,tcp"})

	// RBAC alone off keeps the ServiceAccount; RBAC alone on binds it.
	ms = render(t, nil, "rbac.create=false")
	if k := ms.kinds(); k["ServiceAccount"] != 1 || k["Role"] != 0 || k["ClusterRole"] != 0 {
		t.Errorf("rbac.create=false: kinds = %v", k)
	}
	ms = render(t, nil, "serviceAccount.create=false", "serviceAccount.name=external")
	checkRBAC(t, ms, "external")
}

func TestServiceMonitor(t *testing.T) {
	ms := render(t, []string{"servicemonitor.yaml"})
	checkCommon(t, ms)
	sm := one[monitoringv1.ServiceMonitor](t, ms, "stund")
	metrics := one[corev1.Service](t, ms, "stund-metrics")
	for k, v := range sm.Spec.Selector.MatchLabels {
		if metrics.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, metrics Service has %q", k, v, metrics.Labels[k])
		}
	}
	stun := one[corev1.Service](t, ms, "stund")
	if selects(sm.Spec.Selector.MatchLabels, stun.Labels) {
		t.Errorf("ServiceMonitor also selects the STUN Service")
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("namespaceSelector = %v", sm.Spec.NamespaceSelector)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints = %+v", sm.Spec.Endpoints)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != metrics.Spec.Ports[0].Name || ep.Path != "/metrics" || ep.Interval != "15s" ||
		ep.ScrapeTimeout != "5s" || len(ep.MetricRelabelConfigs) != 1 {
		t.Errorf("endpoint = %+v", ep)
	}
	if sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("labels = %v, want the release label", sm.Labels)
	}
}

func TestTCPOnly(t *testing.T) {
	ms := render(t, []string{"tcp-only.yaml"})
	checkCommon(t, ms)
	svc := one[corev1.Service](t, ms, "stund")
	checkStunService(t, svc, corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "TCP")
	checkTestPod(t, ms, map[string]string{"stund": "tcp"})
	// split with one protocol: a single "-tcp" Service.
	ms = render(t, []string{"tcp-only.yaml"}, "service.split=true")
	one[corev1.Service](t, ms, "stund-tcp")
	if n := len(all[corev1.Service](ms)); n != 2 {
		t.Errorf("%d Services, want stund-tcp and stund-metrics: %s", n, ms.names())
	}
}

func TestOtherValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sets  []string
		check func(t *testing.T, ms manifests)
	}{
		{
			// One RESPONSE-ORIGIN per family: a list renders one flag each.
			name: "response origin per family",
			sets: []string{"responseOrigin={198.51.100.1:3478,[2001:db8::1]:3478}"},
			check: func(t *testing.T, ms manifests) {
				spec := one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec
				var got []string
				for _, a := range stundContainer(t, &spec).Args {
					if v, ok := strings.CutPrefix(a, "--response-origin="); ok {
						got = append(got, v)
					}
				}
				if want := []string{"198.51.100.1:3478", "[2001:db8::1]:3478"}; !slices.Equal(got, want) {
					t.Errorf("--response-origin flags %q, want %q", got, want)
				}
			},
		},
		{
			name: "stund flags",
			sets: []string{"rfc3489=true", "responseOrigin=203.0.113.7:3478", "software=", "logLevel=debug",
				"extraArgs={--udp-sockets=2}", "shutdown.drainTimeoutSeconds=40", "shutdown.preStopSleepSeconds=0"},
			check: func(t *testing.T, ms manifests) {
				spec := one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec
				c := stundContainer(t, &spec)
				args := flagValues(t, c.Args)
				for flag, want := range map[string]string{
					"rfc3489": "", "response-origin": "203.0.113.7:3478", "software": "",
					"log-level": "debug", "udp-sockets": "2", "drain-timeout": "40s",
				} {
					if got, ok := args[flag]; !ok || got != want {
						t.Errorf("--%s = %q (present %v), want %q", flag, got, ok, want)
					}
				}
				if c.Lifecycle != nil {
					t.Errorf("preStop rendered with preStopSleepSeconds 0: %+v", c.Lifecycle)
				}
				if g := *spec.TerminationGracePeriodSeconds; g != 50 {
					t.Errorf("terminationGracePeriodSeconds = %d, want 50", g)
				}
			},
		},
		{
			name: "old cluster gets no preStop sleep",
			sets: nil,
			check: func(t *testing.T, _ manifests) {
				out, err := helm("template", release, chartDir, "--kube-version", "1.29.0")
				if err != nil {
					t.Fatal(err)
				}
				dep := one[appsv1.Deployment](t, parseManifests(t, out), "stund")
				if c := stundContainer(t, &dep.Spec.Template.Spec); c.Lifecycle != nil {
					t.Errorf("preStop sleep on Kubernetes 1.29, which lacks it: %+v", c.Lifecycle)
				}
			},
		},
		{
			name: "image digest and pull secrets",
			sets: []string{"image.tag=1.2.3", "image.digest=sha256:" + strings.Repeat("ab", 32), "imagePullSecrets[0].name=regcred"},
			check: func(t *testing.T, ms manifests) {
				spec := one[appsv1.Deployment](t, ms, "stund").Spec.Template.Spec
				c := stundContainer(t, &spec)
				if want := "ghcr.io/stund/stund:1.2.3@sha256:" + strings.Repeat("ab", 32); c.Image != want {
					t.Errorf("image = %q, want %q", c.Image, want)
				}
				if len(spec.ImagePullSecrets) != 1 || spec.ImagePullSecrets[0].Name != "regcred" {
					t.Errorf("imagePullSecrets = %v", spec.ImagePullSecrets)
				}
			},
		},
		{
			name: "NodePort with Cluster policy",
			sets: []string{"service.type=NodePort", "service.externalTrafficPolicy=Cluster", "service.udp.nodePort=30478"},
			check: func(t *testing.T, ms manifests) {
				svc := one[corev1.Service](t, ms, "stund")
				checkStunService(t, svc, corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyCluster, "UDP", "TCP")
				if svc.Spec.Ports[0].NodePort != 30478 || svc.Spec.Ports[1].NodePort != 0 {
					t.Errorf("nodePorts = %d, %d", svc.Spec.Ports[0].NodePort, svc.Spec.Ports[1].NodePort)
				}
			},
		},
		{
			name: "ClusterIP has no external policy",
			sets: []string{"service.type=ClusterIP", "service.udp.nodePort=30478"},
			check: func(t *testing.T, ms manifests) {
				svc := one[corev1.Service](t, ms, "stund")
				checkStunService(t, svc, corev1.ServiceTypeClusterIP, "", "UDP", "TCP")
				if svc.Spec.Ports[0].NodePort != 0 {
					t.Errorf("nodePort on a ClusterIP Service")
				}
			},
		},
		{
			name: "load balancer settings",
			sets: []string{"service.loadBalancerIP=203.0.113.10", "service.healthCheckNodePort=32123",
				"service.annotations.metallb\\.io/allow-shared-ip=stund", "service.ipFamilyPolicy=SingleStack",
				"podDisruptionBudget.minAvailable=1", "replicas=3"},
			check: func(t *testing.T, ms manifests) {
				svc := one[corev1.Service](t, ms, "stund")
				if svc.Spec.LoadBalancerIP != "203.0.113.10" || svc.Spec.HealthCheckNodePort != 32123 ||
					svc.Annotations["metallb.io/allow-shared-ip"] != "stund" {
					t.Errorf("Service = %+v %v", svc.Spec, svc.Annotations)
				}
				pdb := one[policyv1.PodDisruptionBudget](t, ms, "stund")
				if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) || pdb.Spec.MaxUnavailable != nil {
					t.Errorf("PDB = %+v, want minAvailable 1 only", pdb.Spec)
				}
			},
		},
		{
			name: "release name and overrides",
			sets: []string{"fullnameOverride=stun-edge", "commonLabels.team=rtc"},
			check: func(t *testing.T, ms manifests) {
				checkCommon(t, ms)
				one[corev1.Service](t, ms, "stun-edge")
				one[corev1.Service](t, ms, "stun-edge-metrics")
				dep := one[appsv1.Deployment](t, ms, "stun-edge")
				if dep.Labels["team"] != "rtc" || dep.Spec.Template.Labels["team"] != "rtc" {
					t.Errorf("commonLabels missing: %v", dep.Labels)
				}
				if _, ok := dep.Spec.Selector.MatchLabels["team"]; ok {
					t.Errorf("commonLabels leaked into the immutable selector")
				}
			},
		},
		{
			name: "tests off",
			sets: []string{"tests.enabled=false"},
			check: func(t *testing.T, ms manifests) {
				if n := len(all[corev1.Pod](ms)); n != 0 {
					t.Errorf("%d test pods with tests.enabled=false", n)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, render(t, nil, tc.sets...))
		})
	}
}

// TestRefused checks that the schema and the templates refuse bad values,
// and that the same command with a good value passes (so a test that always
// fails cannot pass for one that refuses).
func TestRefused(t *testing.T) {
	const schemaErr = "values don't meet the specifications of the schema"
	for _, tc := range []struct {
		name, bad, good, want string
	}{
		{"externalTrafficPolicy enum", "service.externalTrafficPolicy=Bogus", "service.externalTrafficPolicy=Cluster", schemaErr},
		{"kind enum", "kind=StatefulThing", "kind=DaemonSet", schemaErr},
		{"service type enum", "service.type=ExternalName", "service.type=NodePort", schemaErr},
		{"unknown top-level value", "replicaCount=3", "replicas=3", schemaErr},
		{"unknown nested value", "service.extrnalTrafficPolicy=Local", "service.externalTrafficPolicy=Local", schemaErr},
		{"protocol enum", "service.protocols={SCTP}", "service.protocols={UDP}", schemaErr},
		{"sessionAffinity enum", "service.sessionAffinity=Sticky", "service.sessionAffinity=ClientIP", schemaErr},
		{"log level enum", "logLevel=verbose", "logLevel=debug", schemaErr},
		{"ipFamilies enum", "service.ipFamilies={IPv5}", "service.ipFamilies={IPv6}", schemaErr},
		{"chart-managed flag in extraArgs", "extraArgs={--drain-timeout=1s}", "extraArgs={--udp-sockets=2}", schemaErr},
		{"PROXY protocol without trusted CIDRs", "proxyProtocol.enabled=true", "proxyProtocol.enabled=true,proxyProtocol.trustedCIDRs={10.0.0.1/32}", schemaErr},
		{"negative rate limit", "rateLimit.perSource=-1", "rateLimit.perSource=0", schemaErr},
		{"rate-limit flag in extraArgs", "extraArgs={--rate-limit=5}", "extraArgs={--udp-sockets=1}", schemaErr},
		{"port range", "stunPort=70000", "stunPort=3479", schemaErr},
		{"digest format", "image.digest=latest", "image.digest=sha256:" + strings.Repeat("0", 64), schemaErr},
		{"Recreate on a DaemonSet", "kind=DaemonSet,updateStrategy.type=Recreate", "kind=DaemonSet,updateStrategy.type=OnDelete", schemaErr},
		{"grace period shorter than the drain", "shutdown.terminationGracePeriodSeconds=20", "shutdown.terminationGracePeriodSeconds=21",
			"must exceed shutdown.preStopSleepSeconds + shutdown.drainTimeoutSeconds = 20"},
		{"ServiceMonitor without metrics", "metrics.enabled=false,metrics.serviceMonitor.enabled=true",
			"metrics.enabled=true,metrics.serviceMonitor.enabled=true", "needs metrics.enabled"},
		{"healthCheckNodePort with split", "service.split=true,service.healthCheckNodePort=32000",
			"service.split=false,service.healthCheckNodePort=32000", "cannot share one health-check node port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm(templateArgs(chartDir, nil, []string{tc.bad})...)
			if err == nil {
				t.Fatalf("--set %s was accepted", tc.bad)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--set %s failed without %q:\n%v", tc.bad, tc.want, err)
			}
			if _, err := helm(templateArgs(chartDir, nil, []string{tc.good})...); err != nil {
				t.Errorf("control --set %s was refused: %v", tc.good, err)
			}
		})
	}
}

func TestNotes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		sets    []string
		want    []string
		wantNot []string
	}{
		{
			name: "defaults",
			want: []string{
				`kubectl -n stun-system get service stund -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}'`,
				`stuncheck --transport udp,tcp "$EXTERNAL:3478"`,
				"OUTSIDE the cluster",
				"helm test stund -n stun-system --logs",
				"Cluster semantics",
				"WARNING: a Deployment of 2 pod(s) with externalTrafficPolicy Local",
				"kubectl -n stun-system port-forward service/stund-metrics 9478",
			},
			wantNot: []string{"externalTrafficPolicy is Cluster", "single replica", "sessionAffinity is ClientIP", "only TCP"},
		},
		{
			name:    "cluster policy",
			files:   []string{"cluster-etp.yaml"},
			want:    []string{"WARNING: service.externalTrafficPolicy is Cluster", "masquerades it to a node's IP"},
			wantNot: []string{"with externalTrafficPolicy Local:"},
		},
		{
			name:    "daemonset",
			files:   []string{"daemonset.yaml"},
			want:    []string{"runs as a DaemonSet", `stuncheck --transport udp,tcp "$EXTERNAL:3478"`},
			wantNot: []string{"WARNING"},
		},
		{
			name:  "single replica",
			sets:  []string{"replicas=1"},
			want:  []string{"With a single replica"},
			files: nil,
		},
		{
			name:  "split",
			files: []string{"split.yaml"},
			want: []string{
				"get service stund-udp -o jsonpath", `stuncheck --transport udp "$EXTERNAL:3478"`,
				"get service stund-tcp -o jsonpath", `stuncheck --transport tcp "$EXTERNAL:3478"`,
			},
		},
		{
			name:  "tcp only, affinity",
			files: []string{"tcp-only.yaml"},
			sets:  []string{"service.sessionAffinity=ClientIP"},
			want:  []string{"NOTE: only TCP is exposed", `stuncheck --transport tcp "$EXTERNAL:3478"`},
			// ClientIP on a TCP-only Service is fine.
			wantNot: []string{"sessionAffinity is ClientIP"},
		},
		{
			name: "affinity on UDP",
			sets: []string{"service.sessionAffinity=ClientIP"},
			want: []string{"WARNING: service.sessionAffinity is ClientIP on a UDP Service"},
		},
		{
			name:    "metrics and tests off",
			files:   []string{"metrics-off.yaml"},
			sets:    []string{"tests.enabled=false"},
			wantNot: []string{"port-forward", "helm test"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes := renderNotes(t, tc.files, tc.sets...)
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(notes, w) {
					t.Errorf("NOTES contain %q:\n%s", w, notes)
				}
			}
		})
	}
}

// checkCommon asserts what every render must satisfy: names are DNS labels,
// namespaced objects are in the release namespace, every object carries the
// standard labels, and every pod template is hardened.
func checkCommon(t *testing.T, ms manifests) {
	t.Helper()
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true}
	for _, o := range ms {
		meta := objectMeta(o.Obj)
		if len(o.Name) == 0 || len(o.Name) > 63 {
			t.Errorf("%s %q: bad name length", o.Kind, o.Name)
		}
		if clusterScoped[o.Kind] {
			if meta.Namespace != "" {
				t.Errorf("%s %s has namespace %q", o.Kind, o.Name, meta.Namespace)
			}
		} else if meta.Namespace != namespace {
			t.Errorf("%s %s: namespace %q, want %q", o.Kind, o.Name, meta.Namespace, namespace)
		}
		for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"} {
			if meta.Labels[l] == "" {
				t.Errorf("%s %s lacks label %s", o.Kind, o.Name, l)
			}
		}
	}
	for _, d := range all[appsv1.Deployment](ms) {
		checkPodTemplate(t, d.Spec.Selector.MatchLabels, &d.Spec.Template)
	}
	for _, d := range all[appsv1.DaemonSet](ms) {
		checkPodTemplate(t, d.Spec.Selector.MatchLabels, &d.Spec.Template)
	}
	// Every Service that is not the metrics one sends to the stund pods.
	for _, svc := range all[corev1.Service](ms) {
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s has no selector", svc.Name)
		}
	}
}

func objectMeta(obj any) *struct {
	Namespace string
	Labels    map[string]string
} {
	var ns string
	var labels map[string]string
	switch o := obj.(type) {
	case *corev1.Service:
		ns, labels = o.Namespace, o.Labels
	case *corev1.ServiceAccount:
		ns, labels = o.Namespace, o.Labels
	case *corev1.Pod:
		ns, labels = o.Namespace, o.Labels
	case *corev1.ConfigMap:
		ns, labels = o.Namespace, o.Labels
	case *appsv1.Deployment:
		ns, labels = o.Namespace, o.Labels
	case *appsv1.DaemonSet:
		ns, labels = o.Namespace, o.Labels
	case *policyv1.PodDisruptionBudget:
		ns, labels = o.Namespace, o.Labels
	case *rbacv1.ClusterRole:
		ns, labels = o.Namespace, o.Labels
	case *rbacv1.ClusterRoleBinding:
		ns, labels = o.Namespace, o.Labels
	case *rbacv1.Role:
		ns, labels = o.Namespace, o.Labels
	case *rbacv1.RoleBinding:
		ns, labels = o.Namespace, o.Labels
	case *monitoringv1.ServiceMonitor:
		ns, labels = o.Namespace, o.Labels
	default:
		panic(fmt.Sprintf("objectMeta: %T", obj))
	}

	return &struct {
		Namespace string
		Labels    map[string]string
	}{ns, labels}
}

// checkPodTemplate asserts the hardening and wiring of the stund pods.
func checkPodTemplate(t *testing.T, selector map[string]string, tpl *corev1.PodTemplateSpec) {
	t.Helper()
	if !selects(selector, tpl.Labels) {
		t.Errorf("selector %v does not select the pod labels %v", selector, tpl.Labels)
	}
	spec := &tpl.Spec
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("enableServiceLinks is not false: Service links would inject STUND_* variables into stund's environment")
	}
	// stund reads the API with the pod's token when kubernetes.enabled (the
	// default) and passes --service; without it the token stays out.
	kube := slices.ContainsFunc(stundContainer(t, spec).Args, func(a string) bool { return strings.HasPrefix(a, "--service=") })
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != kube {
		t.Errorf("automountServiceAccountToken = %v with --service given: %v; want the token mounted exactly when stund reads the API",
			spec.AutomountServiceAccountToken, kube)
	}
	if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want non-root with RuntimeDefault seccomp", psc)
	}
	c := stundContainer(t, spec)
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Errorf("container may run as root")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("root filesystem is writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("privilege escalation allowed")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities = %+v, want drop ALL", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container seccomp = %+v", sc.SeccompProfile)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("privileged container")
	}

	// Probes on the HTTP port, which --http-listen opens.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	args := flagValues(t, c.Args)
	http, ok := ports["http"]
	if !ok || http.Protocol != corev1.ProtocolTCP || args["http-listen"] != fmt.Sprintf(":%d", http.ContainerPort) {
		t.Errorf("http port %+v does not match --http-listen=%s", http, args["http-listen"])
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %+v, want GET %s on port http", p.name, p.probe, p.path)
		}
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
		p, ok := ports["stun-"+strings.ToLower(string(proto))]
		if !ok || p.Protocol != proto || args["listen"] != fmt.Sprintf(":%d", p.ContainerPort) {
			t.Errorf("port stun-%s = %+v does not match --listen=%s", strings.ToLower(string(proto)), p, args["listen"])
		}
	}

	// The downward API names the pod.
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["POD_NAME"] != "metadata.name" || env["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("downward API env = %v, want POD_NAME and POD_NAMESPACE", env)
	}

	// The kubelet must not kill stund before its drain ends.
	drain, err := parseSeconds(args["drain-timeout"])
	if err != nil {
		t.Errorf("--drain-timeout=%q: %v", args["drain-timeout"], err)
	}
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("preStop = %+v, want a sleep action (the image has no shell)", c.Lifecycle.PreStop)
		} else {
			preStop = c.Lifecycle.PreStop.Sleep.Seconds
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v <= preStop %d + drain %d", g, preStop, drain)
	}
}

func parseSeconds(s string) (int64, error) {
	var n int64
	if _, err := fmt.Sscanf(s, "%ds", &n); err != nil || fmt.Sprintf("%ds", n) != s {
		return 0, fmt.Errorf("not whole seconds")
	}

	return n, nil
}

// stundContainer returns the pod's only container, named stund.
func stundContainer(t *testing.T, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "stund" {
		t.Fatalf("containers = %+v, want one named stund", spec.Containers)
	}

	return &spec.Containers[0]
}

// flagValues parses stund's arguments (all --name=value or --name) and
// fails for any flag not in the contract or given twice.
func flagValues(t *testing.T, args []string) map[string]string {
	t.Helper()
	known, err := stundFlags()
	if err != nil {
		t.Fatalf("stund --help: %v", err)
	}
	out := map[string]string{}
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") || !slices.Contains(known, name) {
			t.Errorf("argument %q is not a --flag stund has (%v): stund would refuse it", a, known)
		}
		if prev, dup := out[name]; dup {
			if !repeatableFlags[name] {
				t.Errorf("--%s given twice", name)
			}
			value = prev + "," + value
		}
		out[name] = value
	}

	return out
}

// checkStunService asserts a STUN Service's type, policy and ports.
func checkStunService(t *testing.T, svc *corev1.Service, typ corev1.ServiceType, etp corev1.ServiceExternalTrafficPolicy, protos ...corev1.Protocol) {
	t.Helper()
	if svc.Spec.Type != typ {
		t.Errorf("%s type = %s, want %s", svc.Name, svc.Spec.Type, typ)
	}
	if svc.Spec.ExternalTrafficPolicy != etp {
		t.Errorf("%s externalTrafficPolicy = %q, want %q", svc.Name, svc.Spec.ExternalTrafficPolicy, etp)
	}
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityNone {
		t.Errorf("%s sessionAffinity = %q, want None", svc.Name, svc.Spec.SessionAffinity)
	}
	if svc.Spec.HealthCheckNodePort != 0 && (typ != corev1.ServiceTypeLoadBalancer || etp != corev1.ServiceExternalTrafficPolicyLocal) {
		t.Errorf("%s healthCheckNodePort set without LoadBalancer + Local", svc.Name)
	}
	var got []corev1.Protocol
	for _, p := range svc.Spec.Ports {
		got = append(got, p.Protocol)
		want := "stun-" + strings.ToLower(string(p.Protocol))
		if p.Port != 3478 || p.TargetPort != intstr.FromString(want) || p.Name != want {
			t.Errorf("%s port = %+v, want 3478 -> %s", svc.Name, p, want)
		}
	}
	if !slices.Equal(got, protos) {
		t.Errorf("%s protocols = %v, want %v", svc.Name, got, protos)
	}
}

// checkRBAC asserts exactly the rules the Kubernetes-aware diagnosis needs,
// bound to the pods' ServiceAccount.
func checkRBAC(t *testing.T, ms manifests, sa string) {
	t.Helper()
	cr := all[rbacv1.ClusterRole](ms)
	crb := all[rbacv1.ClusterRoleBinding](ms)
	roles := all[rbacv1.Role](ms)
	rbs := all[rbacv1.RoleBinding](ms)
	if len(cr) != 1 || len(crb) != 1 || len(roles) != 1 || len(rbs) != 1 {
		t.Fatalf("RBAC objects: %s", ms.names())
	}
	// Exactly what stund's informers and its Events need.
	wantCluster := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}}}
	if fmt.Sprint(cr[0].Rules) != fmt.Sprint(wantCluster) {
		t.Errorf("ClusterRole rules = %+v, want %+v", cr[0].Rules, wantCluster)
	}
	wantNS := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	}
	if fmt.Sprint(roles[0].Rules) != fmt.Sprint(wantNS) {
		t.Errorf("Role rules = %+v, want %+v", roles[0].Rules, wantNS)
	}
	for _, b := range []struct {
		kind, ref, want string
		subjects        []rbacv1.Subject
	}{
		{"ClusterRoleBinding", crb[0].RoleRef.Kind + "/" + crb[0].RoleRef.Name, "ClusterRole/" + cr[0].Name, crb[0].Subjects},
		{"RoleBinding", rbs[0].RoleRef.Kind + "/" + rbs[0].RoleRef.Name, "Role/" + roles[0].Name, rbs[0].Subjects},
	} {
		if b.ref != b.want {
			t.Errorf("%s refers to %s, want %s", b.kind, b.ref, b.want)
		}
		if len(b.subjects) != 1 || b.subjects[0].Kind != "ServiceAccount" || b.subjects[0].Name != sa || b.subjects[0].Namespace != namespace {
			t.Errorf("%s subjects = %+v, want ServiceAccount %s/%s", b.kind, b.subjects, namespace, sa)
		}
	}
	if !strings.Contains(cr[0].Name, namespace) {
		t.Errorf("ClusterRole name %q does not include the namespace: two releases of the same name would collide", cr[0].Name)
	}
}

// checkTestPod asserts the helm test hook: a hardened pod that runs
// stuncheck against each Service with the given transports and explains
// that only an outside run proves preservation.
func checkTestPod(t *testing.T, ms manifests, services map[string]string) *corev1.Pod {
	t.Helper()
	pods := all[corev1.Pod](ms)
	if len(pods) != 1 {
		t.Fatalf("%d test pods, want 1", len(pods))
	}
	pod := pods[0]
	if pod.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("test pod annotations = %v, want helm.sh/hook: test", pod.Annotations)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never", pod.Spec.RestartPolicy)
	}
	// Without a serviceAccountName the pod runs as "default", which only
	// kube-controller-manager creates: it runs as stund's pods do, with
	// the ServiceAccount the chart creates or is given, and no token.
	if sa := workloadSpec(t, ms).ServiceAccountName; pod.Spec.ServiceAccountName == "" || pod.Spec.ServiceAccountName != sa {
		t.Errorf("test pod serviceAccountName = %q, want stund's, %q", pod.Spec.ServiceAccountName, sa)
	}
	if sas := all[corev1.ServiceAccount](ms); len(sas) == 1 && sas[0].Name != pod.Spec.ServiceAccountName {
		t.Errorf("test pod serviceAccountName = %q, the chart's ServiceAccount is %q", pod.Spec.ServiceAccountName, sas[0].Name)
	}
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("test pod automountServiceAccountToken = %v, want false: stuncheck does not read the API", a)
	}
	for _, svc := range all[corev1.Service](ms) {
		if selects(svc.Spec.Selector, pod.Labels) {
			t.Errorf("Service %s selects the test pod (labels %v)", svc.Name, pod.Labels)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("test pod containers = %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != "ghcr.io/stund/stund:0.1.0-debug" {
		t.Errorf("test image = %q", c.Image)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("test container securityContext = %+v", sc)
	}
	script := strings.Join(append(append([]string{}, c.Command...), c.Args...), "\n")
	for _, w := range []string{"/stuncheck --expect-ip", "Cluster semantics", "outside the cluster", "kubernetes#98069"} {
		if !strings.Contains(script, w) {
			t.Errorf("test script lacks %q", w)
		}
	}
	if services == nil {
		return pod
	}
	var checks []string
	for _, line := range strings.Split(script, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "check ") {
			checks = append(checks, l)
		}
	}
	var want []string
	for _, name := range slices.Sorted(maps.Keys(services)) {
		want = append(want, fmt.Sprintf(`check %s "${%s_SERVICE_HOST:-}" %s`, name,
			strings.ToUpper(strings.ReplaceAll(name, "-", "_")), services[name]))
	}
	slices.Sort(checks)
	if !slices.Equal(checks, want) {
		t.Errorf("test script checks:\n%s\nwant:\n%s", strings.Join(checks, "\n"), strings.Join(want, "\n"))
	}
	envs := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			envs[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if envs["POD_IP"] != "status.podIP" || envs["POD_IPS"] != "status.podIPs" {
		t.Errorf("test pod env = %v, want POD_IP and POD_IPS from the downward API", envs)
	}

	return pod
}

// selects reports whether every selector label is in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}

	return true
}
