package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

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
