package turn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/turn"
	"github.com/stund/stund/internal/stuntest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func probe(t *testing.T, cfg turn.Config) *turn.Result {
	t.Helper()
	cfg.Timeout, cfg.RTO = 2*time.Second, 100*time.Millisecond
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	cfg.LoggerFactory = lf
	res, err := turn.Probe(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Probe %s %s: %v", cfg.Network, cfg.Server, err)
	}

	return res
}

// TestProbeCoturn runs the whole probe against coturn with each
// credential mechanism over UDP, TCP and TLS.
func TestProbeCoturn(t *testing.T) {
	for _, mech := range []struct {
		name  string
		auth  stuntest.TURNAuth
		creds turn.Credentials
		wrong turn.Credentials
	}{
		{"long-term", stuntest.TURNLongTerm,
			turn.Credentials{Username: stuntest.TURNUser, Password: stuntest.TURNPassword},
			turn.Credentials{Username: stuntest.TURNUser, Password: "wrong"}},
		{"rest", stuntest.TURNREST,
			turn.RESTCredentials(stuntest.TURNSecret, "bob", time.Now().Add(time.Hour)),
			turn.RESTCredentials(stuntest.TURNSecret, "bob", time.Now().Add(-time.Hour))},
	} {
		t.Run(mech.name, func(t *testing.T) {
			t.Parallel()
			srv := stuntest.StartTURN(t, loopback, mech.auth)
			for _, network := range []string{"udp", "tcp", "tls"} {
				t.Run(network, func(t *testing.T) {
					cfg := turn.Config{Network: network, Server: srv.Addr(), Credentials: mech.creds}
					if network == "tls" {
						cfg.Server = srv.TLSAddr()
						cfg.TLS = &tls.Config{RootCAs: srv.CA, MinVersion: tls.VersionTLS12}
					}
					res := probe(t, cfg)
					if res.Auth.Status != turn.AuthOK || res.Auth.Realm != stuntest.TURNRealm {
						t.Fatalf("auth = %+v, want ok in realm %s", res.Auth, stuntest.TURNRealm)
					}
					if res.Mapped != res.Local {
						t.Errorf("mapped %s, want the local address %s (loopback, no NAT)", res.Mapped, res.Local)
					}
					if res.Relayed.Addr() != loopback || res.Relayed.Port() < 40000 {
						t.Errorf("relayed %s, want 127.0.0.1 and a port of the relay range", res.Relayed)
					}
					if res.Relay.Status != turn.RelayWorks || res.Relay.RTT <= 0 {
						t.Errorf("relay = %+v, want works", res.Relay)
					}
					if !res.Released {
						t.Errorf("allocation not released: %v", res.ReleaseErr)
					}

					// The allocation is gone: coturn logs the Refresh with
					// lifetime 0, and within seconds (coturn deletes it on
					// its next timer tick) a second Allocate from the same
					// 5-tuple succeeds instead of getting 437 Allocation
					// Mismatch, which it would for the allocation's 600 s
					// lifetime otherwise. Over UDP the probe's port is free
					// again, so bind it and allocate again.
					if !strings.Contains(srv.Log(), "lifetime=0") {
						t.Errorf("coturn logged no refresh with lifetime=0")
					}
					if network == "udp" {
						var again *turn.Result
						var err error
						for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
							again, err = turn.Probe(context.Background(), turn.Config{Network: "udp", Server: srv.Addr(), Credentials: mech.creds,
								Timeout: 2 * time.Second, RTO: 100 * time.Millisecond, LocalAddr: res.Local})
							if err == nil && again.Auth.Status == turn.AuthOK {
								break
							}
						}
						if err != nil || again.Auth.Status != turn.AuthOK || !again.Released {
							t.Errorf("second Allocate from %s: %v %+v, want ok (the first allocation was released)", res.Local, err, again)
						}
					}

					cfg.Credentials = mech.wrong
					bad := probe(t, cfg)
					if bad.Auth.Status != turn.AuthRejected || bad.Auth.Code != 401 {
						t.Errorf("wrong credentials: auth = %+v, want rejected with 401", bad.Auth)
					}
				})
			}
		})
	}
}

// TestProbeTLSCertificate checks that a certificate the client cannot
// verify is an error of its own, not a fallback.
func TestProbeTLSCertificate(t *testing.T) {
	srv := stuntest.StartTURN(t, loopback, stuntest.TURNLongTerm)
	for name, tc := range map[string]*tls.Config{
		"unknown CA":  {MinVersion: tls.VersionTLS12},
		"wrong name":  {RootCAs: srv.CA, ServerName: "other.example", MinVersion: tls.VersionTLS12},
		"name is set": {RootCAs: srv.CA, ServerName: stuntest.TURNServerName, MinVersion: tls.VersionTLS12},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := turn.Probe(context.Background(), turn.Config{Network: "tls", Server: srv.TLSAddr(), TLS: tc,
				Credentials: turn.Credentials{Username: stuntest.TURNUser, Password: stuntest.TURNPassword}, Timeout: 2 * time.Second})
			var te *turn.TLSError
			if name == "name is set" {
				if err != nil {
					t.Fatalf("Probe with the right server name: %v", err)
				}

				return
			}
			if !errors.As(err, &te) || !te.Certificate {
				t.Fatalf("err = %v, want a certificate *TLSError", err)
			}
		})
	}
}

// TestProbeStaleNonce makes coturn's nonce expire after a second and
// waits it out between the 401 and the authenticated Allocate.
func TestProbeStaleNonce(t *testing.T) {
	srv := stuntest.StartTURN(t, loopback, stuntest.TURNLongTerm, "--stale-nonce=1")
	res := probe(t, turn.Config{Network: "udp", Server: srv.Addr(),
		Credentials: turn.Credentials{Username: stuntest.TURNUser, Password: stuntest.TURNPassword},
		BeforeAuth:  func() { time.Sleep(2100 * time.Millisecond) }})
	if res.Auth.Status != turn.AuthStaleNonce {
		t.Fatalf("auth = %+v, want stale-nonce-recovered", res.Auth)
	}
	if res.Relay.Status != turn.RelayWorks {
		t.Errorf("relay = %+v, want works", res.Relay)
	}
}

// TestProbeNoServer checks that silence is ErrNoResponse.
func TestProbeNoServer(t *testing.T) {
	port := stuntest.FreePort(t, []netip.Addr{loopback})
	_, err := turn.Probe(context.Background(), turn.Config{Network: "udp", Server: netip.AddrPortFrom(loopback, port),
		Timeout: 300 * time.Millisecond, RTO: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "refused") && !errors.Is(err, turn.ErrNoResponse) {
		t.Fatalf("err = %v, want no response or refused", err)
	}
}

// TestProbeCoturnIPv6 checks that an IPv6 server gives an IPv6 relay
// (REQUESTED-ADDRESS-FAMILY) that carries the round trip.
func TestProbeCoturnIPv6(t *testing.T) {
	v6 := netip.MustParseAddr("::1")
	srv := stuntest.StartTURN(t, v6, stuntest.TURNLongTerm)
	res := probe(t, turn.Config{Network: "udp", Server: srv.Addr(),
		Credentials: turn.Credentials{Username: stuntest.TURNUser, Password: stuntest.TURNPassword}})
	if res.Auth.Status != turn.AuthOK || res.Relayed.Addr() != v6 || res.Relay.Status != turn.RelayWorks || !res.Released {
		t.Fatalf("result %+v, want ok, relayed on ::1, relay works, released", res)
	}
}
