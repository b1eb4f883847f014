package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeader renders a PROXY header claiming client, for transport tp.
func proxyHeader(t testing.TB, version byte, cmd proxyproto.ProtocolVersionAndCommand, tp proxyproto.AddressFamilyAndProtocol, client string) []byte {
	t.Helper()
	c := netip.MustParseAddrPort(client)
	dst := netip.MustParseAddrPort("198.51.100.7:3478")
	if c.Addr().Is6() {
		dst = netip.MustParseAddrPort("[2001:db8::7]:3478")
	}
	h := &proxyproto.Header{Version: version, Command: cmd, TransportProtocol: tp}
	if tp.IsDatagram() {
		h.SourceAddr, h.DestinationAddr = net.UDPAddrFromAddrPort(c), net.UDPAddrFromAddrPort(dst)
	} else {
		h.SourceAddr, h.DestinationAddr = net.TCPAddrFromAddrPort(c), net.TCPAddrFromAddrPort(dst)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}

	return b
}

func TestUnwrapDatagram(t *testing.T) {
	req := build(t, stun.BindingRequest, stun.Fingerprint)
	v2udp4 := proxyHeader(t, 2, proxyproto.PROXY, proxyproto.UDPv4, "203.0.113.10:5555")
	v2udp6 := proxyHeader(t, 2, proxyproto.PROXY, proxyproto.UDPv6, "[2001:db8::10]:5555")
	local := proxyHeader(t, 2, proxyproto.LOCAL, proxyproto.UNSPEC, "203.0.113.10:5555")
	oversized := bytes.Clone(v2udp4)
	oversized[14], oversized[15] = 0x0f, 0xff // claims 4095 bytes of addresses
	trusted := netip.MustParseAddrPort("10.0.0.5:40000")
	untrusted := netip.MustParseAddrPort("192.0.2.99:40000")
	policy := proxyPolicy{enabled: true, trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}}
	optional := policy
	optional.optional = true

	tests := []struct {
		name   string
		policy proxyPolicy
		data   []byte
		src    netip.AddrPort
		result proxyResult
		client string
	}{
		{"off: a header is just bytes", proxyPolicy{}, append(bytes.Clone(v2udp4), req...), untrusted, proxyNone, "192.0.2.99:40000"},
		{"trusted v2 udp4", policy, append(bytes.Clone(v2udp4), req...), trusted, proxyAccepted, "203.0.113.10:5555"},
		{"trusted v2 udp6", policy, append(bytes.Clone(v2udp6), req...), trusted, proxyAccepted, "[2001:db8::10]:5555"},
		{"trusted LOCAL", policy, append(bytes.Clone(local), req...), trusted, proxyLocal, "10.0.0.5:40000"},
		{"trusted without header", policy, req, trusted, proxyMissing, ""},
		{"trusted without header, optional", optional, req, trusted, proxyNone, "10.0.0.5:40000"},
		{"untrusted with header", policy, append(bytes.Clone(v2udp4), req...), untrusted, proxyUntrusted, ""},
		{"untrusted without header", policy, req, untrusted, proxyNone, "192.0.2.99:40000"},
		{"truncated header", policy, v2udp4[:20], trusted, proxyMalformed, ""},
		{"oversized header", policy, append(oversized, req...), trusted, proxyMalformed, ""},
		{"signature alone", policy, proxyproto.SIGV2, trusted, proxyMalformed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload, client, res := tc.policy.unwrapDatagram(tc.data, tc.src)
			if res != tc.result {
				t.Fatalf("result %s, want %s", res, tc.result)
			}
			if res.refused() {
				if payload != nil {
					t.Error("refused datagram still has a payload")
				}

				return
			}
			if client.String() != tc.client {
				t.Errorf("client %s, want %s", client, tc.client)
			}
			if tc.policy.enabled && !bytes.Equal(payload, req) {
				t.Errorf("payload %x, want the STUN request", payload)
			}
		})
	}
}

// startProxyServer serves on 127.0.0.1 and [::1] trusting only 127.0.0.1.
func startProxyServer(t *testing.T, optional bool) *Server {
	t.Helper()
	hasIPv6Loopback(t)
	s, _ := startServer(t, Config{
		Listen:        []string{"127.0.0.1:0", "[::1]:0"},
		ProxyProtocol: true,
		ProxyTrusted:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		ProxyOptional: optional,
	})

	return s
}

// TestProxyUDP sends PROXY v2 datagrams as a UDP proxy would: the answer
// comes back to the proxy and names the client of the header.
func TestProxyUDP(t *testing.T) {
	s := startProxyServer(t, false)
	v4, v6 := s.Addrs()[0], s.Addrs()[1]
	req := build(t, stun.BindingRequest, stun.Fingerprint)

	// From the trusted proxy: answered about the client in the header.
	for _, client := range []string{"203.0.113.10:5555", "[2001:db8::10]:6666"} {
		tp := proxyproto.UDPv4
		if netip.MustParseAddrPort(client).Addr().Is6() {
			tp = proxyproto.UDPv6
		}
		dgram := append(proxyHeader(t, 2, proxyproto.PROXY, tp, client), req...)
		resp, _ := exchangeUDP(t, v4, dgram, 2*time.Second)
		if resp == nil {
			t.Fatalf("no answer for %s", client)
		}
		assertMapped(t, decode(t, resp), netip.MustParseAddrPort(client))
	}
	waitCounter(t, "accepted", s.metrics.proxy[transportUDP][proxyAccepted], 2)
	waitCounter(t, "client-class requests", s.metrics.requests[transportUDP][familyIPv4][ClassClient], 1)

	// A forged header from an untrusted address is not believed.
	forged := append(proxyHeader(t, 2, proxyproto.PROXY, proxyproto.UDPv6, "[2001:db8::66]:1"), req...)
	if resp, _ := exchangeUDP(t, v6, forged, 300*time.Millisecond); resp != nil {
		t.Fatalf("answered a forged header: %x", resp)
	}
	waitCounter(t, "untrusted", s.metrics.proxy[transportUDP][proxyUntrusted], 1)

	// Plain STUN from the trusted proxy is refused by default.
	if resp, _ := exchangeUDP(t, v4, req, 300*time.Millisecond); resp != nil {
		t.Fatal("answered a trusted source without a header")
	}
	waitCounter(t, "missing", s.metrics.proxy[transportUDP][proxyMissing], 1)

	// Plain STUN from an untrusted client is answered about itself.
	resp, local := exchangeUDP(t, v6, req, 2*time.Second)
	if resp == nil {
		t.Fatal("no answer to a direct client")
	}
	assertMapped(t, decode(t, resp), local)
}

func proxyTCP(t *testing.T, addr netip.AddrPort, prefix []byte, requests int) (*net.TCPConn, []*stun.Message) {
	t.Helper()
	c := dialTCP(t, addr)
	var msgs []*stun.Message
	data := bytes.Clone(prefix)
	for range requests {
		data = append(data, build(t, stun.BindingRequest)...)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	for range requests {
		msgs = append(msgs, readResponse(t, c))
	}

	return c, msgs
}

func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read %d bytes, err %v: want the server to close", n, err)
	}
}

func TestProxyTCP(t *testing.T) {
	s := startProxyServer(t, false)
	v4, v6 := s.Addrs()[0], s.Addrs()[1]
	tests := []struct {
		name   string
		header []byte
		client string
	}{
		{"v2 tcp4", proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.10:5555"), "203.0.113.10:5555"},
		{"v2 tcp6", proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv6, "[2001:db8::10]:5555"), "[2001:db8::10]:5555"},
		{"v1 tcp4", proxyHeader(t, 1, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.11:4444"), "203.0.113.11:4444"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, msgs := proxyTCP(t, v4, tc.header, 3)
			for _, m := range msgs {
				assertMapped(t, m, netip.MustParseAddrPort(tc.client))
			}
		})
	}
	t.Run("LOCAL answers about the proxy", func(t *testing.T) {
		c, msgs := proxyTCP(t, v4, proxyHeader(t, 2, proxyproto.LOCAL, proxyproto.UNSPEC, "203.0.113.10:1"), 1)
		assertMapped(t, msgs[0], netip.MustParseAddrPort(c.LocalAddr().String()))
	})
	t.Run("forged header from untrusted is closed", func(t *testing.T) {
		c := dialTCP(t, v6)
		data := append(proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv6, "[2001:db8::66]:1"), build(t, stun.BindingRequest)...)
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		assertClosed(t, c)
	})
	t.Run("forged v1 header from untrusted is closed", func(t *testing.T) {
		c := dialTCP(t, v6)
		if _, err := c.Write([]byte("PROXY TCP6 2001:db8::66 2001:db8::7 1 3478\r\n")); err != nil {
			t.Fatal(err)
		}
		assertClosed(t, c)
	})
	t.Run("trusted without header is closed", func(t *testing.T) {
		c := dialTCP(t, v4)
		if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
			t.Fatal(err)
		}
		assertClosed(t, c)
	})
	t.Run("untrusted without header is served", func(t *testing.T) {
		c, msgs := proxyTCP(t, v6, nil, 2)
		assertMapped(t, msgs[1], netip.MustParseAddrPort(c.LocalAddr().String()))
	})
	t.Run("truncated header is closed", func(t *testing.T) {
		c := dialTCP(t, v4)
		h := proxyHeader(t, 2, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.10:5555")
		if _, err := c.Write(h[:18]); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		assertClosed(t, c)
	})
	waitCounter(t, "tcp accepted", s.metrics.proxy[transportTCP][proxyAccepted], 3)
	waitCounter(t, "tcp untrusted", s.metrics.proxy[transportTCP][proxyUntrusted], 2)
	waitCounter(t, "tcp missing", s.metrics.proxy[transportTCP][proxyMissing], 1)
	waitCounter(t, "tcp malformed", s.metrics.proxy[transportTCP][proxyMalformed], 1)
}

// TestProxyV1InPieces checks that a PROXY v1 header is accepted however
// TCP cuts it into segments, as long as it completes: a header split in
// two segments used to be refused as malformed.
func TestProxyV1InPieces(t *testing.T) {
	policy := proxyPolicy{enabled: true, trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	lb := netip.MustParseAddrPort("10.0.0.1:40000")
	req := build(t, stun.BindingRequest)
	for _, client := range []string{"203.0.113.10:5555", "[2001:db8::10]:5555"} {
		tp := proxyproto.TCPv4
		if netip.MustParseAddrPort(client).Addr().Is6() {
			tp = proxyproto.TCPv6
		}
		hdr := proxyHeader(t, 1, proxyproto.PROXY, tp, client)
		for _, chunk := range []int{1, 3, 7, 20, len(hdr) / 2, len(hdr) - 1, len(hdr), len(hdr) + len(req)} {
			t.Run(fmt.Sprintf("%s in %d-byte segments", client, chunk), func(t *testing.T) {
				r := bufio.NewReaderSize(&chunkReader{data: append(bytes.Clone(hdr), req...), n: chunk}, tcpReadBuffer)
				got, res := policy.readStreamHeader(r, lb)
				if res != proxyAccepted || got.String() != client {
					t.Fatalf("result %s, client %s; want accepted, %s", res, got, client)
				}
				rest, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(rest, req) {
					t.Errorf("after the header: %x (%v), want the request %x", rest, err, req)
				}
			})
		}
	}
	t.Run("answered about the client over a stream", func(t *testing.T) {
		s, err := New(Config{ProxyProtocol: true, ProxyTrusted: policy.trusted})
		if err != nil {
			t.Fatal(err)
		}
		data := append(proxyHeader(t, 1, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.10:5555"), req...)
		p := &pipeStream{r: &chunkReader{data: data, n: 5}}
		s.serveStream(p, lb)
		assertMapped(t, decode(t, p.w.Bytes()), netip.MustParseAddrPort("203.0.113.10:5555"))
	})
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"no line end within 107 bytes", append([]byte("PROXY TCP4 "), bytes.Repeat([]byte("1"), 200)...)},
		{"cut before its end", []byte("PROXY TCP4 203.0.113.10 198.51")},
		{"line end without CR", []byte("PROXY TCP4 203.0.113.10 198.51.100.7 5555 3478\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(&chunkReader{data: tc.data, n: 4}, tcpReadBuffer)
			if _, res := policy.readStreamHeader(r, lb); res != proxyMalformed {
				t.Errorf("result %s, want malformed", res)
			}
		})
	}
}

func TestProxyOptional(t *testing.T) {
	s := startProxyServer(t, true)
	req := build(t, stun.BindingRequest)
	resp, local := exchangeUDP(t, s.Addrs()[0], req, 2*time.Second)
	if resp == nil {
		t.Fatal("optional: trusted source without header not answered")
	}
	assertMapped(t, decode(t, resp), local)
	c, msgs := proxyTCP(t, s.Addrs()[0], nil, 1)
	assertMapped(t, msgs[0], netip.MustParseAddrPort(c.LocalAddr().String()))
}

func TestProxyNeedsTrusted(t *testing.T) {
	if _, err := New(Config{ProxyProtocol: true}); !errors.Is(err, ErrProxyNoTrusted) {
		t.Errorf("New without trusted CIDRs: %v", err)
	}
}

// TestProxyTrustedMapped checks that New refuses an IPv4-mapped IPv6
// trusted prefix: sources are compared unmapped, so it would never match
// and the load balancer's headers would all be refused.
func TestProxyTrustedMapped(t *testing.T) {
	for _, p := range []string{"::ffff:10.0.0.0/104", "::ffff:10.0.0.1/128"} {
		_, err := New(Config{ProxyProtocol: true, ProxyTrusted: []netip.Prefix{netip.MustParsePrefix(p)}})
		if !errors.Is(err, ErrMappedPrefix) {
			t.Errorf("New trusting %s: %v, want %v", p, err, ErrMappedPrefix)
		}
	}
}

// FuzzProxyDatagram feeds arbitrary datagrams from a trusted proxy. The
// server must not panic, and what it passes on must be a suffix of the
// datagram, answered about an address it read from a valid header.
func FuzzProxyDatagram(f *testing.F) {
	req := build(f, stun.BindingRequest)
	f.Add(append(proxyHeader(f, 2, proxyproto.PROXY, proxyproto.UDPv4, "203.0.113.10:5555"), req...))
	f.Add(append(proxyHeader(f, 2, proxyproto.PROXY, proxyproto.UDPv6, "[2001:db8::1]:1"), req...))
	f.Add(proxyHeader(f, 2, proxyproto.PROXY, proxyproto.UDPv4, "203.0.113.10:5555")[:17])
	f.Add(append(proxyHeader(f, 1, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.10:5555"), req...))
	p := proxyPolicy{enabled: true, trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	src := netip.MustParseAddrPort("10.0.0.1:1")
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, client, res := p.unwrapDatagram(bytes.Clone(b), src)
		if res.refused() {
			return
		}
		if !bytes.HasSuffix(b, payload) {
			t.Fatal("payload is not the end of the datagram")
		}
		if res == proxyAccepted && !client.IsValid() {
			t.Fatal("accepted header without a client address")
		}
		sc := newScratch()
		h := handler{}
		h.handle(sc, payload, client)
	})
}

// FuzzProxyStream feeds arbitrary connection starts from a trusted proxy.
func FuzzProxyStream(f *testing.F) {
	req := build(f, stun.BindingRequest)
	f.Add(append(proxyHeader(f, 2, proxyproto.PROXY, proxyproto.TCPv4, "203.0.113.10:5555"), req...))
	f.Add(append(proxyHeader(f, 1, proxyproto.PROXY, proxyproto.TCPv6, "[2001:db8::1]:1"), req...))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	p := proxyPolicy{enabled: true, trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	src := netip.MustParseAddrPort("10.0.0.1:1")
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), tcpReadBuffer)
		client, res := p.readStreamHeader(r, src)
		if res == proxyAccepted && !client.IsValid() {
			t.Fatal("accepted header without a client address")
		}
	})
}
