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
