//go:build e2e

package e2e

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// The real cluster's lab: a control plane (etcd and kube-apiserver), two
// nodes running kube-proxy, a pod behind node-a running stund, a client on
// the internet, and a router between them that delivers the load
// balancer's VIP to one node with the destination kept (as GCP's and
// Azure's load balancers do). IPv4 only: the API server's service range is
// single-stack, as on most clusters.
//
//	client 203.0.113.10 ── router ──┬── control 10.1.9.2 (etcd, kube-apiserver :6443)
//	                   VIP 198.51.100.7 ├── node-a 10.1.1.2 (kube-proxy) ── pod 10.244.0.2 (stund)
//	                   → node-a or b   └── node-b 10.1.2.2 (kube-proxy)   gateway 10.244.0.1
const (
	kubeControl  = "10.1.9.2"
	kubeNodeA    = "10.1.1.2"
	kubeNodeB    = "10.1.2.2"
	kubePodCIDRA = "10.244.0.0/24"
	kubePodCIDRB = "10.244.1.0/24"
	kubeAPIPort  = 6443
	kubeSvcRange = "10.96.0.0/16"
	clusterNS    = "stund" // where the chart is installed
	kubeRelease  = "stund" // the Helm release; its Service is named after it
	kubeNodePort = 31478
	kubeHCPort   = 32000 // the Service's healthCheckNodePort
)

// kubeProxyModes are the kube-proxy modes every scenario runs in.
var kubeProxyModes = []string{"nftables", "iptables"}

// A KubeLab is the real cluster of one test.
type KubeLab struct {
	*Lab
	Client, Router, Control, NodeA, NodeB, Pod *Host
	Mode                                       string // kube-proxy's mode

	pki    *pki
	API    kubernetes.Interface // as cluster admin, dialled from the router
	admin  *rest.Config
	proxy  map[*Host]*Proc
	Stund  *Stund
	Helm   string // the install's output
	kcfg   map[string]string
	tokens map[string]string

	// authorization and admission are the API server's
	// --authorization-mode and extra admission plugins: RBAC alone when
	// the lab writes what kubelets would, Node,RBAC and NodeRestriction
	// for a real kubelet.
	authorization string
	admission     []string
}

// kubeTool returns the path of a Kubernetes binary built by `make
// kube-tools` (STUND_KUBE_BIN, else the repository's bin/), stopping the
// test when it is missing.
func kubeTool(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("STUND_KUBE_BIN")
	if dir == "" {
		dir, _ = filepath.Abs("../bin")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		unavailable(t, fmt.Sprintf("the real cluster needs %s: build it with `make kube-tools` (%v)", name, err))
	}
	return path
}

// helmTool returns Helm's path (STUND_HELM, else bin/helm).
func helmTool(t testing.TB) string {
	t.Helper()
	path := os.Getenv("STUND_HELM")
	if path == "" {
		path, _ = filepath.Abs("../bin/helm")
	}
	if _, err := os.Stat(path); err != nil {
		unavailable(t, fmt.Sprintf("the real cluster needs Helm: build it with `make bin/helm` (%v)", err))
	}
	return path
}

// NewKubeLab builds the namespaces, starts etcd and kube-apiserver,
// installs the chart with Helm, writes what a kubelet and a cloud
// controller would (the Nodes, the load balancer's status, the
// EndpointSlice of the pod on node-a), starts kube-proxy in mode on both
// nodes and waits until both have programmed the Service. set are extra
// `helm install --set` values. The VIP is routed to node-a.
func NewKubeLab(t testing.TB, mode string, set ...string) *KubeLab {
	t.Helper()
	requireTool(t, "iptables", "iptables")
	k := &KubeLab{Lab: NewLab(t), Mode: mode, proxy: map[*Host]*Proc{}, kcfg: map[string]string{}, tokens: map[string]string{}}
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-proxy"} {
		kubeTool(t, tool)
	}
	helm := helmTool(t)
	k.wireControl()
	k.wireNodes()
	k.startControlPlane(t, kubeSvcRange)
	k.writeNodes(t)

	args := []string{"install", kubeRelease, "../charts/stund", "--namespace", clusterNS, "--create-namespace",
		"--kubeconfig", k.kcfg["admin"], "--set", "replicas=1",
		"--set", "service.healthCheckNodePort=" + strconv.Itoa(kubeHCPort)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	k.Helm = k.helm(t, helm, args...)
	k.writeLoadBalancer(t)
	k.writeEndpoints(t)
	for _, n := range []*Host{k.NodeA, k.NodeB} {
		k.startKubeProxy(t, n)
	}
	k.WaitProgrammed(t, time.Time{})
	k.RouteVIP(t, k.NodeA)
	return k
}

// NewKubeAPI starts only the control plane (etcd and kube-apiserver) with
// the given service CIDRs (comma-separated, one per family), reachable from
// the router's namespace.
func NewKubeAPI(t testing.TB, serviceCIDRs string) *KubeLab {
	t.Helper()
	k := &KubeLab{Lab: NewLab(t), kcfg: map[string]string{}}
	k.wireControl()
	k.startControlPlane(t, serviceCIDRs)
	return k
}

// wireControl builds the router and the control plane's namespace.
func (k *KubeLab) wireControl() {
	k.Router = k.Lab.Host("router")
	k.Router.Forward()
	k.Control = k.Lab.Host("control")
	k.Lab.Connect(k.Router.At(internetSide(kubeControl)+"/24"), k.Control.At(kubeControl+"/24"))
	k.Control.Route("default", internetSide(kubeControl))
}

// wireNodes builds the client, the nodes and the pod, and the routes
// between them.
func (k *KubeLab) wireNodes() {
	l := k.Lab
	k.Client = l.Host("client")
	k.NodeA = l.Host("node-a")
	k.NodeB = l.Host("node-b")
	k.Pod = l.Host("pod")
	for _, h := range []*Host{k.NodeA, k.NodeB} {
		h.Forward()
	}
	for _, c := range []struct {
		h    *Host
		addr string
	}{{k.Client, ipv4.Public}, {k.NodeA, kubeNodeA}, {k.NodeB, kubeNodeB}} {
		gw := internetSide(c.addr)
		l.Connect(k.Router.At(gw+"/24"), c.h.At(c.addr+"/24"))
		c.h.Route("default", gw)
	}
	l.Connect(k.NodeA.At(ipv4.PodGW+"/24"), k.Pod.At(ipv4.Pod+"/24"))
	k.Pod.Route("default", ipv4.PodGW)
	k.Router.Route(kubePodCIDRA, kubeNodeA)
	k.Router.Route(kubePodCIDRB, kubeNodeB)
}

// RouteVIP sends the load balancer's VIP to node, destination unchanged.
func (k *KubeLab) RouteVIP(t testing.TB, node *Host) {
	t.Helper()
	k.Router.IP("route", "replace", ipv4.VIP+"/32", "via", map[*Host]string{k.NodeA: kubeNodeA, k.NodeB: kubeNodeB}[node])
}

// startControlPlane runs etcd and kube-apiserver (RBAC, client
// certificates, ServiceAccount tokens) in the control namespace, writes
// the kubeconfigs and waits until the API server is ready.
func (k *KubeLab) startControlPlane(t testing.TB, serviceCIDRs string) {
	t.Helper()
	k.pki = newPKI(t)
	serving := k.pki.serving(t, "apiserver", kubeControl, "10.96.0.1", "127.0.0.1")
	saKey := k.pki.serviceAccountKey(t)
	// How the API server reaches kubelets (logs, exec): by their
	// InternalIP, as a cluster admin.
	kubeletClient := k.pki.client(t, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
	dir := t.TempDir()
	etcd := k.Control.Start(kubeTool(t, "etcd"), "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls", "http://127.0.0.1:2380")
	waitListening(t, k.Control, etcd, "tcp", 2379)
	api := k.Control.Start(kubeTool(t, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0", "--secure-port="+strconv.Itoa(kubeAPIPort), "--advertise-address="+kubeControl,
		"--tls-cert-file="+serving.CertFile, "--tls-private-key-file="+serving.KeyFile,
		"--client-ca-file="+k.pki.dir+"/ca.crt",
		"--authorization-mode="+cmp.Or(k.authorization, "RBAC"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range="+serviceCIDRs,
		"--service-node-port-range=30000-32767",
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--enable-admission-plugins="+strings.Join(k.admission, ","),
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate="+kubeletClient.CertFile, "--kubelet-client-key="+kubeletClient.KeyFile,
	)
	k.kcfg["admin"] = k.kubeconfig(t, "admin", k.pki.client(t, "admin", "lab-admin", "system:masters"), "")
	k.kcfg["kube-proxy"] = k.kubeconfig(t, "kube-proxy", k.pki.client(t, "kube-proxy", "system:kube-proxy"), "")

	cfg, err := clientcmd.BuildConfigFromFlags("", k.kcfg["admin"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dial = k.Router.DialContext
	cfg.UserAgent = "stund-e2e"
	k.admin = cfg
	if k.API, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := k.API.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(body) == "ok" {
			break
		}
		if exited, perr := api.Exited(); exited {
			t.Fatalf("kube-apiserver exited: %v\n%s", perr, tail(api.Output(), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready after 90s: %v %s", err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The default namespace's ServiceAccount is what the controller
	// manager would create; RBAC's bootstrap roles come with the server.
	// The "default" Service must exist before kube-proxy programs anything.
	k.waitFor(t, "the kubernetes Service", func(ctx context.Context) error {
		_, err := k.API.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		return err
	})
}

// kubeconfig writes a kubeconfig for the API server at its cluster
// address, with a client certificate or a bearer token.
func (k *KubeLab) kubeconfig(t testing.TB, name string, kp keyPair, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{
		Server:                   "https://" + net.JoinHostPort(kubeControl, strconv.Itoa(kubeAPIPort)),
		CertificateAuthorityData: k.pki.CAPEM,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM, Token: token}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: name, Namespace: clusterNS}
	cfg.CurrentContext = "lab"
	path := filepath.Join(k.pki.dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// Kubeconfig returns the path of the cluster admin's kubeconfig, which
// stuncheck on the client uses.
func (k *KubeLab) Kubeconfig() string { return k.kcfg["admin"] }

// TokenKubeconfig requests a ServiceAccount token with the TokenRequest
// API and writes a kubeconfig that uses it: what a pod of that account
// gets, RBAC and all.
func (k *KubeLab) TokenKubeconfig(t testing.TB, namespace, account string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := k.API.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s/%s: %v", namespace, account, err)
	}
	return k.kubeconfig(t, "sa-"+namespace+"-"+account, keyPair{}, tr.Status.Token)
}

// helm runs Helm in the router's namespace against the cluster and
// returns what it printed on standard output.
func (k *KubeLab) helm(t testing.TB, helm string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := k.Router.Command(ctx, helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config",
		"HELM_DATA_HOME="+home+"/data", "KUBECONFIG="+k.kcfg["admin"])
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// writeNodes writes the two Nodes as their kubelets would: addresses and
// pod CIDRs.
func (k *KubeLab) writeNodes(t testing.TB) {
	t.Helper()
	for _, n := range []struct{ name, addr, cidr string }{{"node-a", kubeNodeA, kubePodCIDRA}, {"node-b", kubeNodeB, kubePodCIDRB}} {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"kubernetes.io/hostname": n.name}},
			Spec:       corev1.NodeSpec{PodCIDR: n.cidr, PodCIDRs: []string{n.cidr}},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		created, err := k.API.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil {
			created.Status.Addresses = []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: n.addr}, {Type: corev1.NodeHostName, Address: n.name}}
			created.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
			_, err = k.API.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		}
		cancel()
		if err != nil {
			t.Fatalf("write Node %s: %v", n.name, err)
		}
	}
}

// Service returns the chart's Service.
func (k *KubeLab) Service(t testing.TB) *corev1.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc, err := k.API.CoreV1().Services(clusterNS).Get(ctx, kubeRelease, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Service %s/%s: %v", clusterNS, kubeRelease, err)
	}
	return svc
}

// writeLoadBalancer gives the Service the VIP as its load-balancer
// ingress, as a cloud controller would, and pins its NodePorts.
func (k *KubeLab) writeLoadBalancer(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc := k.Service(t)
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ipv4.VIP, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
	if _, err := k.API.CoreV1().Services(clusterNS).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write the load balancer's status: %v", err)
	}
}

// writeEndpoints writes the EndpointSlice of the stund pod on node-a, ready,
// with the Service's target ports, as the EndpointSlice controller would.
func (k *KubeLab) writeEndpoints(t testing.TB) {
	t.Helper()
	svc := k.Service(t)
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(int32(stunPort))})
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: kubeRelease + "-lab", Namespace: clusterNS, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "stund-e2e"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ipv4.Pod}, NodeName: ptr.To("node-a"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: clusterNS, Name: kubeRelease + "-lab-pod"}}},
		Ports: ports,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := k.API.DiscoveryV1().EndpointSlices(clusterNS).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatalf("write the EndpointSlice: %v", err)
	}
}

// SetETP changes the Service's externalTrafficPolicy through the API and
// waits until kube-proxy on both nodes has programmed the change.
func (k *KubeLab) SetETP(t testing.TB, etp corev1.ServiceExternalTrafficPolicy) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"externalTrafficPolicy":%q}}`, etp)
	if etp == corev1.ServiceExternalTrafficPolicyLocal {
		patch = fmt.Sprintf(`{"spec":{"externalTrafficPolicy":%q,"healthCheckNodePort":%d}}`, etp, kubeHCPort)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changed := time.Now()
	if _, err := k.API.CoreV1().Services(clusterNS).Patch(ctx, kubeRelease, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("set externalTrafficPolicy %s: %v", etp, err)
	}
	k.WaitProgrammed(t, changed)
}

// startKubeProxy runs kube-proxy on node in the lab's mode. The conntrack
// flags keep it from writing the host-wide conntrack sysctls.
func (k *KubeLab) startKubeProxy(t testing.TB, node *Host) {
	t.Helper()
	p := node.Start(kubeTool(t, "kube-proxy"),
		"--kubeconfig="+k.kcfg["kube-proxy"],
		"--proxy-mode="+k.Mode,
		"--hostname-override="+node.Role,
		"--cluster-cidr=10.244.0.0/16",
		"--conntrack-max-per-core=0",
		"--conntrack-tcp-timeout-established=0",
		"--conntrack-tcp-timeout-close-wait=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
		"--v=2",
	)
	k.proxy[node] = p
	t.Cleanup(func() {
		// kube-proxy leaves its rules behind; the namespace goes with
		// the lab, but say what a user would run.
		p.Stop()
	})
}

// kubeProxyMetric reads one of kube-proxy's per-family gauges for IPv4 on
// node; ok is false while it is not there yet.
func (k *KubeLab) kubeProxyMetric(node *Host, name string) (float64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	code, body, err := node.HTTPGet(ctx, "http://127.0.0.1:10249/metrics")
	if err != nil || code != 200 {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name+`{ip_family="IPv4"}` {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// WaitProgrammed waits until kube-proxy on every node has synced its rules
// after a change made at changed: it has queued a sync at or after that
// time (it saw the change) and its last completed sync is no older than
// the last one queued. The zero time waits for the first sync.
func (k *KubeLab) WaitProgrammed(t testing.TB, changed time.Time) {
	t.Helper()
	since := float64(changed.UnixNano()) / 1e9
	for _, node := range []*Host{k.NodeA, k.NodeB} {
		p := k.proxy[node]
		if p == nil {
			continue // a lab with one node
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			queued, okQ := k.kubeProxyMetric(node, "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds")
			synced, okS := k.kubeProxyMetric(node, "kubeproxy_sync_proxy_rules_last_timestamp_seconds")
			if okQ && okS && synced > 0 && queued >= since && synced >= queued {
				break
			}
			if exited, err := p.Exited(); exited {
				t.Fatalf("kube-proxy on %s exited: %v\n%s", node.Role, err, tail(p.Output(), 4000))
			}
			if time.Now().After(deadline) {
				t.Fatalf("kube-proxy on %s did not sync within 60s (queued %v, synced %v, change at %v)\n%s",
					node.Role, queued, synced, since, tail(p.Output(), 4000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// StartStund runs stund in the pod as the chart's Deployment says: the
// container's arguments and environment as the API server stored them
// (the downward API filled in by hand, as a kubelet would), with a token
// of the chart's ServiceAccount from the TokenRequest API. extra are more
// flags; account overrides the ServiceAccount when not empty.
func (k *KubeLab) StartStund(t testing.TB, account string, extra ...string) *Stund {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dep, err := k.API.AppsV1().Deployments(clusterNS).Get(ctx, kubeRelease, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the chart's Deployment: %v", err)
	}
	spec := dep.Spec.Template.Spec
	i := slices.IndexFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "stund" })
	if i < 0 {
		t.Fatalf("the chart's Deployment has no stund container: %+v", spec.Containers)
	}
	c := spec.Containers[i]
	if account == "" {
		account = spec.ServiceAccountName
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			v := map[string]string{"metadata.name": kubeRelease + "-lab-pod", "metadata.namespace": clusterNS,
				"spec.nodeName": "node-a", "status.podIP": ipv4.Pod}[e.ValueFrom.FieldRef.FieldPath]
			env = append(env, e.Name+"="+v)
		}
	}
	args := append(slices.Clone(c.Args), "--kubeconfig="+k.TokenKubeconfig(t, clusterNS, account), "--drain-timeout=100ms")
	args = append(args, extra...)
	p := k.Pod.StartEnv(env, binPath(t, "stund"), args...)
	s := &Stund{Proc: p, host: k.Pod, base: "http://" + hostPort(ipv4.Pod, metricsPort)}
	waitListening(t, k.Pod, p, "udp", stunPort)
	waitListening(t, k.Pod, p, "tcp", stunPort)
	waitReady(t, s)
	k.Stund = s
	return s
}

// Stuncheck runs stuncheck on the client.
func (k *KubeLab) Stuncheck(t testing.TB, args ...string) CheckRun {
	t.Helper()
	return runStuncheck(t, k.Client, args...)
}

// waitFor polls fn until it returns nil, for up to 30 seconds.
func (k *KubeLab) waitFor(t testing.TB, what string, fn func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
