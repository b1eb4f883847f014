package exporter

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stund/stund/internal/stuntest"
)

// TestProbeTURNCoturn probes a real coturn through a module with TURN
// credentials: the right password relays (stuncheck_probe_relay_works 1,
// success 1), a wrong one is a failed probe with credentials-rejected, and
// neither answer holds the password or an address.
func TestProbeTURNCoturn(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	srv := stuntest.StartTURN(t, lo, stuntest.TURNLongTerm)
	target := fmt.Sprintf("turn:%s?transport=udp", srv.Addr())
	t.Setenv("STUNCHECK_TEST_TURN_GOOD", stuntest.TURNPassword)
	t.Setenv("STUNCHECK_TEST_TURN_BAD", "not-the-password")
	_, hs, _ := newTest(t, fmt.Sprintf(`modules:
  good:
    timeout: 5s
    targets: [%q]
    turn:
      username: %s
      password_env: STUNCHECK_TEST_TURN_GOOD
  bad:
    timeout: 5s
    targets: [%q]
    turn:
      username: %s
      password_env: STUNCHECK_TEST_TURN_BAD
`, target, stuntest.TURNUser, target, stuntest.TURNUser), nil, nil)

	for _, c := range []struct {
		module string
		want   []string
	}{
		{"good", []string{
			"stuncheck_probe_success 1",
			`stuncheck_probe_relay_works{transport="udp"} 1`,
			`stuncheck_probe_verdict{family="ipv4",reason="same-address",transport="udp",verdict="preserved"} 1`,
		}},
		{"bad", []string{
			"stuncheck_probe_success 0",
			`stuncheck_probe_relay_works{transport="udp"} 0`,
			`stuncheck_probe_verdict{family="ipv4",reason="credentials-rejected",transport="udp",verdict="failed"} 1`,
		}},
	} {
		t.Run(c.module, func(t *testing.T) {
			code, body := get(t, probeURL(hs.URL, "module", c.module, "target", target, "expect_ip", "127.0.0.1"), nil)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("answer lacks %s:\n%s", w, body)
				}
			}
			checkLabels(t, []byte(body))
			if strings.Contains(body, stuntest.TURNPassword) || strings.Contains(body, "127.0.0.1") {
				t.Errorf("a password or an address in the answer:\n%s", body)
			}
		})
	}
}

// TestProbeTURNCoturnREST: a module with a REST shared secret (coturn's
// use-auth-secret) relays, and needs no username.
func TestProbeTURNCoturnREST(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	srv := stuntest.StartTURN(t, lo, stuntest.TURNREST)
	target := fmt.Sprintf("turn:%s?transport=tcp", srv.Addr())
	t.Setenv("STUNCHECK_TEST_TURN_SECRET", stuntest.TURNSecret)
	_, hs, _ := newTest(t, fmt.Sprintf(`modules:
  rest:
    timeout: 5s
    targets: [%q]
    turn:
      secret_env: STUNCHECK_TEST_TURN_SECRET
`, target), nil, nil)
	code, body := get(t, probeURL(hs.URL, "module", "rest", "target", target, "expect_ip", "127.0.0.1"), nil)
	if code != 200 || !strings.Contains(body, "stuncheck_probe_success 1") ||
		!strings.Contains(body, `stuncheck_probe_relay_works{transport="tcp"} 1`) {
		t.Errorf("status %d, want success and a working relay over TCP:\n%s", code, body)
	}
	if strings.Contains(body, stuntest.TURNSecret) {
		t.Errorf("the secret in the answer:\n%s", body)
	}
	_, page := get(t, hs.URL+"/", nil)
	if !strings.Contains(page, "REST shared secret (from env)") || strings.Contains(page, stuntest.TURNSecret) {
		t.Errorf("the page does not say where the secret comes from, or shows it:\n%s", page)
	}
}
