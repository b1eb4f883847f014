//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The chart on a real node: kubelet, containerd and runc run its pods from
// the image tarballs, the controllers roll them out, kube-proxy routes the
// VIP to them. `go test -tags e2e -run RealNode ./e2e/...` runs these alone.

const stundSelector = "app.kubernetes.io/name=stund,app.kubernetes.io/instance=" + kubeRelease

// streamRateLimit lifts the chart's per-source rate limit (20 answers a
// second after a burst of 100) above what the streams below send from the
// one client address: 50 a second each, two at once.
const streamRateLimit = "rateLimit.perSource=200"

// install runs `helm install` with the images imported into containerd
// (pullPolicy Never), one replica and the pinned healthCheckNodePort, and
// gives the Service the VIP as a cloud controller would.
func (n *RealNode) install(t *testing.T, set ...string) {
	t.Helper()
	args := []string{"install", kubeRelease, "../charts/stund", "--namespace", clusterNS, "--create-namespace",
		"--set", "replicas=1", "--set", "image.pullPolicy=Never", "--set", "tests.image.pullPolicy=Never",
		"--set", "service.healthCheckNodePort=" + strconv.Itoa(kubeHCPort)}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	n.Helm = n.helm(t, helmTool(t), args...)
	n.writeLoadBalancer(t)
}

// stundPods lists the chart's pods (not the helm test pod).
func (n *RealNode) stundPods(t testing.TB) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := n.API.CoreV1().Pods(clusterNS).List(ctx, metav1.ListOptions{LabelSelector: stundSelector})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitRollout waits until the workload (Deployment or DaemonSet) has
// rolled out its current template: every pod updated and ready on
// /readyz, no other pod left, terminating ones included. It returns the
// pods.
func (n *RealNode) waitRollout(t testing.TB, kind string, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	n.waitFor(t, kind+" rollout", timeout, n.kubelet, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var hash string // the current template's pod label
		switch kind {
		case "Deployment":
			d, err := n.API.AppsV1().Deployments(clusterNS).Get(ctx, kubeRelease, metav1.GetOptions{})
			if err != nil {
				return err
			}
			s := d.Status
			if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != *d.Spec.Replicas || s.ReadyReplicas != *d.Spec.Replicas ||
				s.AvailableReplicas != *d.Spec.Replicas || s.Replicas != *d.Spec.Replicas {
				return fmt.Errorf("Deployment status %+v", s)
			}
		case "DaemonSet":
			d, err := n.API.AppsV1().DaemonSets(clusterNS).Get(ctx, kubeRelease, metav1.GetOptions{})
			if err != nil {
				return err
			}
			s := d.Status
			if s.ObservedGeneration < d.Generation || s.DesiredNumberScheduled != 1 || s.UpdatedNumberScheduled != 1 ||
				s.NumberReady != 1 || s.NumberAvailable != 1 {
				return fmt.Errorf("DaemonSet status %+v", s)
			}
		}
		pods = n.stundPods(t)
		for _, p := range pods {
			if p.DeletionTimestamp != nil || !podReady(&p) {
				return fmt.Errorf("pod %s: deleting %v, phase %s, ready %v", p.Name, p.DeletionTimestamp != nil, p.Status.Phase, podReady(&p))
			}
			if hash == "" {
				hash = p.Labels["pod-template-hash"] + p.Labels["controller-revision-hash"]
			} else if h := p.Labels["pod-template-hash"] + p.Labels["controller-revision-hash"]; h != hash {
				return fmt.Errorf("pods of two templates: %s and %s", hash, h)
			}
		}
		if len(pods) != 1 {
			return fmt.Errorf("%d pods, want 1", len(pods))
		}
		return nil
	})
	return pods
}

// waitLocalEndpoint waits until kube-proxy's health check for the Service
// counts want local endpoints on the node: what a load balancer asks.
func (n *RealNode) waitLocalEndpoint(t testing.TB, want int) {
	t.Helper()
	url := "http://" + hostPort(kubeNodeA, kubeHCPort) + "/healthz"
	n.waitFor(t, "kube-proxy's health check", 30*time.Second, n.proxy[n.Node], func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, body, err := n.Router.HTTPGet(ctx, url)
		if err != nil {
			return err
		}
		var hc struct{ LocalEndpoints int }
		if err := json.Unmarshal([]byte(body), &hc); err != nil {
			return fmt.Errorf("%v: %q", err, body)
		}
		if hc.LocalEndpoints != want {
			return fmt.Errorf("localEndpoints %d, want %d", hc.LocalEndpoints, want)
		}
		return nil
	})
}

// expectPreserved runs stuncheck on the client through the VIP: exit 0,
// the client's own address seen.
func (n *RealNode) expectPreserved(t *testing.T) {
	t.Helper()
	run := n.Stuncheck(t, "--expect-ip", ipv4.Public, "--transport", "udp,tcp", "--timeout", "2s", vip)
	if run.Exit != 0 {
		t.Errorf("stuncheck %s: exit %d, want 0 (preserved)\n%s%s", vip, run.Exit, run.Stdout, run.Stderr)
	}
}

func TestRealNodeInstall(t *testing.T) {
	start := time.Now()
	n := NewRealNode(t)
	ready := time.Now()
	t.Logf("node Ready %v after start", ready.Sub(start).Round(100*time.Millisecond))
	n.install(t)
	pods := n.waitRollout(t, "Deployment", 2*time.Minute)
	t.Logf("helm install rolled out in %v: pod %s at %s", time.Since(ready).Round(100*time.Millisecond), pods[0].Name, pods[0].Status.PodIP)
	if !strings.HasPrefix(pods[0].Status.PodIP, strings.TrimSuffix(n.PodCIDR, ".0/24")+".") {
		t.Errorf("pod IP %s is not in the node's pod CIDR %s", pods[0].Status.PodIP, n.PodCIDR)
	}
	n.waitLocalEndpoint(t, 1)
	n.expectPreserved(t)
	out := n.helm(t, helmTool(t), "test", kubeRelease, "--namespace", clusterNS, "--logs", "--timeout", "2m")
	if !strings.Contains(out, "In-cluster check passed") {
		t.Errorf("helm test did not report its check as passed:\n%s", out)
	}
	t.Logf("whole run %v", time.Since(start).Round(100*time.Millisecond))
}

// containerProcess finds the process of the pod's stund container in the
// kubelet's cgroups and returns its PID and its memory cgroup directory.
func (n *RealNode) containerProcess(t *testing.T, pod *corev1.Pod) (int, string) {
	t.Helper()
	var id string
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == "stund" {
			_, id, _ = strings.Cut(c.ContainerID, "://")
		}
	}
	if id == "" {
		t.Fatalf("pod %s has no stund container ID: %+v", pod.Name, pod.Status.ContainerStatuses)
	}
	var dir string
	root := filepath.Join("/sys/fs/cgroup/memory", n.cgroupRoot)
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == id {
			dir = path
			return filepath.SkipAll
		}
		return nil
	})
	if dir == "" {
		t.Fatalf("no memory cgroup named %s under %s", id, root)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) != 1 {
		t.Fatalf("the container's cgroup %s holds %d processes, want 1: %v", dir, len(pids), pids)
	}
	pid, err := strconv.Atoi(pids[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid, dir
}

func TestRealNodeRuntimeEnforcesSecurityContext(t *testing.T) {
	n := NewRealNode(t)
	n.install(t)
	pods := n.waitRollout(t, "Deployment", 2*time.Minute)
	pid, cgroup := n.containerProcess(t, &pods[0])

	read := func(name string) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
		if err != nil {
			t.Fatalf("read /proc/%d/%s: %v", pid, name, err)
		}
		return string(b)
	}
	if argv0, _, _ := strings.Cut(read("cmdline"), "\x00"); argv0 != "/stund" {
		t.Fatalf("process %d runs %q, not /stund", pid, argv0)
	}
	status := map[string]string{}
	for _, line := range strings.Split(read("status"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			status[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	for field, want := range map[string]string{
		"Uid":        "65532 65532 65532 65532",
		"Gid":        "65532 65532 65532 65532",
		"CapInh":     "0000000000000000",
		"CapPrm":     "0000000000000000",
		"CapEff":     "0000000000000000",
		"CapBnd":     "0000000000000000",
		"CapAmb":     "0000000000000000",
		"NoNewPrivs": "1",
		"Seccomp":    "2", // a filter: the runtime's default profile
	} {
		if got := status[field]; got != want {
			t.Errorf("/proc/%d/status %s: %q, want %q", pid, field, got, want)
		}
	}

	// The runtime adds the primary group to the supplementary ones; no
	// other group.
	for _, g := range strings.Fields(status["Groups"]) {
		if g != "65532" {
			t.Errorf("/proc/%d/status Groups: %q, want none but 65532", pid, status["Groups"])
		}
	}

	// The root filesystem is mounted read-only: the mount at "/" in the
	// process's own mount namespace.
	var rootOpts string
	for _, line := range strings.Split(read("mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			rootOpts = f[5]
		}
	}
	if !slices.Contains(strings.Split(rootOpts, ","), "ro") {
		t.Errorf("the container's root filesystem is mounted %q, want ro", rootOpts)
	}

	limit, err := os.ReadFile(filepath.Join(cgroup, "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	const want = 128 << 20 // the chart's resources.limits.memory, 128Mi
	if got := strings.TrimSpace(string(limit)); got != strconv.Itoa(want) {
		t.Errorf("memory.limit_in_bytes of %s: %s, want %d", cgroup, got, want)
	}
	env := strings.Split(read("environ"), "\x00")
	if !slices.Contains(env, "GOMEMLIMIT="+strconv.Itoa(want)) {
		t.Errorf("the container's environment has no GOMEMLIMIT=%d: %q", want, env)
	}
	t.Logf("pid %d: %s; root %s; memory limit %s; GOMEMLIMIT=%d", pid, status["Uid"], rootOpts, strings.TrimSpace(string(limit)), want)
}

// A bindingStream sends a Binding request every interval from one UDP
// socket on the client and records which ones were answered with the
// client's own address.
// The socket is not connected, so that an answer from another address
// than the target (one whose NAT was undone too early) is seen, counted
// as unanswered and reported.
type bindingStream struct {
	conn     net.PacketConn
	target   *net.UDPAddr
	interval time.Duration
	mu       sync.Mutex
	sent     []time.Time          // by sequence number
	answered map[uint64]time.Time // sequence number → when the answer came
	wrong    int                  // answers that mapped another address
	strays   map[uint64]string    // answers from another source than the target
	stop     chan struct{}
	done     sync.WaitGroup
}

func startBindingStream(t *testing.T, h *Host, target string, interval time.Duration) *bindingStream {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.PacketConn
	if err := h.inNamespace(func() error {
		var err error
		conn, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := &bindingStream{conn: conn, target: addr, interval: interval, answered: map[uint64]time.Time{},
		strays: map[uint64]string{}, stop: make(chan struct{})}
	var prefix [4]byte
	_, _ = rand.Read(prefix[:])
	s.done.Add(2)
	go func() {
		defer s.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		req := make([]byte, 20)
		binary.BigEndian.PutUint16(req[0:], 0x0001)
		binary.BigEndian.PutUint32(req[4:], magicCookie)
		copy(req[8:], prefix[:])
		for {
			s.mu.Lock()
			seq := uint64(len(s.sent))
			s.sent = append(s.sent, time.Now())
			s.mu.Unlock()
			binary.BigEndian.PutUint64(req[12:], seq)
			_, _ = conn.WriteTo(req, addr)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer s.done.Done()
		buf := make([]byte, 1500)
		for {
			m, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. an ICMP port unreachable while no pod answers
			}
			if m < 20 || string(buf[8:12]) != string(prefix[:]) {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[12:20])
			mapped, err := parseXORMapped(buf[:m], buf[8:20])
			s.mu.Lock()
			if from.String() != addr.String() {
				s.strays[seq] = from.String()
			} else if err != nil || mapped.Addr().String() != ipv4.Public {
				s.wrong++
			} else if _, dup := s.answered[seq]; !dup {
				s.answered[seq] = time.Now()
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// Stop ends sending, waits grace for the last answers and returns the
// sequence numbers that went unanswered.
func (s *bindingStream) Stop(grace time.Duration) (sent int, unanswered []uint64) {
	close(s.stop)
	// Answers still on their way: wait until every request has one or
	// grace has passed.
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		all := len(s.answered)+len(s.strays) >= len(s.sent)
		s.mu.Unlock()
		if all {
			break
		}
	}
	_ = s.conn.Close()
	s.done.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := range s.sent {
		if _, ok := s.answered[uint64(seq)]; !ok {
			unanswered = append(unanswered, uint64(seq))
		}
	}
	return len(s.sent), unanswered
}

// judgeVIP checks a stream through the VIP while the pods in old were
// replaced: every request must reach stund and its answer the client. One
// exception per replaced pod, logged: the answer that comes back from that
// pod's own address, not the VIP's. kube-proxy deletes a UDP flow's
// conntrack entry when its endpoint stops serving, so that the flow's next
// packet picks a live endpoint; an answer the old pod is sending at that
// instant leaves the node with its NAT not undone, and the client's
// socket, talking to the VIP, never takes it. stund answered; kube-proxy
// lost it.
func (s *bindingStream) judgeVIP(t *testing.T, what string, sent int, lost []uint64, old []corev1.Pod) {
	t.Helper()
	var flushed, hard []uint64
	for _, seq := range lost {
		from, stray := s.strays[seq]
		if stray && slices.ContainsFunc(old, func(p corev1.Pod) bool { return from == hostPort(p.Status.PodIP, stunPort) }) {
			flushed = append(flushed, seq)
		} else {
			hard = append(hard, seq)
		}
	}
	if len(hard) > 0 {
		t.Errorf("%s: %d of %d requests through the VIP unanswered:%s", what, len(hard), sent, s.describeLoss(hard))
	}
	if len(flushed) > len(old) {
		t.Errorf("%s: %d answers came back from the old pods' own addresses, more than one per replaced pod (%d):%s",
			what, len(flushed), len(old), s.describeLoss(flushed))
	} else if len(flushed) > 0 {
		t.Logf("%s: stund answered every request; %d answer(s) reached the client from the old pod's own address when "+
			"kube-proxy deleted the flow's conntrack entry as the answer was on its way:%s", what, len(flushed), s.describeLoss(flushed))
	}
	if s.wrong > 0 {
		t.Errorf("%s: %d answers mapped another address than the client's %s", what, s.wrong, ipv4.Public)
	}
}

// lastAnsweredSent returns when the last answered request was sent.
func (s *bindingStream) lastAnsweredSent() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for seq := range s.answered {
		if at := s.sent[seq]; at.After(last) {
			last = at
		}
	}
	return last
}

// describeLoss says which requests went unanswered, as time ranges since
// the stream began.
func (s *bindingStream) describeLoss(unanswered []uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, seq := range unanswered {
		if i == 20 {
			fmt.Fprintf(&b, " … (%d in all)", len(unanswered))
			break
		}
		fmt.Fprintf(&b, " #%d@%v", seq, s.sent[seq].Sub(s.sent[0]).Round(time.Millisecond))
		if from, ok := s.strays[seq]; ok {
			fmt.Fprintf(&b, " (answered from %s, not %s)", from, s.target)
		}
	}
	return b.String()
}

// waitGone waits until none of the named pods exists any more.
func (n *RealNode) waitGone(t testing.TB, names []string, timeout time.Duration) {
	t.Helper()
	n.waitFor(t, "the old pods to be gone", timeout, n.kubelet, func() error {
		for _, p := range n.stundPods(t) {
			if slices.Contains(names, p.Name) {
				return fmt.Errorf("pod %s still there (phase %s)", p.Name, p.Status.Phase)
			}
		}
		return nil
	})
}

func TestRealNodeRollingUpdateLosesNothing(t *testing.T) {
	n := NewRealNode(t)
	n.install(t, streamRateLimit)
	old := n.waitRollout(t, "Deployment", 2*time.Minute)
	n.waitLocalEndpoint(t, 1)
	n.expectPreserved(t)

	s := startBindingStream(t, n.Client, vip, 20*time.Millisecond)
	began := time.Now()
	n.helm(t, helmTool(t), "upgrade", kubeRelease, "../charts/stund", "--namespace", clusterNS, "--reuse-values",
		"--set-string", "podAnnotations.lab/rollout="+strconv.FormatInt(began.UnixNano(), 10))
	pods := n.waitRollout(t, "Deployment", 2*time.Minute)
	n.waitGone(t, []string{old[0].Name}, 90*time.Second)
	if pods[0].Name == old[0].Name {
		t.Fatalf("helm upgrade did not replace pod %s", old[0].Name)
	}
	took := time.Since(began)
	sent, lost := s.Stop(time.Second)
	t.Logf("rolling update %s → %s in %v: %d/%d Binding requests answered through the VIP, %d answers with another address",
		old[0].Name, pods[0].Name, took.Round(100*time.Millisecond), sent-len(lost), sent, s.wrong)
	s.judgeVIP(t, "rolling update", sent, lost, old)
	if sent < int(took/(20*time.Millisecond))/2 {
		t.Errorf("only %d requests sent in %v", sent, took)
	}
}

func TestRealNodeDaemonSet(t *testing.T) {
	n := NewRealNode(t)
	n.install(t, "kind=DaemonSet")
	pods := n.waitRollout(t, "DaemonSet", 2*time.Minute)
	if owner := metav1.GetControllerOf(&pods[0]); owner == nil || owner.Kind != "DaemonSet" {
		t.Errorf("pod %s is not a DaemonSet's: %+v", pods[0].Name, owner)
	}
	n.waitLocalEndpoint(t, 1)
	n.expectPreserved(t)
}

func TestRealNodePodDeletionDrains(t *testing.T) {
	const preStop, drain = 5 * time.Second, 15 * time.Second // the chart's defaults
	n := NewRealNode(t)
	n.install(t, streamRateLimit)
	pods := n.waitRollout(t, "Deployment", 2*time.Minute)
	n.waitLocalEndpoint(t, 1)
	old := pods[0]
	podAddr := hostPort(old.Status.PodIP, stunPort)

	// One stream straight to the old pod (the router routes the pod range
	// to the node), one through the VIP.
	direct := startBindingStream(t, n.Client, podAddr, 20*time.Millisecond)
	viaVIP := startBindingStream(t, n.Client, vip, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	deleted := time.Now()
	err := n.API.CoreV1().Pods(clusterNS).Delete(ctx, old.Name, metav1.DeleteOptions{})
	cancel()
	if err != nil {
		t.Fatalf("delete pod %s: %v", old.Name, err)
	}

	// /readyz turns 503 once stund has SIGTERM, after the preStop sleep.
	var notReady time.Time
	n.waitFor(t, "the old pod's /readyz to fail", preStop+drain, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		code, _, err := n.Client.HTTPGet(ctx, "http://"+hostPort(old.Status.PodIP, metricsPort)+"/readyz")
		if err != nil {
			return err
		}
		if code == 200 {
			return errors.New("still ready")
		}
		notReady = time.Now()
		return nil
	})
	n.waitGone(t, []string{old.Name}, preStop+drain+30*time.Second)
	gone := time.Since(deleted)
	n.waitRollout(t, "Deployment", time.Minute)
	lastAnswer := direct.lastAnsweredSent().Sub(deleted)
	sentDirect, lostDirect := direct.Stop(time.Second)
	sentVIP, lostVIP := viaVIP.Stop(time.Second)

	t.Logf("pod %s: /readyz failing %v after the delete, last request answered by it sent %v after, gone after %v; "+
		"through the VIP %d/%d answered; straight to the pod %d/%d",
		old.Name, notReady.Sub(deleted).Round(100*time.Millisecond), lastAnswer.Round(100*time.Millisecond),
		gone.Round(100*time.Millisecond), sentVIP-len(lostVIP), sentVIP, sentDirect-len(lostDirect), sentDirect)
	if d := notReady.Sub(deleted); d < preStop-500*time.Millisecond {
		t.Errorf("/readyz failed %v after the delete: before the preStop sleep (%v) ended", d, preStop)
	}
	if lastAnswer < preStop+drain-time.Second {
		t.Errorf("the old pod answered until %v after the delete, want preStop + drain = %v", lastAnswer, preStop+drain)
	}
	if gone < preStop+drain {
		t.Errorf("the pod was gone %v after the delete, before preStop + drain = %v", gone, preStop+drain)
	}
	// Straight to the pod, everything sent before the drain ended is answered.
	var early []uint64
	for _, seq := range lostDirect {
		if direct.sent[seq].Sub(deleted) < preStop+drain-time.Second {
			early = append(early, seq)
		}
	}
	if len(early) > 0 {
		t.Errorf("the draining pod left %d requests unanswered:%s", len(early), direct.describeLoss(early))
	}
	viaVIP.judgeVIP(t, "pod deletion", sentVIP, lostVIP, []corev1.Pod{old})
}
