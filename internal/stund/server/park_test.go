//go:build linux

package server

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// waitParked waits up to ten seconds until no goroutine serves a TCP
// connection: every one is parked.
func waitParked(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		dump := string(buf[:runtime.Stack(buf, true)])
		n := strings.Count(dump, ".serveStream(")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still serve connections:\n%s", n, dump)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleConnectionsHoldNoGoroutine opens connections that stay idle,
// before and after a message each: none keeps a goroutine, and each is
// served again when its next message comes.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const conns = 200
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}})
	var cs []*net.TCPConn
	for i := range conns {
		c := dialTCP(t, s.Addrs()[0])
		cs = append(cs, c)
		if i%2 == 0 { // half of them send a message first
			if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
				t.Fatal(err)
			}
			readResponse(t, c)
		}
	}
	waitCounter(t, "stund_tcp_connections_open", s.metrics.tcpOpen, conns)
	waitParked(t)
	for _, c := range cs {
		if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
			t.Fatal(err)
		}
		readResponse(t, c)
	}
	waitParked(t)
}

func TestParkedConnectionEnds(t *testing.T) {
	const idle = 200 * time.Millisecond
	tests := []struct {
		name    string
		idle    time.Duration
		message bool // one message answered before idling
		end     func(t *testing.T, s *Server, c *net.TCPConn)
	}{
		{"idle timeout, never a byte", idle, false, expectClosedBy(idle)},
		{"idle timeout after a message", idle, true, expectClosedBy(idle)},
		{"peer closes", time.Hour, true, func(_ *testing.T, _ *Server, c *net.TCPConn) { _ = c.Close() }},
		{"server closes", time.Hour, true, func(t *testing.T, s *Server, c *net.TCPConn) {
			closeServer(t, s, func() {})
			expectClosedBy(0)(t, s, c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Not startServer: one case closes the server itself.
			s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: tc.idle})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			c := dialTCP(t, s.Addrs()[0])
			if tc.message {
				if _, err := c.Write(build(t, stun.BindingRequest)); err != nil {
					t.Fatal(err)
				}
				readResponse(t, c)
			}
			waitParked(t)
			tc.end(t, s, c)
			waitCounter(t, "stund_tcp_connections_open", s.metrics.tcpOpen, 0)
		})
	}
}

// expectClosedBy reads from c until the server closes it, which it must
// do about after from now (within 3 s more, for a loaded machine): a
// parked connection is kept to the idle timeout.
func expectClosedBy(after time.Duration) func(t *testing.T, s *Server, c *net.TCPConn) {
	return func(t *testing.T, _ *Server, c *net.TCPConn) {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(after + 5*time.Second))
		n, err := c.Read(make([]byte, 64))
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read %d bytes, err %v: want the server to close", n, err)
		}
		if waited := time.Since(start); waited > after+3*time.Second {
			t.Errorf("closed after %s, want about %s", waited, after)
		}
	}
}
