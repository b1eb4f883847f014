package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/stund/stund/internal/stund/admin"
)

// hostileScale stretches the hostile run: STUND_SOAK=1 runs the durations
// of the acceptance run (5 s malformed flood, 3 s valid flood),
// larger values soak longer. The normal test run uses a shorter version.
func hostileScale(t *testing.T) float64 {
	t.Helper()
	v := os.Getenv("STUND_SOAK")
	if v == "" {
		return 0.4
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("STUND_SOAK=%q: want a positive number", v)
	}

	return f
}

func scaled(d time.Duration, f float64) time.Duration { return time.Duration(float64(d) * f) }

// udpFrom returns a UDP socket on the loopback address local (Linux
// answers on all of 127.0.0.0/8), connected to server: one test plays
// several sources this way.
func udpFrom(t *testing.T, local, server string) *net.UDPConn {
	t.Helper()
	laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(local), 0))
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(server)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	return c
}

// askUDP sends one Binding request on c and waits up to wait for its
// answer.
func askUDP(c *net.UDPConn, wait time.Duration) bool {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := c.Write(req.Raw); err != nil {
		return false
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		m := &stun.Message{Raw: buf[:n]}
		if m.Decode() == nil && m.TransactionID == req.TransactionID {
			return true
		}
	}
}

// peakRSS reads the process's high-water resident set size, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()

	return readStatusKB(t, pid, "VmHWM:")
}

// readStatusKB reads a kB field of /proc/PID/status, in bytes.
func readStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}

			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc status", field)

	return 0
}

// flood sends datagrams from c as fast as it can until stop closes and
// returns the bytes sent.
func flood(c *net.UDPConn, payload []byte, stop <-chan struct{}) int {
	sent := 0
	for {
		select {
		case <-stop:
			return sent
		default:
		}
		if n, err := c.Write(payload); err == nil {
			sent += n
		}
	}
}

// TestHostile runs stund with its default limits, as the issue's
// acceptance run does, and throws at it what a public STUN server meets:
// a malformed flood, a valid flood from one source, half-open TCP
// connections; then checks it is alive and small, and drains on SIGTERM.
func TestHostile(t *testing.T) {
	scale := hostileScale(t)
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--tcp-idle-timeout", "2s", "--drain-timeout", "3s")
	stunAddr := p.waitLog(t, stunAddrRE)
	base := "http://" + p.waitLog(t, httpAddrRE)

	t.Run("malformed flood, honest client at another source", func(t *testing.T) {
		attacker := udpFrom(t, "127.0.0.1", stunAddr)
		// Honest clients come from many addresses, a few requests each,
		// as WebRTC clients do; one address asking 60 times a second
		// would rightly be rate limited.
		var honest []*net.UDPConn
		for i := range 20 {
			honest = append(honest, udpFrom(t, fmt.Sprintf("127.0.1.%d", i+1), stunAddr))
		}
		garbage := make([]byte, 120)
		for i := range garbage {
			garbage[i] = byte(0xC0 | i) // first two bits set: not STUN
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var sent int
		wg.Go(func() { sent = flood(attacker, garbage, stop) })
		asked, answered := 0, 0
		end := time.Now().Add(scaled(5*time.Second, scale))
		for time.Now().Before(end) {
			asked++
			if askUDP(honest[asked%len(honest)], 500*time.Millisecond) {
				answered++
			} else {
				t.Logf("attempt %d unanswered", asked)
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		ratio := float64(answered) / float64(asked)
		t.Logf("flood of %d bytes; honest client answered %d of %d (%.1f%%)", sent, answered, asked, 100*ratio)
		if ratio < 0.99 {
			t.Errorf("honest client answered %.1f%% during the malformed flood, want at least 99%%", 100*ratio)
		}
	})

	t.Run("valid flood from one source is not amplified", func(t *testing.T) {
		attacker := udpFrom(t, "127.0.0.3", stunAddr)
		_ = attacker.SetReadBuffer(4 << 20)
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw // 20 bytes, the best ratio an attacker gets
		got := make(chan int)
		go func() {
			total := 0
			buf := make([]byte, 1500)
			for {
				_ = attacker.SetReadDeadline(time.Now().Add(time.Second))
				n, err := attacker.Read(buf)
				if err != nil {
					got <- total

					return
				}
				total += n
			}
		}()
		stop := make(chan struct{})
		time.AfterFunc(scaled(3*time.Second, scale), func() { close(stop) })
		sent := flood(attacker, req, stop)
		back := <-got
		t.Logf("sent %d bytes, got %d back", sent, back)
		if back > sent {
			t.Errorf("a valid flood got %d bytes back for %d sent", back, sent)
		}
	})

	t.Run("half-open TCP connections are closed", func(t *testing.T) {
		const conns = 300
		var wg sync.WaitGroup
		closedIn := make(chan time.Duration, conns)
		start := time.Now()
		half := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:10]
		for i := range conns {
			// Three sources of 100: under the default per-source cap, so
			// the idle timeout, not the cap, is what is tested.
			local := fmt.Sprintf("127.0.0.%d", 4+i%3)
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
			c, err := d.Dial("tcp", stunAddr)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			defer c.Close()
			if _, err := c.Write(half); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 64)
				for {
					if _, err := c.Read(buf); err != nil {
						closedIn <- time.Since(start)

						return
					}
				}
			})
		}
		wg.Wait()
		close(closedIn)
		var last time.Duration
		for d := range closedIn {
			last = max(last, d)
		}
		t.Logf("all %d half-open connections closed after %s", conns, last.Round(time.Millisecond))
		if last > 4*time.Second {
			t.Errorf("last half-open connection closed after %s, want within 4s (idle timeout 2s)", last)
		}
	})

	t.Run("alive, answering and small after", func(t *testing.T) {
		if !askUDP(udpFrom(t, "127.0.0.9", stunAddr), 2*time.Second) || !binding(t, "tcp", stunAddr) {
			t.Fatal("not answering after the hostile run")
		}
		rss := peakRSS(t, p.cmd.Process.Pid)
		t.Logf("peak RSS %.1f MiB", float64(rss)/(1<<20))
		if rss > 256<<20 {
			t.Errorf("peak RSS %d MiB, want under 256 MiB", rss>>20)
		}
		waitMetrics(t, base, `reason="not_stun"`, `reason="rate_limited"`, "stund_tcp_connections_open 0")
	})

	t.Run("SIGTERM drains", func(t *testing.T) {
		p.drain(t, base, 3*time.Second, func() bool {
			return askUDP(udpFrom(t, "127.0.0.10", stunAddr), time.Second)
		})
	})
}

// TestIdleAdminConnections holds 300 idle keep-alive connections to the
// admin port of the real binary, as an attacker who can reach it would
// (without a cap or an idle timeout, 20,000 of them took stund to its
// descriptor limit): stund keeps no more than its cap of them open,
// closing the idlest to make room, and /healthz is still answered.
func TestIdleAdminConnections(t *testing.T) {
	const conns = 300
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	httpAddr := p.waitLog(t, httpAddrRE)
	p.waitLog(t, regexp.MustCompile(`stund (\S+) ready`))
	before := openFDs(t, p.cmd.Process.Pid)
	closed := make(chan struct{}, conns)
	for i := range conns {
		c, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: stund\r\n\r\n"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		_ = c.SetReadDeadline(time.Time{})
		go func() {
			_, _ = io.Copy(io.Discard, r) // idle until stund closes it
			closed <- struct{}{}
		}()
	}
	for n := range conns - admin.DefaultMaxConns {
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d idle admin connections closed, want %d: stund keeps them all", n, conns, conns-admin.DefaultMaxConns)
		}
	}
	after := openFDs(t, p.cmd.Process.Pid)
	t.Logf("%d descriptors before, %d with %d idle admin connections", before, after, conns)
	if after > before+admin.DefaultMaxConns {
		t.Errorf("%d descriptors with %d idle admin connections, want at most %d (%d + the cap of %d)",
			after, conns, before+admin.DefaultMaxConns, before, admin.DefaultMaxConns)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for range 3 {
		resp, err := client.Get("http://" + httpAddr + "/healthz") //nolint:noctx // a test on loopback
		if err != nil {
			t.Fatalf("/healthz with %d idle connections: %v", conns, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz with %d idle connections: %d", conns, resp.StatusCode)
		}
	}
}

// openFDs counts the open file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}

	return len(fds)
}
