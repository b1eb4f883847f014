//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitListening waits until something in h listens on port for network
// ("udp" or "tcp"), failing the test after a few seconds or as soon as proc
// (if given) exits.
func waitListening(t testing.TB, h *Host, proc *Proc, network string, port int) {
	t.Helper()
	flag := map[string]string{"udp": "-Hlun", "tcp": "-Hltn"}[network]
	suffix := ":" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.Exec("ss", flag)
		if err != nil {
			t.Fatalf("%s: ss %s: %v: %s", h.Role, flag, err, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && strings.HasSuffix(f[3], suffix) {
				return
			}
		}
		if proc != nil {
			if exited, err := proc.Exited(); exited {
				t.Fatalf("%s exited before listening on %s port %d: %v\n%s", proc.Name, network, port, err, proc.Output())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: nothing listens on %s port %d after 10s", h.Role, network, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stund is a stund process running in the pod.
type Stund struct {
	Proc *Proc
	host *Host
	base string // http://pod:9478
}

// StartStund runs stund in the pod with its defaults (UDP and TCP on :3478,
// HTTP on :9478), as a Kubernetes pod would, and waits until it is ready.
func (top *Topology) StartStund(t testing.TB) *Stund {
	t.Helper()
	p := top.Pod.Start(binPath(t, "stund"), "--log-level", "debug", "--drain-timeout", "100ms")
	s := &Stund{Proc: p, host: top.Pod, base: "http://" + hostPort(ipv4.Pod, metricsPort)}
	waitListening(t, top.Pod, p, "udp", stunPort)
	waitListening(t, top.Pod, p, "tcp", stunPort)
	waitReady(t, s)
	return s
}

// waitReady waits until stund's /readyz answers 200.
func waitReady(t testing.TB, s *Stund) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		code, body, err := s.host.HTTPGet(ctx, s.base+"/readyz")
		cancel()
		if err == nil && code == 200 {
			return
		}
		if exited, perr := s.Proc.Exited(); exited {
			t.Fatalf("stund exited: %v\n%s", perr, s.Proc.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("stund not ready after 10s: GET /readyz: %d %q %v\n%s", code, body, err, s.Proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A requestKey selects stund_binding_requests_total's series.
type requestKey struct{ Transport, Family, SourceClass string }

// BindingRequests scrapes stund's /metrics from inside the pod and returns
// stund_binding_requests_total by label set.
func (s *Stund) BindingRequests(t testing.TB) map[requestKey]float64 {
	t.Helper()
	counts := map[requestKey]float64{}
	s.scrape(t, "stund_binding_requests_total", func(labels map[string]string, v float64) {
		counts[requestKey{labels["transport"], labels["family"], labels["source_class"]}] += v
	})

	return counts
}

// scrape reads stund's /metrics from inside the pod and calls each for
// every series of the metric name.
func (s *Stund) scrape(t testing.TB, metric string, each func(labels map[string]string, v float64)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := s.host.HTTPGet(ctx, s.base+"/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET %s/metrics from the pod: %d %v\n%s", s.base, code, err, body)
	}
	prefix := metric + "{"
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		end := strings.LastIndex(line, "}")
		v, err := strconv.ParseFloat(strings.Fields(line[end+1:])[0], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		each(parseLabels(line[len(prefix):end]), v)
	}
}

// parseLabels reads `a="x",b="y"` (label values in the lab have no quotes
// or commas).
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

// StartCoturn runs coturn as a plain STUN server (no TURN, TLS, DTLS or CLI)
// on the given addresses of h, port 3478, and waits until it listens. extra
// are more turnserver flags.
func StartCoturn(t testing.TB, h *Host, addrs []string, extra ...string) *Proc {
	t.Helper()
	requireTool(t, "turnserver", "coturn")
	dir := t.TempDir()
	args := []string{
		"-n", // no configuration file
		"--stun-only", "--no-tls", "--no-dtls", "--no-cli",
		"--listening-port", strconv.Itoa(stunPort),
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "turnserver.pid"),
		"--userdb", filepath.Join(dir, "turndb"),
	}
	for _, a := range addrs {
		args = append(args, "--listening-ip", a)
	}
	args = append(args, extra...)
	p := h.Start("turnserver", args...)
	waitListening(t, h, p, "udp", stunPort)
	waitListening(t, h, p, "tcp", stunPort)
	return p
}

// nginxStream is where Debian's libnginx-mod-stream installs the module.
const nginxStream = "/usr/lib/nginx/modules/ngx_stream_module.so"

// startProxies makes the LB a proxy: haproxy for TCP and nginx's stream
// module for UDP, each listening on the VIP and opening its own connections
// to the node's NodePort, from the LB's inside address or, with fromVIP,
// from the VIP.
func (top *Topology) startProxies(t testing.TB, fromVIP bool) {
	t.Helper()
	requireTool(t, "haproxy", "haproxy")
	requireTool(t, "nginx", "nginx libnginx-mod-stream")
	if _, err := os.Stat(nginxStream); err != nil {
		unavailable(t, fmt.Sprintf("this scenario needs nginx's stream module: %v (Debian: apt-get install libnginx-mod-stream)", err))
	}
	dir := t.TempDir()
	// source returns the haproxy and nginx directives that choose the
	// address the proxy connects from.
	source := func(f family) (haproxy, nginx string) {
		if !fromVIP {
			return "", ""
		}
		return "\tsource " + hostPort(f.VIP, 0) + "\n", "\t\tproxy_bind " + f.VIP + ";\n"
	}

	haproxyCfg := filepath.Join(dir, "haproxy.cfg")
	var hb strings.Builder
	fmt.Fprintf(&hb, `global
	maxconn 100
defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
`)
	for _, f := range families {
		src, _ := source(f)
		fmt.Fprintf(&hb, `frontend stun%[1]s
	bind %[2]s
	default_backend node%[1]s
backend node%[1]s
%[4]s	server node %[3]s
`, f.Short, hostPort(f.VIP, stunPort), hostPort(f.Node, nodePort), src)
	}
	writeFile(t, haproxyCfg, hb.String())
	hp := top.LB.Start("haproxy", "-db", "-f", haproxyCfg)

	nginxCfg := filepath.Join(dir, "nginx.conf")
	var nb strings.Builder
	fmt.Fprintf(&nb, `load_module %s;
daemon off;
master_process off;
pid %s/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
stream {
`, nginxStream, dir)
	for _, f := range families {
		_, bind := source(f)
		fmt.Fprintf(&nb, `	server {
		listen %s udp;
		proxy_pass %s;
%s		proxy_responses 1;
		proxy_timeout 5s;
	}
`, hostPort(f.VIP, stunPort), hostPort(f.Node, nodePort), bind)
	}
	nb.WriteString("}\n")
	writeFile(t, nginxCfg, nb.String())
	np := top.LB.Start("nginx", "-p", dir, "-e", "stderr", "-c", nginxCfg)

	waitListening(t, top.LB, hp, "tcp", stunPort)
	waitListening(t, top.LB, np, "udp", stunPort)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
