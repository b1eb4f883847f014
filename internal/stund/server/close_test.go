package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// closeFailsafe is how long a test waits for Close before failing: far
// more than Close's grace, far less than the 10 s a connection would take
// to give up a blocked write, and never reached when Close is right.
const closeFailsafe = 5 * time.Second

// closeServer calls s.Close and fails the test when it has not returned
// within closeFailsafe; unblock then ends whatever holds it, so the test
// still ends clean.
func closeServer(t *testing.T, s *Server, unblock func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(closeFailsafe):
		t.Errorf("Close has not returned after %s", closeFailsafe)
		unblock()
		<-done
	}
}

// TestCloseWithPipeliningClient checks that a client sending requests
// back to back, and reading every answer, does not hold Close: each
// message used to set a fresh read deadline, undoing the one Close set, so
// the connection lived as long as the client kept sending. The client
// must get whole answers and then see its connection closed, by the
// server's own doing: Close's grace is stretched past the failsafe, so
// its forced close cannot be what ends it.
func TestCloseWithPipeliningClient(t *testing.T) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	s.closeGrace = time.Hour
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := dialTCP(t, s.Addrs()[0])
	req := build(t, stun.BindingRequest)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() { // the client sends until told to stop or refused
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, writeErr = c.Write(req); writeErr != nil {
				return
			}
		}
	})
	var received bytes.Buffer
	var readErr error
	wg.Go(func() { // and reads every answer until the connection ends
		_, readErr = io.Copy(&received, c)
	})
	// Well into the stream before closing.
	waitAtLeast(t, "answers", s.metrics.success[transportTCP][familyIPv4], 200)

	closeServer(t, s, func() { _ = c.Close() })
	close(stop)
	wg.Wait()
	if readErr != nil && !errors.Is(readErr, syscall.ECONNRESET) {
		t.Errorf("client read: %v", readErr)
	}
	// Closing a connection with requests still unread sends a reset, and a
	// reset throws away what the client had not read yet, cutting the
	// stream anywhere; whichever of the client's reader and writer comes
	// first gets the error, the other then sees a plain end. Only a stream
	// that ended without a reset promises every answer whole.
	reset := func(err error) bool {
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	}
	wasReset := reset(readErr) || reset(writeErr)
	// Every answer the client got is whole and valid; without a reset,
	// Close cut none and every answer counted arrived.
	out := received.Bytes()
	n := 0
	for len(out) >= headerSize && len(out) >= headerSize+int(binary.BigEndian.Uint16(out[2:4])) {
		decode(t, out[:headerSize+int(binary.BigEndian.Uint16(out[2:4]))])
		out = out[headerSize+int(binary.BigEndian.Uint16(out[2:4])):]
		n++
	}
	if wasReset {
		t.Logf("the connection ended in a reset after %d whole answers (read: %v, write: %v)", n, readErr, writeErr)

		return
	}
	if len(out) > 0 {
		t.Fatalf("the stream ends in a partial answer of %d bytes after %d whole ones", len(out), n)
	}
	if n < 200 {
		t.Errorf("%d answers, want at least the 200 counted", n)
	}
}

// TestCloseWithClientNotReading checks Close's hard bound: a client that
// sends far more requests than socket buffers hold and reads no answer
// leaves its connection blocked in a write, which Close ends after its
// grace instead of waiting out the 10 s write timeout.
func TestCloseWithClientNotReading(t *testing.T) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}

		return serr
	}}
	conn, err := d.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 16 MiB of requests draw about 42 MiB of answers: more than the
	// kernel buffers on both sides hold, so the server's writes block
	// and it stops reading, which blocks this write in turn.
	flood := bytes.Repeat(build(t, stun.BindingRequest), 16<<20/20)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = conn.Write(flood) })
	waitBlockedInWrite(t)

	closeServer(t, s, func() { _ = conn.Close() })
	_ = conn.Close()
	wg.Wait()
}

// waitBlockedInWrite waits until a connection of the server is blocked
// writing an answer, as the goroutine dump shows, for at most
// closeFailsafe.
func waitBlockedInWrite(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(closeFailsafe)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "net.(*conn).Write(") &&
				strings.Contains(g, ".serveStream(") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection blocked writing after %s", closeFailsafe)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
