//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The IPv6 /64 lab: an attacker that owns a routed /64 and sends from as
// many of its addresses as it likes, and stund across one link.
const (
	v6LinkServer   = "2001:db8:64::1"
	v6LinkAttacker = "2001:db8:64::2"
	v6UDPNet       = "2001:db8:a::/64" // the attacker's UDP sources
	v6TCPNet       = "2001:db8:b::/64" // and its TCP ones, a budget apart
	v6StunPort     = 3478
	v6MetricsAddr  = "127.0.0.1:9478"
)

// TestIPv6PrefixLimits shows that stund limits an IPv6 attacker per /64,
// however many of its addresses it sends from: 2,000 UDP requests from
// 2,000 addresses of one /64 get at most the burst plus the rate for the
// time they took, and 150 TCP connections from 150 addresses of one /64
// are capped at the per-source limit.
func TestIPv6PrefixLimits(t *testing.T) {
	lab := NewLab(t)
	attacker := lab.Host("v6attacker")
	server := lab.Host("v6server")
	lab.Connect(attacker.At(v6LinkAttacker+"/64"), server.At(v6LinkServer+"/64"))
	for _, prefix := range []string{v6UDPNet, v6TCPNet} {
		// Every address of the prefix is the attacker's (AnyIP), and
		// its sockets bind to any of them with IPV6_FREEBIND.
		attacker.IP("-6", "route", "add", "local", prefix, "dev", "lo")
		server.Route(prefix, v6LinkAttacker)
	}
	target := netip.AddrPortFrom(netip.MustParseAddr(v6LinkServer), v6StunPort)

	t.Run("udp", func(t *testing.T) {
		const (
			requests = 2000
			rate     = 20
			burst    = 100
		)
		s := startV6Stund(t, server, "--rate-limit", strconv.Itoa(rate), "--rate-limit-burst", strconv.Itoa(burst))
		conns := make([]*net.UDPConn, 0, requests)
		err := attacker.inNamespace(func() error {
			lc := net.ListenConfig{Control: freebind}
			for i := range requests {
				pc, err := lc.ListenPacket(context.Background(), "udp6", netip.AddrPortFrom(addrIn(v6UDPNet, i+1), 0).String())
				if err != nil {
					return err
				}
				conns = append(conns, pc.(*net.UDPConn))
			}
			return nil
		})
		t.Cleanup(func() {
			for _, c := range conns {
				c.Close()
			}
		})
		if err != nil {
			t.Fatalf("bind %d sources in %s: %v", requests, v6UDPNet, err)
		}
		// One request from the link address first, outside the /64: the
		// neighbours are known both ways before the flood.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := stunBinding(ctx, attacker, "udp", target.String()); err != nil {
			t.Fatalf("no answer from the link address: %v", err)
		}
		counted := map[string]string{"transport": "udp", "family": "ipv6"}
		before := metricSum(t, s, "stund_binding_requests_total", counted)
		// In batches, each one counted before the next is sent, so that
		// no socket buffer overflows on a loaded machine: every request
		// reaches stund, and every request counted is an answer sent.
		const batch = 100
		txIDs := make([][]byte, requests)
		start := time.Now()
		for i, c := range conns {
			req, txID := bindingRequest()
			txIDs[i] = txID
			if _, err := c.WriteToUDPAddrPort(req, target); err != nil {
				t.Fatalf("send from %s: %v", c.LocalAddr(), err)
			}
			if (i+1)%batch == 0 {
				waitMetric(t, s, "stund_binding_requests_total", counted, before+float64(i+1))
			}
		}
		// stund took them all within window: the span its bucket
		// refilled over.
		window := time.Since(start)
		// The answers are all sent: each socket has its answer, or gets
		// none. They are read at once, since a read on a socket whose
		// deadline has passed does not look at what is there.
		answers := make([][]byte, requests)
		deadline := time.Now().Add(time.Second)
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				buf := make([]byte, 1500)
				_ = c.SetReadDeadline(deadline)
				if n, err := c.Read(buf); err == nil {
					answers[i] = buf[:n]
				}
			})
		}
		wg.Wait()
		answered := 0
		for i, a := range answers {
			if a == nil {
				continue
			}
			mapped, err := parseXORMapped(a, txIDs[i])
			if err != nil {
				t.Fatalf("answer to %s: %v", conns[i].LocalAddr(), err)
			}
			if want := conns[i].LocalAddr().(*net.UDPAddr).AddrPort(); mapped != want {
				t.Errorf("answer to %s says %s", want, mapped)
			}
			answered++
		}
		// Over the window the /64's bucket earns rate a second after
		// its burst; one more for a token earned part-way.
		most := burst + int(rate*window.Seconds()) + 1
		t.Logf("%d requests from %d addresses of %s, all counted within %s: %d answered (at most %d allowed)",
			requests, requests, v6UDPNet, window, answered, most)
		if answered > most {
			t.Errorf("%d of %d requests from one /64 answered, want at most %d (burst %d + %d/s for %s)", answered, requests, most, burst, rate, window)
		}
		if answered < burst {
			t.Errorf("%d answered, want at least the burst of %d: is stund reachable?", answered, burst)
		}
		waitMetric(t, s, "stund_discarded_total", map[string]string{"transport": "udp", "family": "ipv6", "reason": "rate_limited"}, float64(requests-answered))
	})

	t.Run("tcp", func(t *testing.T) {
		const (
			conns     = 150
			perSource = 100
		)
		// No rate limit: only the connection cap decides.
		s := startV6Stund(t, server, "--rate-limit", "0", "--max-tcp-conns-per-source", strconv.Itoa(perSource))
		answered, refused := 0, 0
		var open []net.Conn
		t.Cleanup(func() {
			for _, c := range open {
				c.Close()
			}
		})
		err := attacker.inNamespace(func() error {
			for i := range conns {
				d := net.Dialer{
					LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(addrIn(v6TCPNet, i+1), 0)),
					Control:   freebind,
					Timeout:   5 * time.Second,
				}
				c, err := tcpBinding(d, target)
				if err != nil {
					return err
				}
				if c != nil {
					open = append(open, c)
					answered++
				} else {
					refused++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d connections from %d addresses of %s: %d answered, %d refused", conns, conns, v6TCPNet, answered, refused)
		if answered != perSource || refused != conns-perSource {
			t.Errorf("%d connections from one /64 answered and %d refused, want %d and %d", answered, refused, perSource, conns-perSource)
		}
		waitMetric(t, s, "stund_tcp_rejected_total", map[string]string{"reason": "per_source"}, conns-perSource)
	})
}

// startV6Stund runs stund on the server's link address with extra flags,
// until the test ends, and waits until it is ready.
func startV6Stund(t *testing.T, h *Host, extra ...string) *Stund {
	t.Helper()
	args := append([]string{
		"--listen", netip.AddrPortFrom(netip.MustParseAddr(v6LinkServer), v6StunPort).String(),
		"--http-listen", v6MetricsAddr, "--drain-timeout", "0",
	}, extra...)
	p := h.Start(binPath(t, "stund"), args...)
	t.Cleanup(p.Stop)
	s := &Stund{Proc: p, host: h, base: "http://" + v6MetricsAddr}
	waitListening(t, h, p, "udp", v6StunPort)
	waitListening(t, h, p, "tcp", v6StunPort)
	waitReady(t, s)
	return s
}

// addrIn returns the i-th address of an IPv6 /64.
func addrIn(prefix string, i int) netip.Addr {
	b := netip.MustParsePrefix(prefix).Addr().As16()
	b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return netip.AddrFrom16(b)
}

// freebind lets a socket bind to an address the host does not have on an
// interface: here, any address of a prefix routed to it as local.
func freebind(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}); err != nil {
		return err
	}
	return serr
}

// tcpBinding connects with d and sends a Binding request. It returns the
// connection when the request was answered (left open, counting against
// the cap), nil when the connection was refused: reset or closed, during
// the handshake or after. An error means neither happened in time.
func tcpBinding(d net.Dialer, server netip.AddrPort) (net.Conn, error) {
	c, err := d.Dial("tcp", server.String())
	if err != nil {
		if closedByPeer(err) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, err
	}
	req, txID := bindingRequest()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		if closedByPeer(err) {
			return nil, nil
		}
		return nil, err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		c.Close()
		if closedByPeer(err) {
			return nil, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("tcp %s from %s: neither answered nor refused in 5s", server, c.LocalAddr())
		}
		return nil, err
	}
	if _, err := parseXORMapped(buf[:n], txID); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// metricSum returns the sum of metric over the series whose labels
// include match.
func metricSum(t *testing.T, s *Stund, metric string, match map[string]string) float64 {
	t.Helper()
	sum := 0.0
	s.scrape(t, metric, func(labels map[string]string, v float64) {
		for k, w := range match {
			if labels[k] != w {
				return
			}
		}
		sum += v
	})
	return sum
}

// waitMetric waits until metricSum reaches want, and fails the test if it
// does not within ten seconds or goes past it.
func waitMetric(t *testing.T, s *Stund, metric string, match map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricSum(t, s, metric, match)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", metric, match, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
