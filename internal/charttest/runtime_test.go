package charttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// workloadSpec returns the pod spec of the rendered Deployment or DaemonSet.
func workloadSpec(t *testing.T, ms manifests) *corev1.PodSpec {
	t.Helper()
	for _, d := range all[appsv1.Deployment](ms) {
		return &d.Spec.Template.Spec
	}
	for _, d := range all[appsv1.DaemonSet](ms) {
		return &d.Spec.Template.Spec
	}
	t.Fatalf("no workload rendered: %s", ms.names())

	return nil
}

// podEnv is the environment the kubelet would give the stund container:
// literal values as rendered, downward-API values made up.
func podEnv(c *corev1.Container) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			env = append(env, e.Name+"=fake-"+strings.ReplaceAll(e.ValueFrom.FieldRef.FieldPath, ".", "-"))
		case e.ValueFrom.ResourceFieldRef != nil:
			env = append(env, e.Name+"=134217728")
		}
	}

	return env
}

// TestStundAcceptsRenderedArgs runs the real stund with the arguments and
// environment every values file renders, plus --version: stund parses every
// flag before it prints the version, and exits 2 on an unknown one.
func TestStundAcceptsRenderedArgs(t *testing.T) {
	cases := map[string][]string{"defaults": nil}
	for _, f := range valuesFiles {
		cases[f] = []string{"--values", filepath.Join("testdata", f)}
	}
	cases["all stund values"] = []string{"--set", "rfc3489=true,responseOrigin=203.0.113.7:3478,software=,logFormat=text,logLevel=trace"}
	cases["a response origin per family"] = []string{"--set", "responseOrigin={198.51.100.1:3478,[2001:db8::1]:3478}"}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := helm(append(templateArgs(chartDir, nil, nil), extra...)...)
			if err != nil {
				t.Fatal(err)
			}
			c := stundContainer(t, workloadSpec(t, parseManifests(t, out)))
			cmd := exec.Command(stundBin, append(append([]string{}, c.Args...), "--version")...)
			cmd.Env = podEnv(c)
			got, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(got), "stund ") {
				t.Errorf("stund %s --version: %v\n%s", strings.Join(c.Args, " "), err, got)
			}
		})
	}
}

// freePort returns a port that is free for both UDP and TCP on all addresses.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port")

	return 0
}

// TestStundServesRenderedProbes starts stund exactly as the chart does (on
// free ports), checks the rendered probes against it, then sends SIGTERM as
// the kubelet would after the preStop hook: readiness must fail while stund
// drains, and stund must exit 0 within terminationGracePeriodSeconds.
func TestStundServesRenderedProbes(t *testing.T) {
	stunPort, httpPort := freePort(t), freePort(t)
	for httpPort == stunPort {
		httpPort = freePort(t)
	}
	ms := render(t, nil,
		"stunPort="+strconv.Itoa(stunPort), "httpPort="+strconv.Itoa(httpPort),
		"shutdown.drainTimeoutSeconds=2", "shutdown.preStopSleepSeconds=0", "logFormat=text")
	spec := workloadSpec(t, ms)
	c := stundContainer(t, spec)
	probeURL := func(p *corev1.Probe) string {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Fatalf("probe %+v is not an HTTP GET", p)
		}
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port.String() {
				return fmt.Sprintf("http://127.0.0.1:%d%s", cp.ContainerPort, p.HTTPGet.Path)
			}
		}
		t.Fatalf("probe port %s is not a container port", p.HTTPGet.Port.String())

		return ""
	}
	live, ready := probeURL(c.LivenessProbe), probeURL(c.ReadinessProbe)

	var stderr bytes.Buffer
	cmd := exec.Command(stundBin, c.Args...)
	cmd.Env = podEnv(c)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("stund stderr:\n%s", stderr.String())
		}
	})

	status := func(url string) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("readiness "+ready, func() bool { return status(ready) == http.StatusOK })
	if s := status(live); s != http.StatusOK {
		t.Errorf("liveness %s = %d", live, s)
	}
	for _, network := range []string{"tcp", "udp"} {
		conn, err := net.Dial(network, fmt.Sprintf("127.0.0.1:%d", stunPort))
		if err != nil {
			t.Errorf("dial %s to the rendered STUN port: %v", network, err)
			continue
		}
		_ = conn.Close()
	}

	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor("readiness to fail during the drain", func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		return status(ready) == http.StatusServiceUnavailable
	})
	if s := status(live); s != http.StatusOK {
		t.Errorf("liveness during the drain = %d: the kubelet would restart a draining pod", s)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("stund exited with %v after SIGTERM, want 0", err)
		}
		t.Logf("stund drained and exited %s after SIGTERM (grace period %s)", time.Since(start).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Errorf("stund still running after terminationGracePeriodSeconds (%s): the kubelet would SIGKILL it", grace)
	}
}

// TestHelmTestScript runs the test hook's shell script with a stand-in
// stuncheck: it must probe each Service's ClusterIP with the pod's own
// address of the same family, pass stuncheck's exit code through, and say
// what each outcome means.
func TestHelmTestScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the script with")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "stuncheck")
	const fakeScript = `#!/bin/sh
echo "$*" >> "$FAKE_LOG"
echo "stand-in stuncheck report"
case "$*" in *"--transport udp "*) exit "${FAKE_RC_UDP:-0}" ;; esac
exit "${FAKE_RC:-0}"
`
	if err := os.WriteFile(fake, []byte(fakeScript), 0o755); err != nil {
		t.Fatal(err)
	}
	script := func(t *testing.T, sets ...string) string {
		pod := checkTestPod(t, render(t, nil, sets...), nil)
		if pod == nil {
			return ""
		}
		c := pod.Spec.Containers[0]
		if len(c.Command) != 2 || c.Command[0] != "/busybox/sh" || c.Command[1] != "-c" || len(c.Args) != 1 {
			t.Fatalf("test pod runs %q %q, want /busybox/sh -c SCRIPT", c.Command, c.Args)
		}
		return strings.ReplaceAll(c.Args[0], "/stuncheck ", fake+" ")
	}

	for _, tc := range []struct {
		name     string
		sets     []string
		env      []string
		wantRC   int
		wantArgs []string
		wantOut  []string
	}{
		{
			name:     "ipv4 preserved",
			env:      []string{"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5,fd00::5", "STUND_SERVICE_HOST=10.96.0.10"},
			wantArgs: []string{"--expect-ip 10.0.0.5 --transport udp,tcp --timeout 5s 10.96.0.10:3478"},
			wantOut:  []string{"Cluster semantics", "preserved: stund saw this pod's own address 10.0.0.5", "stand-in stuncheck report", "In-cluster check passed"},
		},
		{
			name:     "ipv6 service picks the pod's ipv6 address",
			env:      []string{"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5,fd00::5", "STUND_SERVICE_HOST=fd00:96::10"},
			wantArgs: []string{"--expect-ip fd00::5 --transport udp,tcp --timeout 5s [fd00:96::10]:3478"},
		},
		{
			name:     "rewritten",
			env:      []string{"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5", "STUND_SERVICE_HOST=10.96.0.10", "FAKE_RC=1"},
			wantRC:   1,
			wantArgs: []string{"--expect-ip 10.0.0.5 --transport udp,tcp --timeout 5s 10.96.0.10:3478"},
			wantOut:  []string{"rewritten: even pod-to-ClusterIP traffic is SNATed"},
		},
		{
			name:     "inconclusive, no service link",
			env:      []string{"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5", "FAKE_RC=3"},
			wantRC:   3,
			wantArgs: []string{"--expect-ip 10.0.0.5 --transport udp,tcp --timeout 5s stund.stun-system.svc:3478"},
			wantOut:  []string{"inconclusive", "get pods -l app.kubernetes.io/instance=stund"},
		},
		{
			name: "split, udp rewritten",
			sets: []string{"service.split=true", "tests.timeout=2s"},
			env: []string{"POD_IP=10.0.0.5", "POD_IPS=10.0.0.5", "STUND_UDP_SERVICE_HOST=10.96.0.11",
				"STUND_TCP_SERVICE_HOST=10.96.0.12", "FAKE_RC_UDP=1"},
			wantRC: 1,
			wantArgs: []string{
				"--expect-ip 10.0.0.5 --transport udp --timeout 2s 10.96.0.11:3478",
				"--expect-ip 10.0.0.5 --transport tcp --timeout 2s 10.96.0.12:3478",
			},
			wantOut: []string{"Service stund-udp (udp)", "Service stund-tcp (tcp)", "rewritten"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := script(t, tc.sets...)
			log := filepath.Join(t.TempDir(), "calls")
			cmd := exec.Command(sh, "-c", s)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "FAKE_LOG=" + log}, tc.env...)
			out, err := cmd.CombinedOutput()
			rc := 0
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if rc != tc.wantRC {
				t.Errorf("exit %d, want %d\n%s", rc, tc.wantRC, out)
			}
			calls, _ := os.ReadFile(log)
			if got := strings.Split(strings.TrimSpace(string(calls)), "\n"); strings.Join(got, "\n") != strings.Join(tc.wantArgs, "\n") {
				t.Errorf("stuncheck calls:\n%s\nwant:\n%s", calls, strings.Join(tc.wantArgs, "\n"))
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
