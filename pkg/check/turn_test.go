package check_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stund/stund/internal/stuntest"
	"github.com/stund/stund/pkg/check"
)

// turnTargets returns turn:IP:PORT?transport=udp, …tcp and turns:IP:TLSPORT
// for srv.
func turnTargets(t *testing.T, srv *stuntest.TURNServer) []check.Target {
	t.Helper()
	var out []check.Target
	for _, s := range []string{
		fmt.Sprintf("turn:%s?transport=udp", srv.Addr()),
		fmt.Sprintf("turn:%s?transport=tcp", srv.Addr()),
		fmt.Sprintf("turns:%s", srv.TLSAddr()),
	} {
		tg, err := check.ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}

	return out
}

// TestTURNCoturn checks TURN probes against coturn on loopback: with the
// right credentials every probe is preserved, its relay works and its
// allocation is released; wrong or expired credentials fail with the
// hint that fits the mechanism. Secrets never reach the report.
func TestTURNCoturn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		auth     stuntest.TURNAuth
		good     check.TURNConfig
		bad      check.TURNConfig
		badHint  string
		password string
	}{
		{"long-term", stuntest.TURNLongTerm,
			check.TURNConfig{Username: stuntest.TURNUser, Password: stuntest.TURNPassword},
			check.TURNConfig{Username: stuntest.TURNUser, Password: "not-the-password"},
			"--turn-password", stuntest.TURNPassword},
		{"rest", stuntest.TURNREST,
			check.TURNConfig{Secret: stuntest.TURNSecret, Username: "bob"},
			check.TURNConfig{Secret: stuntest.TURNSecret, Username: "bob", SecretTTL: -time.Minute},
			"server's clock", stuntest.TURNSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := stuntest.StartTURN(t, v4, tc.auth)
			cfg := check.Config{Targets: turnTargets(t, srv), ExpectIPs: []netip.Addr{v4}}
			cfg.TURN = tc.good
			cfg.TURN.RootCAs = srv.CA
			rep := run(t, check.WithRTO(cfg, 100*time.Millisecond))
			if rep.Verdict != check.Preserved || len(rep.Probes) != 3 {
				t.Fatalf("verdict %s with %d probes, want preserved with 3: %+v", rep.Verdict, len(rep.Probes), rep.Probes)
			}
			for _, p := range rep.Probes {
				tr := p.TURN
				if tr == nil || tr.Auth.Status != check.AuthOK || tr.RelayedClass != check.RelayedLoadBalancer ||
					tr.Relay.Status != check.RelayWorks || !tr.Released {
					t.Errorf("%s %s: %+v", p.Transport, p.Address, tr)
				}
			}
			noSecrets(t, rep, tc.password, tc.good.Secret)

			cfg.TURN = tc.bad
			cfg.TURN.RootCAs = srv.CA
			rep = run(t, check.WithRTO(cfg, 100*time.Millisecond))
			if rep.Verdict != check.Failed {
				t.Fatalf("wrong credentials: verdict %s, want failed", rep.Verdict)
			}
			for _, p := range rep.Probes {
				if p.Reason != check.ReasonCredentialsRejected || p.TURN.Auth.Status != check.AuthRejected || !strings.Contains(p.Hint, tc.badHint) {
					t.Errorf("%s: reason %s, auth %+v, hint %q; want credentials-rejected mentioning %q", p.Transport, p.Reason, p.TURN.Auth, p.Hint, tc.badHint)
				}
			}
			noSecrets(t, rep, tc.password, tc.bad.Password, tc.good.Secret)
		})
	}
}

// noSecrets fails when a secret appears in the report's text or JSON.
func noSecrets(t *testing.T, rep *check.Report, secrets ...string) {
	t.Helper()
	var txt, js bytes.Buffer
	if err := rep.WriteText(&txt, check.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) {
		t.Fatal("invalid JSON")
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(txt.String(), s) || strings.Contains(js.String(), s) {
			t.Errorf("the report contains the secret %q", s)
		}
	}
}

// TestTURNCertificate checks that a turns: server whose certificate does
// not verify is a failed probe with its own reason.
func TestTURNCertificate(t *testing.T) {
	srv := stuntest.StartTURN(t, v4, stuntest.TURNLongTerm)
	tg, err := check.ParseTarget("turns:" + srv.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := check.Config{Targets: []check.Target{tg}, ExpectIPs: []netip.Addr{v4},
		TURN: check.TURNConfig{Username: stuntest.TURNUser, Password: stuntest.TURNPassword}} // system roots: not the test CA
	rep := run(t, cfg)
	if p := rep.Probes[0]; p.Verdict != check.Failed || p.Reason != check.ReasonTLSCertificate || !strings.Contains(p.Hint, "--ca-file") {
		t.Fatalf("probe %s %s %q, want failed tls-certificate with a --ca-file hint", p.Verdict, p.Reason, p.Hint)
	}
}

func TestTURNCredentialsRequired(t *testing.T) {
	tg, err := check.ParseTarget("turn:198.51.100.7")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]check.TURNConfig{
		"none":                {},
		"user only":           {Username: "alice"},
		"password and secret": {Username: "alice", Password: "p", Secret: "s"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := check.New(check.Config{Targets: []check.Target{tg}, TURN: tc}); !errors.Is(err, check.ErrTURNCredentials) {
				t.Fatalf("New: %v, want ErrTURNCredentials", err)
			}
		})
	}
}
