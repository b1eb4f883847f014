package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startServer runs a server on the given loopback addresses with port 0
// and stops it when the test ends.
func startServer(t *testing.T, cfg Config) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, "test")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	if cfg.Software == "" {
		cfg.Software = "stund-test"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	return s, reg
}

// waitCounter waits up to ten seconds for c to reach want: the server
// counts a message right after answering it.
func waitCounter(t *testing.T, name string, c prometheus.Collector, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := testutil.ToFloat64(c)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s = %v, want %v", name, got, want)

			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAtLeast waits up to ten seconds for c to reach at least want.
func waitAtLeast(t *testing.T, name string, c prometheus.Collector, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(c) < want {
		if time.Now().After(deadline) {
			t.Errorf("%s = %v, want at least %v", name, testutil.ToFloat64(c), want)

			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasIPv6Loopback skips an IPv6 test on a machine without ::1, except in
// CI, whose machines have it: there a missing ::1 must not hide the tests.
func hasIPv6Loopback(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no IPv6 loopback: %v", err)
		}
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	_ = c.Close()
}

// exchangeUDP sends b from a fresh socket and returns the answer, or nil
// when none came within wait.
func exchangeUDP(t *testing.T, server netip.AddrPort, b []byte, wait time.Duration) ([]byte, netip.AddrPort) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	local := c.LocalAddr().(*net.UDPAddr).AddrPort() //nolint:forcetypeassert // a UDPConn's address
	if err != nil {
		return nil, local
	}

	return buf[:n], local
}

func TestUDPBinding(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		family string
	}{
		{"ipv4", "127.0.0.1:0", "ipv4"},
		{"ipv6", "[::1]:0", "ipv6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.family == "ipv6" {
				hasIPv6Loopback(t)
			}
			s, reg := startServer(t, Config{Listen: []string{tc.listen}})
			req := build(t, stun.BindingRequest, stun.Fingerprint)
			resp, local := exchangeUDP(t, s.Addrs()[0], req, 2*time.Second)
			if resp == nil {
				t.Fatal("no response")
			}
			m := decode(t, resp)
			assertMapped(t, m, local)
			waitCounter(t, "stund_binding_requests_total", s.metrics.requests[transportUDP][familyOf(local.Addr())][ClassPrivate], 1)
			if n, err := testutil.GatherAndCount(reg, "stund_binding_requests_total"); err != nil || n == 0 {
				t.Errorf("metric not exported: %d %v", n, err)
			}
		})
	}
}

func TestUDPDiscardsAreSilentAndCounted(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}})
	ind := build(t, stun.NewType(stun.MethodBinding, stun.ClassIndication))
	if resp, _ := exchangeUDP(t, s.Addrs()[0], ind, 300*time.Millisecond); resp != nil {
		t.Fatalf("indication answered with %x", resp)
	}
	garbage := []byte("GET / HTTP/1.1\r\nHost: stund\r\n\r\n")
	if resp, _ := exchangeUDP(t, s.Addrs()[0], garbage, 300*time.Millisecond); resp != nil {
		t.Fatalf("garbage answered with %x", resp)
	}
	waitCounter(t, "indication discards", s.metrics.dropped[transportUDP][familyIPv4][reasonIndication], 1)
	waitCounter(t, "not_stun discards", s.metrics.dropped[transportUDP][familyIPv4][reasonNotSTUN], 1)
	// The server is still answering.
	if resp, _ := exchangeUDP(t, s.Addrs()[0], build(t, stun.BindingRequest), 2*time.Second); resp == nil {
		t.Fatal("no answer after discards")
	}
}

// readResponse reads one STUN message from a TCP stream.
func readResponse(t *testing.T, c net.Conn) *stun.Message {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("read response header: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read response body: %v", err)
	}

	return decode(t, append(hdr, body...))
}

func dialTCP(t *testing.T, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	return c
}

func TestTCPFraming(t *testing.T) {
	listens := map[string]string{"ipv4": "127.0.0.1:0", "ipv6": "[::1]:0"}
	for fam, listen := range listens {
		t.Run(fam, func(t *testing.T) {
			if fam == "ipv6" {
				hasIPv6Loopback(t)
			}
			s, _ := startServer(t, Config{Listen: []string{listen}})
			c := dialTCP(t, s.Addrs()[0])
			local := c.LocalAddr().(*net.TCPAddr).AddrPort() //nolint:forcetypeassert // a TCPConn's address

			// Split: one request in three segments, with pauses.
			req := build(t, stun.BindingRequest, stun.NewSoftware("split"), stun.Fingerprint)
			for _, part := range [][]byte{req[:3], req[3:25], req[25:]} {
				if _, err := c.Write(part); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			m := readResponse(t, c)
			if m.TransactionID != [12]byte(req[8:20]) {
				t.Error("split request: transaction ID differs")
			}
			assertMapped(t, m, local)

			// Coalesced: three requests in one write, an indication among
			// them that must be skipped without breaking the stream.
			a := build(t, stun.BindingRequest)
			ind := build(t, stun.NewType(stun.MethodBinding, stun.ClassIndication))
			b := build(t, stun.BindingRequest, stun.Fingerprint)
			if _, err := c.Write(bytes.Join([][]byte{a, ind, b}, nil)); err != nil {
				t.Fatal(err)
			}
			for _, want := range [][]byte{a, b} {
				m := readResponse(t, c)
				if m.TransactionID != [12]byte(want[8:20]) {
					t.Errorf("coalesced: got transaction %x, want %x", m.TransactionID, want[8:20])
				}
			}

			// The connection stays open for more.
			if _, err := c.Write(a); err != nil {
				t.Fatal(err)
			}
			readResponse(t, c)
		})
	}
}

func TestTCPBrokenFramingCloses(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"not stun", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"length not multiple of 4", func() []byte {
			b := build(t, stun.BindingRequest)
			binary.BigEndian.PutUint16(b[2:4], 3)

			return b
		}()},
		{"over the size limit", func() []byte {
			b := build(t, stun.BindingRequest)
			binary.BigEndian.PutUint16(b[2:4], 4096)

			return b
		}()},
	}
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, s.Addrs()[0])
			if _, err := c.Write(tc.data); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(make([]byte, 100))
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read %d bytes, err %v; want the server to close", n, err)
			}
		})
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 200 * time.Millisecond})
	c := dialTCP(t, s.Addrs()[0])
	// Half a header, then nothing: the slowloris shape.
	if _, err := c.Write(build(t, stun.BindingRequest)[:10]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatal("read data from an idle connection")
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("closed after %s, want about 200ms", waited)
	}
	waitCounter(t, "stund_tcp_connections_open", s.metrics.tcpOpen, 0)
}

func TestPortZeroSharesUDPAndTCP(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0", "127.0.0.1:0"}})
	addrs := s.Addrs()
	if len(addrs) != 2 || addrs[0].Port() == 0 || addrs[0] == addrs[1] {
		t.Fatalf("addrs = %v", addrs)
	}
	for _, a := range addrs {
		if resp, _ := exchangeUDP(t, a, build(t, stun.BindingRequest), 2*time.Second); resp == nil {
			t.Errorf("no UDP answer on %s", a)
		}
		c := dialTCP(t, a)
		if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
			t.Fatal(err)
		}
		readResponse(t, c)
	}
}

func TestStartErrors(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()

	tests := []struct {
		name   string
		listen string
		want   string
	}{
		{"udp port in use", busy.LocalAddr().String(), "address already in use"},
		{"tcp port in use", busyTCP.Addr().String(), "address already in use"},
		{"address not on this host", "192.0.2.1:0", "cannot assign requested address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Listen: []string{"127.0.0.1:0", tc.listen}})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start(context.Background())
			if err == nil {
				_ = s.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "listen ") != 1 {
				t.Errorf("error %q, want it to name the listen once and say %q", err, tc.want)
			}
			// What was opened before the failure is closed again.
			if err := s.Close(); err != nil {
				t.Errorf("close after failed start: %v", err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no port", Config{Listen: []string{"127.0.0.1"}}, ErrBadAddress},
		{"bad port", Config{Listen: []string{"127.0.0.1:99999"}}, ErrBadAddress},
		{"software too long", Config{Software: strings.Repeat("x", 128)}, ErrSoftwareTooLong},
		{"negative idle", Config{TCPIdleTimeout: -time.Second}, ErrBadTimeout},
		{"tiny max size", Config{MaxMessageSize: 4}, ErrBadMaxMessageSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, tc.want) {
				t.Errorf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestCloseWithOpenConnections checks that Close returns with clients
// still connected, and that their connections end.
func TestCloseWithOpenConnections(t *testing.T) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var conns []*net.TCPConn
	for range 5 {
		c := dialTCP(t, s.Addrs()[0])
		if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
			t.Fatal(err)
		}
		readResponse(t, c)
		conns = append(conns, c)
	}
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with open connections")
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection still open after Close: %v", err)
		}
	}
}

// TestManyUDPSockets serves one port with several SO_REUSEPORT sockets:
// every client, whichever socket the kernel hands it to, is answered with
// its own address, and the counters add up across workers.
func TestManyUDPSockets(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 4})
	if got := len(s.udp); got != 4 {
		t.Fatalf("%d UDP sockets, want 4", got)
	}
	const clients = 40
	for range clients {
		req := build(t, stun.BindingRequest, stun.Fingerprint)
		resp, local := exchangeUDP(t, s.Addrs()[0], req, 2*time.Second)
		if resp == nil {
			t.Fatal("no response")
		}
		assertMapped(t, decode(t, resp), local)
	}
	waitCounter(t, "stund_binding_requests_total", s.metrics.requests[transportUDP][familyIPv4][ClassPrivate], clients)
	waitCounter(t, "stund_responses_total", s.metrics.success[transportUDP][familyIPv4], clients)
}

// TestUDPBatch sends a burst far larger than one recvmmsg batch from one
// socket and checks that every request gets its own answer.
func TestUDPBatch(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 1})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(1 << 20)
	const burst = 300
	want := map[[12]byte]bool{}
	for range burst {
		req := build(t, stun.BindingRequest)
		want[[12]byte(req[8:20])] = true
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort() //nolint:forcetypeassert // a UDPConn's address
	buf := make([]byte, 1500)
	got := 0
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for got < burst {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		m := decode(t, buf[:n])
		if !want[m.TransactionID] {
			t.Fatalf("answer to an unknown or repeated transaction %x", m.TransactionID)
		}
		delete(want, m.TransactionID)
		assertMapped(t, m, local)
		got++
	}
	// Loopback may drop under a burst only if buffers overflow; 300 small
	// datagrams fit in the default buffers.
	if got != burst {
		t.Errorf("%d of %d answered", got, burst)
	}
}
