package server

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	proxyproto "github.com/pires/go-proxyproto"
)

// TestProxyTCPCapPerClient sends connections through a trusted PROXY
// protocol sender: the per-source cap counts the clients their headers
// name (IPv6 ones by /64), never the sender itself.
func TestProxyTCPCapPerClient(t *testing.T) {
	const limit = 3
	s, _ := startServer(t, Config{
		Listen:               []string{"127.0.0.1:0"},
		ProxyProtocol:        true,
		ProxyTrusted:         []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		MaxTCPConnsPerSource: limit,
		RateLimit:            RateLimit{Exempt: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	})
	addr := s.Addrs()[0]
	v4 := func(client string) []byte { return proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv4, client) }
	v6 := func(client string) []byte { return proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv6, client) }
	tests := []struct {
		name     string
		headers  func(i int) []byte
		conns    int
		answered int
	}{
		// 150 connections from the one trusted sender, 50 times its cap,
		// each naming its own client: all answered.
		{"a client each", func(i int) []byte {
			return v4(netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5000).String())
		}, 150, 150},
		{"one client", func(int) []byte { return v4("192.0.2.7:5000") }, 2 * limit, limit},
		{"one IPv6 /64", func(i int) []byte {
			return v6(netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 7, 0, 0, 0, 0, 0, 0, 0, byte(i + 1)}), 5000).String())
		}, 2 * limit, limit},
		{"an exempt client", func(int) []byte { return v4("198.51.100.9:5000") }, 2 * limit, 2 * limit},
		{"LOCAL: the sender itself", func(int) []byte {
			return proxyHeader(t, 2, proxyproto.LOCAL, proxyproto.UNSPEC, "127.0.0.1:1")
		}, 2 * limit, 2 * limit},
	}
	refused := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := 0
			for i := range tc.conns {
				if proxiedAnswered(t, addr, tc.headers(i)) {
					got++
				}
			}
			if got != tc.answered {
				t.Errorf("%d of %d connections answered, want %d", got, tc.conns, tc.answered)
			}
			refused += tc.conns - tc.answered
		})
	}
	waitCounter(t, "stund_tcp_rejected_total{reason=per_source}", s.metrics.tcpRejected[rejectPerSource], float64(refused))
}

// proxiedAnswered opens a connection to addr, sends header and a Binding
// request and reports whether an answer came back; a reset or a close is
// a refusal. The connection stays open until the test ends.
func proxiedAnswered(t *testing.T, addr netip.AddrPort, header []byte) bool {
	t.Helper()
	c := dialTCP(t, addr)
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(append(bytes.Clone(header), build(t, stun.BindingRequest)...)); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 200))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("tcp %s: neither answered nor refused within 5s", addr)
	}

	return err == nil && n > 0
}

// TestTCPCapIPv6Prefix checks the per-source cap at accept on IPv6
// sources: all of ::1's /64 is one source by default, and with a /128
// prefix ::1 is on its own.
func TestTCPCapIPv6Prefix(t *testing.T) {
	hasIPv6Loopback(t)
	for _, prefix := range []int{64, 128} {
		s, _ := startServer(t, Config{Listen: []string{"[::1]:0"}, MaxTCPConnsPerSource: 2, RateLimit: RateLimit{IPv6Prefix: prefix}})
		s.mu.Lock()
		s.perSrc[netip.MustParseAddr("::")] = 2 // the rest of ::/64 is at its cap
		s.mu.Unlock()
		got := tcpAnswered(t, s.Addrs()[0])
		if want := prefix == 128; got != want {
			t.Errorf("/%d: a connection from ::1 with ::/64 at its cap answered: %v, want %v", prefix, got, want)
		}
	}
}
