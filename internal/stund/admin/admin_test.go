package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "stund_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	s := New(Config{Listen: "127.0.0.1:0", Gatherer: reg})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path) //nolint:noctx // a test on loopback
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)

		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name  string
		ready bool
		path  string
		code  int
		body  string
	}{
		{"not ready at start", false, "/readyz", 503, "not ready"},
		{"ready", true, "/readyz", 200, "ready"},
		{"draining", false, "/readyz", 503, "not ready"},
		{"alive while draining", false, "/healthz", 200, "ok"},
		{"metrics", false, "/metrics", 200, "stund_test_total 3"},
		{"unknown path", false, "/nope", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.SetReady(tc.ready)
			code, body := get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	a := New(Config{Listen: "127.0.0.1:0"})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background()) //nolint:errcheck // cleanup
	b := New(Config{Listen: a.Addr().String()})
	err := b.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), a.Addr().String()) {
		t.Errorf("second Start on %s: %v, want an error naming the address", a.Addr(), err)
	}
}

// TestTimeouts checks that every phase of an admin connection is bounded:
// with only a header timeout, a client could hold a connection forever.
func TestTimeouts(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": s.srv.ReadHeaderTimeout, "ReadTimeout": s.srv.ReadTimeout,
		"WriteTimeout": s.srv.WriteTimeout, "IdleTimeout": s.srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s not set", name)
		}
	}
}

// TestConnectionCap opens more keep-alive connections than the cap, each
// idle after one request (without an idle timeout or a cap they stayed
// open for good): older ones are closed to make room, the count never
// passes the cap, and /healthz is still answered.
func TestConnectionCap(t *testing.T) {
	const limit, idle = 4, 10
	s := New(Config{Listen: "127.0.0.1:0", MaxConns: limit})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	closed := make(chan struct{}, idle)
	for range idle {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: stund\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		go func() {
			_, _ = io.Copy(io.Discard, r) // idle until the server closes it
			closed <- struct{}{}
		}()
	}
	// Well under the idle timeout: only the cap closes them this soon.
	for n := range idle - limit {
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d idle connections closed, want %d: no cap", n, idle, idle-limit)
		}
	}
	if n := s.ln.open(); n != limit {
		t.Errorf("%d connections open, want the cap, %d", n, limit)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 3 {
		resp, err := client.Get("http://" + s.Addr().String() + "/healthz") //nolint:noctx // a test on loopback
		if err != nil {
			t.Fatalf("/healthz at the cap: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/healthz at the cap: %d", resp.StatusCode)
		}
	}
	if n := s.ln.open(); n > limit {
		t.Errorf("%d connections open, over the cap of %d", n, limit)
	}
}

// TestCapWaitsForBusy checks that at the cap a connection in a request is
// never closed to make room: the newcomer waits until it goes idle.
func TestCapWaitsForBusy(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newCapListener(inner, 1)
	defer l.Close()
	first, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	busy, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	l.track(busy, http.StateActive)
	second, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	accepted := make(chan net.Conn)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	// The busy connection is still open: a write to it gets through and
	// its answer comes back.
	if _, err := first.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(busy, make([]byte, 1)); err != nil {
		t.Fatalf("busy connection closed to make room: %v", err)
	}
	l.track(busy, http.StateIdle)
	c := <-accepted
	defer c.Close()
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := first.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("the connection gone idle was not closed for the newcomer: %v", err)
	}
	if n := l.open(); n != 1 {
		t.Errorf("%d open, want 1", n)
	}
}

// TestShutdownClosesStragglers checks that Shutdown is bounded by its
// context: a connection that has sent nothing yet is closed at the
// deadline instead of failing the shutdown.
func TestShutdownClosesStragglers(t *testing.T) {
	s := New(Config{Listen: "127.0.0.1:0"})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); s.ln.open() == 0; { // accepted: net/http waits 5 s for it
		if time.Now().After(deadline) {
			t.Fatal("connection not accepted")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v, want the straggler closed", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("straggler: %v, want closed", err)
	}
}
