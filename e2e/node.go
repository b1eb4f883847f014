//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A real node: the control plane of cluster.go plus kube-controller-manager
// and kube-scheduler, and one node running containerd, runc, the CNI bridge
// and host-local plugins, a kubelet and kube-proxy (nftables). The chart's
// pods run as real containers from image tarballs; nothing is written by
// hand but the load balancer's status (no cloud controller) and the CNI
// configuration (what a network add-on's installer would write once the
// node has its pod CIDR).
//
//	client 203.0.113.10 ── router ──┬── control 10.1.9.2 (etcd, kube-apiserver, controller-manager, scheduler)
//	                VIP 198.51.100.7 └── node-a 10.1.1.2 (containerd, kubelet, kube-proxy)
//	                  → node-a             └── cni0 10.244.0.1/24 ── pods 10.244.0.x
//
// This machine is cgroup v1 (hybrid) without systemd, so the node's
// processes share one private mount namespace, made by a holder process
// inside the node's network namespace: there the cgroup hierarchies are
// mounted again (`ip netns exec` remounts /sys), /run, /var/log and
// /var/lib are fresh tmpfs (containerd's shim sockets and pod network
// namespaces, the kubelet's /var/log/containers, libcni's cache: all gone
// with the namespace), and the six kernel settings the kubelet would
// otherwise rewrite host-wide (kernel.panic, vm.overcommit_memory, …) are
// files holding the values it wants. What lives outside it, the kubelet's
// cgroups and the state directory, is removed when the test ends, also
// after a failure or an interrupt.

const (
	realNodeName     = "node-a"
	realClusterCIDR  = "10.244.0.0/16"
	realNodeCIDRMask = "24"
)

// A RealNode is a cluster with one real node.
type RealNode struct {
	*KubeLab
	Node *Host

	dir        string // all the node's state: containerd, kubelet, CNI
	cgroupRoot string // the kubelet's cgroupRoot, e.g. /stundlab-1a2b3c-1
	holder     *Proc  // owns the node's mount namespace
	mountNS    string // its /proc/PID/ns/mnt link, to find its processes
	containerd *Proc
	kubelet    *Proc
	socket     string // containerd's CRI and API socket
	PodCIDR    string
	images     []string // the tags imported into containerd
}

// imageDir is where `make image` leaves the image tarballs (STUND_IMAGE_DIR).
func imageDir() string {
	if d := os.Getenv("STUND_IMAGE_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../bin/image")
	return d
}

// NewRealNode builds the cluster and waits until the node is Ready and
// schedulable and kube-proxy has synced once.
func NewRealNode(t testing.TB) *RealNode {
	t.Helper()
	for _, tool := range []struct{ bin, pkg string }{
		{"containerd", "containerd"}, {"containerd-shim-runc-v2", "containerd"}, {"ctr", "containerd"},
		{"runc", "runc"}, {"unshare", "util-linux"}, {"nsenter", "util-linux"}, {"mount", "mount"},
	} {
		requireTool(t, tool.bin, tool.pkg)
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		unavailable(t, "the real node needs the CNI plugins in /usr/lib/cni (Debian: apt-get install containernetworking-plugins)")
	}
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		kubeTool(t, tool)
	}
	tarballs := imageTarballs(t)

	k := &KubeLab{Lab: NewLab(t), Mode: "nftables", proxy: map[*Host]*Proc{}, kcfg: map[string]string{}, tokens: map[string]string{},
		authorization: "Node,RBAC", admission: []string{"NodeRestriction"}}
	n := &RealNode{KubeLab: k, cgroupRoot: "/" + k.Lab.id}
	n.wire()
	k.startControlPlane(t, kubeSvcRange)
	n.startControllers(t)
	n.startNode(t, tarballs)
	return n
}

// imageTarballs returns the docker-archive tarballs to import: the stund
// images and the sandbox (pause) image.
func imageTarballs(t testing.TB) map[string]string {
	t.Helper()
	dir := imageDir()
	files := map[string]string{}
	for _, name := range []string{"stund-0.1.0.tar", "stund-0.1.0-debug.tar", "pause.tar"} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			unavailable(t, fmt.Sprintf("the real node needs the image tarballs: build them with `make image` (%v)", err))
		}
		files[name] = path
	}
	return files
}

// archiveTags reads the tags a docker-archive tarball carries.
func archiveTags(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: no manifest.json: %w", path, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
		}
		var tags []string
		for _, e := range m {
			tags = append(tags, e.RepoTags...)
		}
		if len(tags) == 0 {
			return nil, fmt.Errorf("%s: the archive has no tag", path)
		}
		return tags, nil
	}
}

// wire builds the router, the control plane's namespace, the client and the
// node; the router sends the cluster's pod range to the node.
func (n *RealNode) wire() {
	k := n.KubeLab
	k.wireControl()
	k.Client = k.Lab.Host("client")
	k.NodeA = k.Lab.Host(realNodeName)
	n.Node = k.NodeA
	n.Node.Forward()
	for _, c := range []struct {
		h    *Host
		addr string
	}{{k.Client, ipv4.Public}, {n.Node, kubeNodeA}} {
		gw := internetSide(c.addr)
		k.Lab.Connect(k.Router.At(gw+"/24"), c.h.At(c.addr+"/24"))
		c.h.Route("default", gw)
	}
	k.Router.Route(realClusterCIDR, kubeNodeA)
	// Pod-to-pod traffic through a ClusterIP crosses the bridge: kube-proxy's
	// rules see it only with br_netfilter's hook, a per-namespace setting.
	n.Node.MustExec("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
}

// startControllers runs kube-controller-manager (node IPAM for the pod
// CIDR, ServiceAccounts and their tokens, EndpointSlices, Deployments,
// ReplicaSets, DaemonSets, garbage collection) and kube-scheduler in the
// control namespace.
func (n *RealNode) startControllers(t testing.TB) {
	t.Helper()
	k := n.KubeLab
	kcm := k.kubeconfig(t, "kube-controller-manager", k.pki.client(t, "kube-controller-manager", "system:kube-controller-manager"), "")
	sched := k.kubeconfig(t, "kube-scheduler", k.pki.client(t, "kube-scheduler", "system:kube-scheduler"), "")
	p := k.Control.Start(kubeTool(t, "kube-controller-manager"),
		"--kubeconfig="+kcm,
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(k.pki.dir, "sa.key"),
		"--root-ca-file="+filepath.Join(k.pki.dir, "ca.crt"),
		"--allocate-node-cidrs=true", "--cluster-cidr="+realClusterCIDR, "--node-cidr-mask-size="+realNodeCIDRMask,
		"--service-cluster-ip-range="+kubeSvcRange,
		"--leader-elect=false", "--secure-port=0", "--profiling=false",
		"--flex-volume-plugin-dir="+t.TempDir(), // else it creates /usr/libexec/kubernetes
		"--concurrent-deployment-syncs=2", "--concurrent-replicaset-syncs=2",
		"--v=1",
	)
	p.Name = "control/kube-controller-manager"
	s := k.Control.Start(kubeTool(t, "kube-scheduler"),
		"--kubeconfig="+sched, "--leader-elect=false", "--secure-port=0", "--profiling=false", "--v=1")
	s.Name = "control/kube-scheduler"
}

// inNode prepares a command in the node's network and mount namespaces.
func (n *RealNode) inNode(name string, args ...string) []string {
	return append([]string{"-t", strconv.Itoa(n.holder.cmd.Process.Pid), "-m", "--", name}, args...)
}

// startNode makes the node's state directory, cgroups and mount
// namespace, runs containerd, imports the images, runs the kubelet and
// kube-proxy, writes the CNI configuration once the node has its pod CIDR
// and waits until the node is Ready without taints.
func (n *RealNode) startNode(t testing.TB, tarballs map[string]string) {
	t.Helper()
	k := n.KubeLab
	// A short path: containerd's socket must fit in a sockaddr_un.
	dir, err := os.MkdirTemp("", "stundnode-")
	if err != nil {
		t.Fatal(err)
	}
	n.dir = dir
	done := registry.atExit(n.remove)
	t.Cleanup(func() {
		n.remove()
		done()
	})
	if err := n.makeCgroups(); err != nil {
		t.Fatalf("kubelet cgroup root %s: %v", n.cgroupRoot, err)
	}
	for _, d := range []string{"sysctl", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins", "containerd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	n.startHolder(t)

	pause, err := archiveTags(tarballs["pause.tar"])
	if err != nil {
		t.Fatal(err)
	}
	n.socket = filepath.Join(dir, "containerd.sock")
	cfg := filepath.Join(dir, "containerd.toml")
	writeFile(t, cfg, containerdConfig(dir, n.socket, pause[0]))
	n.containerd = n.Node.Start("nsenter", n.inNode("containerd", "--config", cfg, "--log-level", "warn")...)
	n.containerd.Name = realNodeName + "/containerd"
	n.waitFor(t, "containerd", 30*time.Second, n.containerd, func() error {
		_, err := n.ctr("version")
		return err
	})
	for _, name := range []string{"pause.tar", "stund-0.1.0.tar", "stund-0.1.0-debug.tar"} {
		if out, err := n.ctr("-n", "k8s.io", "images", "import", tarballs[name]); err != nil {
			t.Fatalf("import %s into containerd: %v\n%s", name, err, out)
		}
		tags, err := archiveTags(tarballs[name])
		if err != nil {
			t.Fatal(err)
		}
		n.images = append(n.images, tags...)
	}

	kubeconfig := k.kubeconfig(t, "kubelet", k.pki.client(t, "kubelet", "system:node:"+realNodeName, "system:nodes"), "")
	kcfg := filepath.Join(dir, "kubelet.yaml")
	writeFile(t, filepath.Join(dir, "resolv.conf"), "nameserver 127.0.0.1\n")
	writeFile(t, kcfg, kubeletConfig(dir, n.socket, n.cgroupRoot, filepath.Join(k.pki.dir, "ca.crt")))
	n.kubelet = n.Node.Start("nsenter", n.inNode(kubeTool(t, "kubelet"),
		"--config="+kcfg, "--kubeconfig="+kubeconfig, "--root-dir="+filepath.Join(dir, "kubelet"),
		"--cert-dir="+filepath.Join(dir, "kubelet", "pki"),
		"--hostname-override="+realNodeName, "--node-ip="+kubeNodeA, "--v=1")...)
	n.kubelet.Name = realNodeName + "/kubelet"
	k.startKubeProxy(t, n.Node)

	// The pod CIDR comes from the controller manager's node IPAM; then the
	// CNI configuration a network add-on would install.
	n.waitFor(t, "the Node's pod CIDR", 60*time.Second, n.kubelet, func() error {
		node, err := n.getNode()
		if err != nil {
			return err
		}
		if node.Spec.PodCIDR == "" {
			return errors.New("no pod CIDR yet")
		}
		n.PodCIDR = node.Spec.PodCIDR
		return nil
	})
	writeFile(t, filepath.Join(dir, "cni/net.d/10-lab.conflist"), cniConfig(n.PodCIDR, filepath.Join(dir, "cni/ipam")))
	n.waitFor(t, "the Node to be Ready without taints", 90*time.Second, n.kubelet, func() error {
		node, err := n.getNode()
		if err != nil {
			return err
		}
		if len(node.Spec.Taints) > 0 {
			return fmt.Errorf("taints %v", node.Spec.Taints)
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status != corev1.ConditionTrue {
					return fmt.Errorf("Ready %s: %s", c.Status, c.Message)
				}
				return nil
			}
		}
		return errors.New("no Ready condition yet")
	})
	k.WaitProgrammed(t, time.Time{})
	k.RouteVIP(t, n.Node)
}

// startHolder starts the process that owns the node's mount namespace and
// prepares that namespace; it is ready when it prints "ready".
func (n *RealNode) startHolder(t testing.TB) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -e\nmount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup\n")
	for _, m := range cgroupMounts() {
		fmt.Fprintf(&script, "mkdir -p /sys/fs/cgroup/%s && mount -t %s -o %s %s /sys/fs/cgroup/%s\n", m.dir, m.fstype, m.opts, m.fstype, m.dir)
	}
	for _, d := range []string{"/run", "/var/log", "/var/lib"} {
		fmt.Fprintf(&script, "mount -t tmpfs -o mode=755 tmpfs %s\n", d)
	}
	for _, s := range kubeletSysctls {
		file := filepath.Join(n.dir, "sysctl", strings.ReplaceAll(s.name, "/", "."))
		fmt.Fprintf(&script, "echo %s > %s && mount --bind %s /proc/sys/%s\n", s.value, file, file, s.name)
	}
	script.WriteString("echo ready\nexec sleep infinity\n")
	n.holder = n.Node.Start("unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script.String())
	n.holder.Name = realNodeName + "/mount-namespace"
	n.waitFor(t, "the node's mount namespace", 10*time.Second, n.holder, func() error {
		if !strings.Contains(n.holder.Output(), "ready") {
			return errors.New("not ready")
		}
		return nil
	})
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// remove kills every process in this mount namespace: it must never be
	// the one the test itself (and the rest of the machine) runs in.
	if own, err := os.Readlink("/proc/self/ns/mnt"); err != nil || own == link {
		t.Fatalf("the node's mount namespace %s is not a private one (the test's is %s, %v)", link, own, err)
	}
	n.mountNS = link
}

// kubeletSysctls are the host-wide kernel settings the kubelet checks and,
// unless they match, rewrites (setupKernelTunables); inside the node's
// mount namespace they read as it wants them and the host keeps its own.
var kubeletSysctls = []struct{ name, value string }{
	{"vm/overcommit_memory", "1"}, {"vm/panic_on_oom", "0"}, {"kernel/panic", "10"},
	{"kernel/panic_on_oops", "1"}, {"kernel/keys/root_maxkeys", "1000000"}, {"kernel/keys/root_maxbytes", "25000000"},
}

type cgroupMount struct{ dir, fstype, opts string }

// cgroupMounts lists the host's cgroup hierarchies as mounted under
// /sys/fs/cgroup, to mount again inside the node's namespace.
func cgroupMounts() []cgroupMount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || !strings.HasPrefix(a[4], "/sys/fs/cgroup/") || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		var opts []string
		for _, o := range strings.Split(b[2], ",") {
			if o != "rw" && o != "relatime" {
				opts = append(opts, o)
			}
		}
		if b[0] == "cgroup" && len(opts) == 1 && strings.HasPrefix(opts[0], "name=") {
			opts = append([]string{"none"}, opts...)
		}
		if len(opts) == 0 {
			opts = []string{"rw"}
		}
		ms = append(ms, cgroupMount{dir: strings.TrimPrefix(a[4], "/sys/fs/cgroup/"), fstype: b[0], opts: strings.Join(opts, ",")})
	}
	return ms
}

// makeCgroups creates the kubelet's cgroupRoot in every hierarchy (the
// kubelet refuses a root that does not exist), with the parent's cpuset.
func (n *RealNode) makeCgroups() error {
	for _, m := range cgroupMounts() {
		dir := filepath.Join("/sys/fs/cgroup", m.dir, n.cgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		if m.dir == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// remove kills whatever still runs in the node's mount namespace (the
// containerd shims) and in its cgroups (the containers), removes the
// cgroups and the state directory. It is safe to run twice.
func (n *RealNode) remove() {
	if n.mountNS != "" {
		for range 50 {
			if killed := killMatching(func(pid int) bool {
				link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
				return err == nil && link == n.mountNS
			}); killed == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var dirs []string
	for _, m := range cgroupMounts() {
		root := filepath.Join("/sys/fs/cgroup", m.dir, n.cgroupRoot)
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	// Deepest first; a cgroup goes once its processes are gone.
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for range 50 {
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		left := 0
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				left++
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n.dir != "" {
		_ = os.RemoveAll(n.dir)
	}
}

// killMatching sends SIGKILL to every process match accepts and returns how
// many there were.
func killMatching(match func(pid int) bool) int {
	entries, _ := os.ReadDir("/proc")
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !match(pid) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// ctr runs containerd's client inside the node's namespaces (its FIFOs
// and socket live there).
func (n *RealNode) ctr(args ...string) (string, error) {
	return n.Node.Exec("nsenter", n.inNode("ctr", append([]string{"--address", n.socket}, args...)...)...)
}

func (n *RealNode) getNode() (*corev1.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.API.CoreV1().Nodes().Get(ctx, realNodeName, metav1.GetOptions{})
}

// waitFor polls fn every 100 ms until it returns nil, failing the test
// after timeout or when p exits.
func (n *RealNode) waitFor(t testing.TB, what string, timeout time.Duration, p *Proc, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if p != nil {
			if exited, perr := p.Exited(); exited {
				t.Fatalf("waiting for %s: %s exited: %v\n%s", what, p.Name, perr, tail(p.Output(), 4000))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v after %v", what, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// containerdConfig keeps every path of containerd's under dir. runc may
// not raise a container's oom_score_adj above containerd's own
// (restrict_oom_score_adj): root here lacks CAP_SYS_RESOURCE.
func containerdConfig(dir, socket, sandboxImage string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
    max_conf_num = 1
`, filepath.Join(dir, "containerd/root"), filepath.Join(dir, "containerd/state"), socket, socket+".ttrpc",
		filepath.Join(dir, "containerd/opt"), sandboxImage, filepath.Join(dir, "cni/net.d"))
}

// kubeletConfig: cgroupfs under its own cgroupRoot on cgroup v1, no swap
// check, no image garbage collection or disk eviction (the tarballs cannot
// be pulled again), every path under dir, no cluster DNS.
func kubeletConfig(dir, socket, cgroupRoot, ca string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[2]q
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%[3]s
cgroupDriver: cgroupfs
cgroupRoot: %[4]s
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
protectKernelDefaults: false
resolvConf: %[5]q
podLogsDir: %[6]q
volumePluginDir: %[7]q
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
rotateCertificates: false
serverTLSBootstrap: false
nodeStatusReportFrequency: 10s
syncFrequency: 10s
`, kubeNodeA, ca, socket, cgroupRoot, filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "pod-logs"),
		filepath.Join(dir, "volume-plugins"))
}

// cniConfig is a bridge with host-local addresses from the node's pod
// CIDR; the bridge is the pods' gateway and does not masquerade
// (kube-proxy does that where a Service needs it).
func cniConfig(podCIDR, ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, podCIDR, ipamDir)
}
