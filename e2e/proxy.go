//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The PROXY protocol lab (issue 9) is the proxy load balancer of scenario 4
// with two more ports on the VIP:
//
//	VIP:3478  the lab's haproxy (TCP) and nginx (UDP): a proxy that says nothing
//	VIP:3479  haproxy with send-proxy-v2 (TCP) and the lab's own PROXY v2
//	          UDP relay: a proxy that tells the server who the client is
//	VIP:3480  plain DNAT to the node: the way anyone on the internet reaches
//	          stund directly, from an address it must not trust
//
// All three lead to the NodePort and on to stund in the pod; the proxies
// connect from the LB's inside address, the one stund is told to trust.
const (
	proxyV2Port = 3479
	directPort  = 3480
)

// proxyTrust are stund's flags that believe PROXY headers from the LB's
// inside addresses, and from nowhere else.
func proxyTrust() []string {
	return []string{
		"--proxy-protocol",
		"--proxy-trusted-cidr", ipv4.LBInside + "/32",
		"--proxy-trusted-cidr", ipv6.LBInside + "/128",
	}
}

// forgedClient is the address an attacker claims in a forged PROXY header:
// another host on the internet, neither the attacker nor the LB.
func forgedClient(f family) string {
	if f.Name == "ipv4" {
		return "203.0.113.66"
	}
	return "2001:db8:c::66"
}

// ProxyLab is the PROXY protocol lab: a proxy-LB topology with its PROXY
// v2 listeners and a direct port.
type ProxyLab struct {
	*Topology
	Relays map[string]*UDPProxyV2 // by family name
}

// NewProxyLab builds the lab described above. Servers are started
// separately (StartStundWith).
func NewProxyLab(t testing.TB) *ProxyLab {
	t.Helper()
	top := NewTopology(t, TopologyOptions{Mode: ProxyLB})
	pl := &ProxyLab{Topology: top, Relays: map[string]*UDPProxyV2{}}

	var direct []string
	for _, f := range families {
		direct = append(direct, fmt.Sprintf("%s daddr %s meta l4proto { tcp, udp } th dport %d dnat %s to %s",
			f.NFT, f.VIP, directPort, f.NFT, hostPort(f.Node, nodePort)))
	}
	top.LB.NFT(natTable("direct", direct, nil))

	hp := top.LB.Start("haproxy", "-db", "-f", haproxyV2Config(t))
	for _, f := range families {
		pl.Relays[f.Name] = StartUDPProxyV2(t, top.LB,
			netip.MustParseAddrPort(hostPort(f.VIP, proxyV2Port)),
			netip.MustParseAddrPort(hostPort(f.Node, nodePort)))
	}
	waitListening(t, top.LB, hp, "tcp", proxyV2Port)
	return pl
}

// haproxyV2Config writes a haproxy configuration that listens on the VIP's
// proxyV2Port and sends a PROXY v2 header on every connection to the node.
func haproxyV2Config(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(`global
	maxconn 100
defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
`)
	for _, f := range families {
		fmt.Fprintf(&b, `frontend v2stun%[1]s
	bind %[2]s
	default_backend v2node%[1]s
backend v2node%[1]s
	server node %[3]s send-proxy-v2
`, f.Short, hostPort(f.VIP, proxyV2Port), hostPort(f.Node, nodePort))
	}
	path := filepath.Join(t.TempDir(), "haproxy-v2.cfg")
	writeFile(t, path, b.String())
	return path
}

// StartStundWith runs stund in the pod with extra flags, like StartStund,
// and waits until it is ready.
func (top *Topology) StartStundWith(t testing.TB, extra ...string) *Stund {
	t.Helper()
	args := append([]string{"--log-level", "debug", "--drain-timeout", "100ms"}, extra...)
	p := top.Pod.Start(binPath(t, "stund"), args...)
	s := &Stund{Proc: p, host: top.Pod, base: "http://" + hostPort(ipv4.Pod, metricsPort)}
	waitListening(t, top.Pod, p, "udp", stunPort)
	waitListening(t, top.Pod, p, "tcp", stunPort)
	waitReady(t, s)
	return s
}

// A proxyKey selects stund_proxy_headers_total's series.
type proxyKey struct{ Transport, Result string }

// ProxyHeaders scrapes stund's stund_proxy_headers_total by label set.
func (s *Stund) ProxyHeaders(t testing.TB) map[proxyKey]float64 {
	t.Helper()
	counts := map[proxyKey]float64{}
	s.scrape(t, "stund_proxy_headers_total", func(labels map[string]string, v float64) {
		counts[proxyKey{labels["transport"], labels["result"]}] += v
	})

	return counts
}

// expectProxyHeaders checks how much stund_proxy_headers_total grew since
// before for each transport and result: at least min, and exactly min when
// exact is set; every result not named must not have grown at all.
func (s *Stund) expectProxyHeaders(t testing.TB, before map[proxyKey]float64, transport string, exact bool, want map[string]float64) {
	t.Helper()
	after := s.ProxyHeaders(t)
	for _, result := range []string{"accepted", "local", "untrusted", "missing", "malformed"} {
		k := proxyKey{transport, result}
		got, min := after[k]-before[k], want[result]
		exactly := exact || min == 0
		if got < min || exactly && got != min {
			atLeast := "at least "
			if exactly {
				atLeast = ""
			}
			t.Errorf("stund_proxy_headers_total{transport=%q,result=%q} grew by %v, want %s%v",
				transport, result, got, atLeast, min)
		}
	}
}

// proxyV2Header encodes a PROXY protocol v2 header (PROXY command, TCP or
// UDP over IPv4 or IPv6) for a connection or datagram from src to dst. It
// is written here from the specification rather than taken from the
// library stund parses with, so that the two check each other.
func proxyV2Header(transport string, src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21) // version 2, PROXY
	fam, proto := byte(0x10), byte(0x01)
	if src.Addr().Is6() {
		fam = 0x20
	}
	if transport == "udp" {
		proto = 0x02
	}
	b = append(b, fam|proto)
	var block []byte
	if fam == 0x10 {
		s, d := src.Addr().As4(), dst.Addr().As4()
		block = append(append(block, s[:]...), d[:]...)
	} else {
		s, d := src.Addr().As16(), dst.Addr().As16()
		block = append(append(block, s[:]...), d[:]...)
	}
	block = binary.BigEndian.AppendUint16(block, src.Port())
	block = binary.BigEndian.AppendUint16(block, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(len(block)))
	return append(b, block...)
}

// proxyV1Header is the text form, for TCP only.
func proxyV1Header(src, dst netip.AddrPort) []byte {
	fam := "TCP4"
	if src.Addr().Is6() {
		fam = "TCP6"
	}
	return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, src.Addr(), dst.Addr(), src.Port(), dst.Port())
}

// bindingRequest returns a Binding request with a random transaction ID.
func bindingRequest() (req, txID []byte) {
	req = make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], 0x0001)
	binary.BigEndian.PutUint32(req[4:], magicCookie)
	if _, err := rand.Read(req[8:20]); err != nil {
		panic(err)
	}
	return req, req[8:20]
}

// forgedTCP opens a TCP connection from h to server, sends header and a
// Binding request on it and waits up to wait for whatever comes back. It
// returns the bytes received and how the read ended: io.EOF or a reset when
// the server closed the connection, a timeout when it kept it open.
func forgedTCP(h *Host, server string, header []byte, wait time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := h.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	req, _ := bindingRequest()
	if _, err := conn.Write(append(append([]byte{}, header...), req...)); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	got, err := io.ReadAll(conn)
	if err == nil {
		err = io.EOF
	}
	return got, err
}

// closedByPeer tells whether err is how a read ends on a connection the
// peer closed (FIN or RST).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// forgedUDP sends header and a Binding request from h to server as one
// datagram, tries times, and returns every datagram that came back within
// wait of each try.
func forgedUDP(h *Host, server string, header []byte, tries int, wait time.Duration) ([][]byte, error) {
	conn, err := h.DialContext(context.Background(), "udp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req, _ := bindingRequest()
	msg := append(append([]byte{}, header...), req...)
	var answers [][]byte
	buf := make([]byte, 1500)
	for range tries {
		if _, err := conn.Write(msg); err != nil {
			return answers, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return answers, err
			}
			answers = append(answers, append([]byte{}, buf[:n]...))
		}
	}
	return answers, nil
}

// UDPProxyV2 is a UDP proxy load balancer that speaks PROXY protocol v2,
// as Cloudflare Spectrum does: every datagram from a client goes to the
// upstream with a v2 header naming the client, from an upstream socket of
// its own per client, so that the answers find their way back. It runs as
// goroutines of the test binary whose sockets live in the LB's namespace.
type UDPProxyV2 struct {
	host     *Host
	listen   netip.AddrPort
	upstream netip.AddrPort
	ln       *net.UDPConn

	mu       sync.Mutex
	sessions map[netip.AddrPort]*net.UDPConn
	closed   bool
	wg       sync.WaitGroup

	// Forwarded and Returned count datagrams relayed each way.
	Forwarded, Returned atomic.Int64
}

// StartUDPProxyV2 starts the relay on listen in h, forwarding to upstream,
// and stops it when the test ends.
func StartUDPProxyV2(t testing.TB, h *Host, listen, upstream netip.AddrPort) *UDPProxyV2 {
	t.Helper()
	p := &UDPProxyV2{host: h, listen: listen, upstream: upstream, sessions: map[netip.AddrPort]*net.UDPConn{}}
	err := h.inNamespace(func() error {
		var err error
		p.ln, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(listen))
		return err
	})
	if err != nil {
		t.Fatalf("%s: UDP PROXY v2 relay: listen %s: %v", h.Role, listen, err)
	}
	p.wg.Add(1)
	go p.serve(t)
	t.Cleanup(p.close)
	return p
}

func (p *UDPProxyV2) serve(t testing.TB) {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, client, err := p.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		up, err := p.session(client)
		if err != nil {
			t.Logf("UDP PROXY v2 relay: %v", err)
			continue
		}
		msg := append(proxyV2Header("udp", client, p.listen), buf[:n]...)
		if _, err := up.Write(msg); err == nil {
			p.Forwarded.Add(1)
		}
	}
}

// session returns the client's upstream socket, opening it (in the LB's
// namespace) and the goroutine that relays its answers on first use.
func (p *UDPProxyV2) session(client netip.AddrPort) (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, net.ErrClosed
	}
	if up := p.sessions[client]; up != nil {
		return up, nil
	}
	var up *net.UDPConn
	err := p.host.inNamespace(func() error {
		var err error
		up, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.upstream))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open upstream socket for %s: %w", client, err)
	}
	p.sessions[client] = up
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ICMP port unreachable from an earlier datagram
			}
			if _, err := p.ln.WriteToUDPAddrPort(buf[:n], client); err == nil {
				p.Returned.Add(1)
			}
		}
	}()
	return up, nil
}

func (p *UDPProxyV2) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for _, up := range p.sessions {
		up.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
