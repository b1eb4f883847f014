package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stund/stund/internal/stuntest"
)

// TestTURN runs the binary against coturn with REST credentials: the
// secret from the environment or the flag, a good and an expired one, in
// text and JSON, and checks the exit codes and that the secret and the
// password derived from it never show.
func TestTURN(t *testing.T) {
	srv := stuntest.StartTURN(t, v4, stuntest.TURNREST)
	targets := []string{
		"turn:" + srv.Addr().String(),
		"turns:" + srv.TLSAddr().String(),
		"stun:" + srv.Addr().String(), // mixed with a STUN target
	}
	base := append([]string{"--expect-ip", "127.0.0.1", "--timeout", "2s", "--ca-file", srv.CAFile, "--turn-user", "probe"}, targets...)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want []string
	}{
		{"secret from the environment", []string{"STUNCHECK_TURN_SECRET=" + stuntest.TURNSecret}, nil, 0,
			[]string{"turn auth:    ok (rest credentials", "(load-balancer)", "turn relay:   works", "──tls──▶"}},
		{"secret from the flag, JSON", nil, []string{"-o", "json", "--turn-secret", stuntest.TURNSecret}, 0,
			[]string{`"turn": {`, `"status": "works"`, `"class": "load-balancer"`, `"released": true`}},
		{"wrong secret", []string{"STUNCHECK_TURN_SECRET=not-" + stuntest.TURNSecret}, []string{"-v"}, 1,
			[]string{"credentials rejected", "server's clock"}},
		{"wrong secret, JSON", nil, []string{"-o", "json", "--turn-secret", "not-" + stuntest.TURNSecret}, 1,
			[]string{`"reason": "credentials-rejected"`, `"status": "rejected"`, `"code": 401`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := stuncheck(t, tc.env, append(append([]string{}, tc.args...), base...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.HasPrefix(tc.name, "secret from the flag") && !json.Valid([]byte(r.stdout)) {
				t.Error("invalid JSON")
			}
			for _, secret := range []string{stuntest.TURNSecret} {
				if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
					t.Errorf("the secret %q is in the output:\n%s\n%s", secret, r.stdout, r.stderr)
				}
			}
		})
	}
}

// TestTURNPasswordNotPrinted checks long-term credentials: right and wrong
// passwords, from the environment and the flag, never printed.
func TestTURNPasswordNotPrinted(t *testing.T) {
	srv := stuntest.StartTURN(t, v4, stuntest.TURNLongTerm)
	target := fmt.Sprintf("turn:%s?transport=udp", srv.Addr())
	for _, tc := range []struct {
		name     string
		env      []string
		args     []string
		password string
		code     int
	}{
		{"env", []string{"STUNCHECK_TURN_PASSWORD=" + stuntest.TURNPassword}, nil, stuntest.TURNPassword, 0},
		{"flag, JSON, verbose", nil, []string{"-o", "json", "-v", "--turn-password", stuntest.TURNPassword}, stuntest.TURNPassword, 0},
		{"wrong, verbose", nil, []string{"-v", "--turn-password", "Wr0ng-Passw0rd"}, "Wr0ng-Passw0rd", 1},
		{"wrong, JSON", nil, []string{"-o", "json", "--turn-password", "Wr0ng-Passw0rd"}, "Wr0ng-Passw0rd", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "--expect-ip", "127.0.0.1", "--timeout", "2s", "--turn-user", stuntest.TURNUser, target)
			r := stuncheck(t, tc.env, args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, tc.password) || strings.Contains(r.stderr, tc.password) {
				t.Errorf("the password is in the output:\n%s\n%s", r.stdout, r.stderr)
			}
		})
	}
}

// TestTURNUsage checks the usage errors of TURN targets and flags: exit 2
// with a message that says what to write.
func TestTURNUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"double slash", nil, []string{"--turn-user", "a", "--turn-password", "b", "turn://turn.example.com"}, `no "//"`},
		{"unknown transport", nil, []string{"--turn-user", "a", "--turn-password", "b", "turn:turn.example.com?transport=sctp"}, "want udp or tcp"},
		{"unknown query", nil, []string{"--turn-user", "a", "--turn-password", "b", "turn:turn.example.com?foo=bar"}, "the only one is ?transport="},
		{"turns over udp", nil, []string{"--turn-secret", "s", "turns:turn.example.com?transport=udp"}, "DTLS"},
		{"bad port", nil, []string{"--turn-secret", "s", "turn:turn.example.com:99999"}, "1 to 65535"},
		{"no credentials", nil, []string{"turn:198.51.100.7"}, "needs --turn-user and --turn-password"},
		{"user without password", nil, []string{"--turn-user", "a", "turn:198.51.100.7"}, "--turn-user needs --turn-password"},
		{"password without user", nil, []string{"--turn-password", "p", "turn:198.51.100.7"}, "--turn-password needs --turn-user"},
		{"password and secret", nil, []string{"--turn-user", "a", "--turn-password", "p", "--turn-secret", "s", "turn:198.51.100.7"}, "give one"},
		{"both variables", []string{"STUNCHECK_TURN_PASSWORD=p", "STUNCHECK_TURN_SECRET=s"}, []string{"--turn-user", "a", "turn:198.51.100.7"}, "both STUNCHECK_TURN_PASSWORD and STUNCHECK_TURN_SECRET"},
		{"TURN flag without TURN target", nil, []string{"--turn-secret", "s", "198.51.100.7"}, "--turn-secret is for turn: and turns: targets"},
		{"missing CA file", nil, []string{"--turn-secret", "s", "--ca-file", "/nonexistent.pem", "turns:198.51.100.7"}, "--ca-file"},
		{"TURN reference", nil, []string{"--turn-secret", "s", "--reference", "turn:192.0.2.1", "turn:198.51.100.7"}, "a reference is a STUN server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := stuncheck(t, tc.env, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
}
