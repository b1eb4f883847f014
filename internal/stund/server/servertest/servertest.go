// Package servertest runs a stund server on loopback for other packages'
// tests: the real server, on free ports, stopped when the test ends.
package servertest

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stund/stund/internal/stund/server"
)

// Start serves cfg (by default on 127.0.0.1 and [::1], free ports) until
// the test ends and returns the bound addresses, in the order of
// cfg.Listen.
func Start(t testing.TB, cfg server.Config) []netip.AddrPort {
	t.Helper()
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:0", "[::1]:0"}
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	return srv.Addrs()
}
