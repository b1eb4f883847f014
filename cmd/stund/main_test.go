package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// binary is the stund command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stund-cmd-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "stund")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		_, _ = os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv is the environment stund runs with in tests: this process's,
// without the STUND_* variables and POD_NAMESPACE that would change its
// defaults (each test sets the ones it is about).
func testEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "STUND_") || strings.HasPrefix(kv, "POD_NAMESPACE=")
	})
}

func runStund(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(testEnv(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError) //nolint:errorlint // only this type carries the code
		if !ok {
			t.Fatalf("run stund: %v", err)
		}
		code = ee.ExitCode()
	}

	return code, stdout.String(), stderr.String()
}

func TestUsageErrors(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown flag", nil, []string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad log level", nil, []string{"--log-level", "loud"}, 2, "--log-level"},
		{"bad log format", nil, []string{"--log-format", "xml"}, 2, "--log-format"},
		{"positional argument", nil, []string{"127.0.0.1:3478"}, 2, "unexpected argument"},
		{"listen without port", nil, []string{"--listen", "127.0.0.1", "--http-listen", ""}, 2, `"127.0.0.1"`},
		{"bad drain timeout env", []string{"STUND_DRAIN_TIMEOUT=soon"}, nil, 2, "STUND_DRAIN_TIMEOUT"},
		{"software too long", nil, []string{"--software", strings.Repeat("s", 200)}, 2, "software"},
		{"zero udp sockets", nil, []string{"--udp-sockets", "0"}, 2, "--udp-sockets"},
		{"bad udp sockets env", []string{"STUND_UDP_SOCKETS=many"}, nil, 2, "STUND_UDP_SOCKETS"},
		{"proxy without trusted", nil, []string{"--proxy-protocol"}, 2, "--proxy-trusted-cidr"},
		{"trusted without proxy", nil, []string{"--proxy-trusted-cidr", "10.0.0.0/8"}, 2, "only with --proxy-protocol"},
		{"bad trusted cidr", nil, []string{"--proxy-protocol", "--proxy-trusted-cidr", "10.0.0.0/33"}, 2, "--proxy-trusted-cidr"},
		{"trusted cidr with host bits", nil, []string{"--proxy-protocol", "--proxy-trusted-cidr", "10.0.0.1/8"}, 2, "10.0.0.0/8"},
		{"negative rate limit", nil, []string{"--rate-limit", "-1"}, 2, "--rate-limit"},
		{"bad exempt cidr", nil, []string{"--rate-limit-exempt", "nat-pool"}, 2, "--rate-limit-exempt"},
		{"bad rate env", []string{"STUND_RATE_LIMIT=fast"}, nil, 2, "STUND_RATE_LIMIT"},
		{"negative tcp cap", nil, []string{"--max-tcp-conns", "-5"}, 2, "--max-tcp-conns"},
		{"bad response origin", nil, []string{"--response-origin", "lb.example"}, 2, "--response-origin"},
		{"two ipv4 response origins", nil, []string{"--response-origin", "198.51.100.1:3478", "--response-origin", "198.51.100.2:3478"}, 2, "--response-origin 198.51.100.1:3478 and 198.51.100.2:3478: both IPv4"},
		{"two ipv6 response origins in env", []string{"STUND_RESPONSE_ORIGIN=[2001:db8::1]:3478,[2001:db8::2]:3478"}, nil, 2, "--response-origin [2001:db8::1]:3478 and [2001:db8::2]:3478: both IPv6"},
		{"ipv4 and mapped ipv4 response origins", nil, []string{"--response-origin", "198.51.100.1:3478", "--response-origin", "[::ffff:198.51.100.2]:3478"}, 2, "both IPv4"},
		{"mapped trusted cidr", nil, []string{"--proxy-protocol", "--proxy-trusted-cidr", "::ffff:10.1.0.0/112"}, 2, `--proxy-trusted-cidr "::ffff:10.1.0.0/112": an IPv4-mapped IPv6 prefix never matches, IPv4 sources are compared as IPv4; did you mean 10.1.0.0/16?`},
		{"mapped trusted address", nil, []string{"--proxy-protocol", "--proxy-trusted-cidr", "::ffff:10.1.0.1"}, 2, "did you mean 10.1.0.1/32?"},
		{"mapped exempt cidr", nil, []string{"--rate-limit-exempt", "::ffff:100.64.0.0/106"}, 2, "--rate-limit-exempt"},
		{"udp port in use", nil, []string{"--listen", busy.LocalAddr().String(), "--http-listen", ""}, 1, busy.LocalAddr().String()},
		{"http port in use", nil, []string{"--listen", "127.0.0.1:0", "--http-listen", busyTCP(t)}, 1, "--http-listen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runStund(t, tc.env, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n") + 1; lines > 2 {
				t.Errorf("error takes %d lines, want one (and a pointer to --help):\n%s", lines, stderr)
			}
		})
	}
}

func busyTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })

	return l.Addr().String()
}

func TestVersionAndHelp(t *testing.T) {
	code, stdout, _ := runStund(t, nil, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "stund ") {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	code, help, _ := runStund(t, nil, "--help")
	for _, want := range []string{"--listen", "STUND_LISTEN", "--http-listen", "--drain-timeout", "Exit codes", "Examples"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	if code != 0 {
		t.Errorf("--help exits %d", code)
	}
}

// process is a running stund with its log lines collected.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

var (
	stunAddrRE = regexp.MustCompile(`listening udp (\S+)`)
	httpAddrRE = regexp.MustCompile(`http listening (\S+)`)
)

func startStund(t *testing.T, env []string, args ...string) *process {
	t.Helper()

	return startCommand(t, exec.Command(binary, args...), env)
}

// startCommand starts cmd, which runs stund (perhaps through a command
// that execs it, such as taskset), with env added to testEnv.
func startCommand(t *testing.T, cmd *exec.Cmd, env []string) *process {
	t.Helper()
	cmd.Env = append(testEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		_ = cmd.Wait()
	})

	return p
}

// waitLog waits for a log line matching re and returns its first group.
func (p *process) waitLog(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()

				return m[1]
			}
		}
		p.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line matching %s in:\n%s", re, p.log())

	return ""
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()

	return strings.Join(p.lines, "\n")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // a test on loopback
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	return resp.StatusCode, string(body)
}

func binding(t *testing.T, network, addr string) bool {
	t.Helper()
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := c.Write(req.Raw); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return false
	}
	m := &stun.Message{Raw: buf[:n]}

	return m.Decode() == nil && m.Type == stun.BindingSuccess && m.TransactionID == req.TransactionID
}

// TestServeAndDrain runs the real command: it logs its addresses, answers
// over UDP and TCP, exports stund_ metrics, and on SIGTERM turns /readyz
// to 503 at once while still answering until the drain ends, then exits 0.
func TestServeAndDrain(t *testing.T) {
	p := startStund(t, []string{"STUND_LOG_FORMAT=json"}, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--drain-timeout", "1500ms")
	stunAddr := strings.TrimSuffix(p.waitLog(t, stunAddrRE), `"}`)
	httpAddr := strings.TrimSuffix(p.waitLog(t, httpAddrRE), `"}`)
	base := "http://" + httpAddr
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before SIGTERM", code)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	for _, network := range []string{"udp", "tcp"} {
		if !binding(t, network, stunAddr) {
			t.Fatalf("no %s answer from %s", network, stunAddr)
		}
	}
	// A request is counted just after it is answered: poll.
	waitMetrics(t, base,
		`stund_binding_requests_total{family="ipv4",source_class="private",transport="udp"} 1`,
		`stund_binding_requests_total{family="ipv4",source_class="private",transport="tcp"} 1`,
		`stund_responses_total{family="ipv4",outcome="success",transport="udp"} 1`,
		`stund_build_info{`,
		`stund_tcp_connections_total 1`,
	)

	p.drain(t, base, 1500*time.Millisecond, func() bool {
		return binding(t, "udp", stunAddr) && binding(t, "tcp", stunAddr)
	})
	if !strings.Contains(p.log(), `"level":"info"`) {
		t.Errorf("log is not JSON:\n%s", p.log())
	}
}

// waitMetrics polls /metrics for up to two seconds until it has every
// wanted line.
func waitMetrics(t *testing.T, base string, wants ...string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, metrics := get(t, base+"/metrics")
		missing := ""
		for _, w := range wants {
			if !strings.Contains(metrics, w) {
				missing = w

				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics lacks %s", missing)

			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drain sends SIGTERM and checks the drain of drainTimeout: /readyz at
// 503 within a second, answered() true during the drain, exit 0 once the
// drain ends (not before, nor much after).
func (p *process) drain(t *testing.T, base string, drainTimeout time.Duration, answered func() bool) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		code, _ := get(t, base+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("/readyz still %d a second after SIGTERM", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !answered() {
		t.Error("STUN not answered during the drain")
	}
	select {
	case <-p.done:
	case <-time.After(drainTimeout + 2*time.Second):
		t.Fatalf("still running %s after SIGTERM with a %s drain", drainTimeout+2*time.Second, drainTimeout)
	}
	_ = p.cmd.Wait()
	took := time.Since(start)
	t.Logf("exited %s after SIGTERM, code %d", took.Round(time.Millisecond), p.cmd.ProcessState.ExitCode())
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after the drain, want 0", code)
	}
	if took < drainTimeout-100*time.Millisecond || took > drainTimeout+500*time.Millisecond {
		t.Errorf("exited %s after SIGTERM, want when the %s drain ends", took, drainTimeout)
	}
}

// TestSecondSignalStopsAtOnce checks that a second signal cuts the drain
// and ends stund within a second, with a client pipelining requests on
// TCP: that client used to keep stund alive through both signals.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--drain-timeout", "1m")
	stunAddr := p.waitLog(t, stunAddrRE)
	pipeline(t, stunAddr)
	waitTCPReceived(t, "http://"+p.waitLog(t, httpAddrRE), 20000)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, regexp.MustCompile(`(draining) for 1m0s`))
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(time.Second):
		t.Fatalf("still running a second after the second signal:\n%s", p.log())
	}
	_ = p.cmd.Wait()
	t.Logf("exited %s after the second signal", time.Since(start).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// TestDrainWithPipeliningClient checks that a TCP client sending requests
// back to back does not hold stund past its drain: after the drain every
// connection answers what it has read and closes, and stund exits within
// a second of the drain's end. It used to stay up as long as the client
// kept sending.
func TestDrainWithPipeliningClient(t *testing.T) {
	const drain = time.Second
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--drain-timeout", drain.String())
	stunAddr := p.waitLog(t, stunAddrRE)
	c := pipeline(t, stunAddr)
	waitTCPReceived(t, "http://"+p.waitLog(t, httpAddrRE), 20000)
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(drain + time.Second):
		t.Fatalf("still running %s after SIGTERM with a %s drain:\n%s", drain+time.Second, drain, p.log())
	}
	_ = p.cmd.Wait()
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if err := <-c.ended; err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client connection: %v, want it closed by stund", err)
	}
}

// pipelined is a TCP client that sends Binding requests back to back.
type pipelined struct {
	// ended gets the error that ended reading: nil for EOF.
	ended chan error
}

// pipeline starts a TCP client that sends Binding requests to addr back
// to back and reads every answer, as a busy client does, until stund
// closes the connection or the test ends.
func pipeline(t *testing.T, addr string) *pipelined {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var batch []byte
	for range 50 {
		batch = append(batch, stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw...)
	}
	go func() {
		for {
			if _, err := c.Write(batch); err != nil {
				return
			}
		}
	}()
	p := &pipelined{ended: make(chan error, 1)}
	go func() {
		_, err := io.Copy(io.Discard, c)
		p.ended <- err
	}()

	return p
}

var tcpReceivedRE = regexp.MustCompile(`(?m)^stund_received_bytes_total\{transport="tcp"\} (\S+)`)

// waitTCPReceived polls /metrics until stund has read at least n bytes
// over TCP.
func waitTCPReceived(t *testing.T, base string, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m := get(t, base+"/metrics")
		if g := tcpReceivedRE.FindStringSubmatch(m); g != nil {
			if v, err := strconv.ParseFloat(g[1], 64); err == nil && v >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stund has not read %g bytes over TCP", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAmplificationWarning checks that stund warns at start when
// --software makes an answer more than 3 times its request, and not with
// the defaults on an IPv4 address.
func TestAmplificationWarning(t *testing.T) {
	warning := regexp.MustCompile(`WARN .*answers to (IPv4) clients reach 84 bytes for a 20-byte request \(4\.2x, over 3x\) with --software`)
	ready := regexp.MustCompile(`stund (\S+) ready`)
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "", "--software", strings.Repeat("s", 40))
	p.waitLog(t, warning)

	// With the defaults an IPv6 client's answer is 3.2x, but only by the
	// length of its own address: a dual-stack start does not warn.
	p = startStund(t, nil, "--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--http-listen", "")
	p.waitLog(t, ready) // the warning would come before
	if strings.Contains(p.log(), "WARN") {
		t.Errorf("warning with the defaults (2.7x at most, IPv6 addresses at IPv4 size):\n%s", p.log())
	}

	// An IPv6 RESPONSE-ORIGIN is the operator's: 88 bytes for 20.
	p = startStund(t, nil, "--listen", "[::1]:0", "--http-listen", "", "--response-origin", "[2001:db8::1]:3478")
	p.waitLog(t, regexp.MustCompile(`WARN .*answers to (IPv6) clients reach 88 bytes for a 20-byte request \(4\.4x, over 3x\) with --software "stund" \(5 bytes\) and --response-origin`))
}

// TestResponseOriginPerFamily runs the real binary with one origin per
// family, from the environment: each client learns only the origin of
// its own family.
func TestResponseOriginPerFamily(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		_ = c.Close()
	}
	p := startStund(t, []string{"STUND_RESPONSE_ORIGIN=198.51.100.1:3478,[2001:db8::1]:3478"},
		"--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--http-listen", "")
	p.waitLog(t, regexp.MustCompile(`stund (\S+) ready`))
	addrs := regexp.MustCompile(`listening udp (\S+)`).FindAllStringSubmatch(p.log(), -1)
	if len(addrs) != 2 {
		t.Fatalf("want two listeners:\n%s", p.log())
	}
	want := map[string]string{"127.0.0.1": "198.51.100.1:3478", "::1": "[2001:db8::1]:3478"}
	for _, a := range addrs {
		server := netip.MustParseAddrPort(a[1])
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		if _, err := c.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer from %s: %v", server, err)
		}
		m := &stun.Message{Raw: buf[:n]}
		if err := m.Decode(); err != nil {
			t.Fatal(err)
		}
		var ro stun.ResponseOrigin
		if err := ro.GetFrom(m); err != nil || ro.String() != want[server.Addr().String()] {
			t.Errorf("client of %s got RESPONSE-ORIGIN %s (%v), want %s", server, ro, err, want[server.Addr().String()])
		}
	}
}
