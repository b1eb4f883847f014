package server

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// recordingClassifier says every source is a node and remembers what it
// was asked: a Kubernetes-aware classifier warns and records Events for
// each such answer, so only real Binding requests may reach it.
type recordingClassifier struct {
	mu    sync.Mutex
	asked []netip.Addr
}

func (c *recordingClassifier) Observe(a netip.Addr) SourceClass {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, a)

	return ClassNode
}

func (c *recordingClassifier) calls() []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()

	return slices.Clone(c.asked)
}

// Junk datagrams, bare TCP connections and broken streams are neither
// classified nor counted as Binding requests; each real request is, one
// by one on a TCP connection too, with an IPv4 source never in its mapped
// IPv6 form.
func TestClassifyOnlyBindingRequests(t *testing.T) {
	rec := &recordingClassifier{}
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}, Classifier: rec})
	addr := s.Addrs()[0]
	loop := netip.MustParseAddr("127.0.0.1")

	// UDP: junk of every kind, then a request from the same socket. The
	// answer to the request means the junk before it was handled.
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	junk := [][]byte{
		[]byte("8 bytes!"),
		[]byte("GET / HTTP/1.1\r\nHost: stund\r\n\r\n"),
		build(t, stun.NewType(stun.MethodBinding, stun.ClassIndication)),
		build(t, stun.BindingSuccess),
		build(t, stun.NewType(stun.MethodAllocate, stun.ClassRequest)),
	}
	for _, j := range junk {
		if _, err := u.Write(j); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.Write(build(t, stun.BindingRequest)); err != nil {
		t.Fatal(err)
	}
	_ = u.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Read(make([]byte, 1500)); err != nil {
		t.Fatalf("no answer to the Binding request after the junk: %v", err)
	}
	if got := rec.calls(); !slices.Equal(got, []netip.Addr{loop}) {
		t.Errorf("after junk and one UDP request the classifier was asked about %v, want [%s]", got, loop)
	}
	waitCounter(t, "udp binding requests from nodes", s.metrics.requests[transportUDP][familyIPv4][ClassNode], 1)

	// TCP: a bare connect and a stream that is not STUN, each closed.
	bare := dialTCP(t, addr)
	_ = bare.Close()
	broken := dialTCP(t, addr)
	if _, err := broken.Write([]byte("GET / HTTP/1.1\r\nHost: stund\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = broken.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := broken.Read(make([]byte, 10)); err == nil {
		t.Fatal("a stream that is not STUN was answered")
	}
	waitCounter(t, "tcp not_stun discards", s.metrics.dropped[transportTCP][familyIPv4][reasonNotSTUN], 1)
	waitCounter(t, "open tcp connections", s.metrics.tcpOpen, 0)

	// Two requests on one connection: classified once each.
	c := dialTCP(t, addr)
	for range 2 {
		if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
			t.Fatal(err)
		}
		readResponse(t, c)
	}
	waitCounter(t, "tcp binding requests from nodes", s.metrics.requests[transportTCP][familyIPv4][ClassNode], 2)
	if got := rec.calls(); !slices.Equal(got, []netip.Addr{loop, loop, loop}) {
		t.Errorf("classifier asked about %v, want 127.0.0.1 once per request (3)", got)
	}
	for f := range familyCount {
		for cl := range classCount {
			if cl == ClassNode && f == familyIPv4 {
				continue
			}
			for _, tr := range []transport{transportUDP, transportTCP} {
				waitCounter(t, "binding requests "+cl.String(), s.metrics.requests[tr][f][cl], 0)
			}
		}
	}
}

// A dual-stack socket sees IPv4 clients as IPv4-mapped IPv6 addresses;
// the classifier (and the warnings and Events it writes) gets plain IPv4.
func TestClassifyUnmapsDualStackSources(t *testing.T) {
	hasIPv6Loopback(t)
	rec := &recordingClassifier{}
	s, _ := startServer(t, Config{Listen: []string{":0"}, Classifier: rec})
	port := s.Addrs()[0].Port()
	resp, _ := exchangeUDP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), build(t, stun.BindingRequest), 10*time.Second)
	if resp == nil {
		t.Fatal("no answer over the dual-stack socket")
	}
	c := dialTCP(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
		t.Fatal(err)
	}
	readResponse(t, c)
	for _, a := range rec.calls() {
		if a.Is4In6() || !a.Is4() {
			t.Errorf("classifier asked about %s, want plain IPv4", a)
		}
	}
	if n := len(rec.calls()); n != 2 {
		t.Errorf("classifier asked %d times, want 2", n)
	}
}
