package check_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/internal/stuntest"
	"github.com/stund/stund/pkg/check"
)

var (
	v4 = netip.MustParseAddr("127.0.0.1")
	v6 = netip.MustParseAddr("::1")
	ap = netip.MustParseAddrPort
	ip = netip.MustParseAddr
)

func startStund(t *testing.T) []netip.AddrPort {
	t.Helper()
	return servertest.Start(t, server.Config{Software: "stund"})
}

func targets(t *testing.T, addrs ...netip.AddrPort) []check.Target {
	t.Helper()
	var out []check.Target
	for _, a := range addrs {
		tg, err := check.ParseTarget(a.String())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}

	return out
}

func fixed(a netip.AddrPort) func(netip.AddrPort) netip.AddrPort {
	return func(netip.AddrPort) netip.AddrPort { return a }
}

func run(t *testing.T, cfg check.Config) *check.Report {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.References == nil {
		cfg.References = []string{} // never the public defaults in tests
	}
	c, err := check.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	return rep
}

type wantProbe struct {
	transport check.Transport
	family    check.Family
	verdict   check.Verdict
	reason    check.Reason
	mapped    netip.Addr // checked when valid
}

func checkProbes(t *testing.T, rep *check.Report, want []wantProbe) {
	t.Helper()
	if len(rep.Probes) != len(want) {
		t.Fatalf("%d probes, want %d: %+v", len(rep.Probes), len(want), rep.Probes)
	}
	for i, w := range want {
		p := rep.Probes[i]
		if p.Transport != w.transport || p.Family != w.family || p.Verdict != w.verdict || p.Reason != w.reason {
			t.Errorf("probe %d: %s %s %s/%s, want %s %s %s/%s (%s)", i, p.Transport, p.Family, p.Verdict, p.Reason,
				w.transport, w.family, w.verdict, w.reason, p.Detail)
		}
		if w.mapped.IsValid() && p.Mapped.Addr() != w.mapped {
			t.Errorf("probe %d: mapped %s, want %s", i, p.Mapped, w.mapped)
		}
		if p.Mapped.IsValid() && p.RTT <= 0 {
			t.Errorf("probe %d: answered without an RTT", i)
		}
	}
}

// TestRealServers runs the check against coturn and stund on loopback,
// UDP and TCP, IPv4 and IPv6, with the "public" IP given so that the same
// server is preserved or rewritten.
func TestRealServers(t *testing.T) {
	servers := map[string]func(t *testing.T) []netip.AddrPort{
		"stund": startStund,
		"coturn": func(t *testing.T) []netip.AddrPort {
			c := stuntest.StartCoturn(t, []netip.Addr{v4, v6}, "--no-rfc5780")

			return []netip.AddrPort{c.Addr(v4), c.Addr(v6)}
		},
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			addrs := start(t)
			tgs := targets(t, addrs...)
			t.Run("preserved", func(t *testing.T) {
				rep := run(t, check.Config{Targets: tgs, ExpectIPs: []netip.Addr{v4, v6}})
				if rep.Verdict != check.Preserved {
					t.Errorf("verdict %s", rep.Verdict)
				}
				checkProbes(t, rep, []wantProbe{
					{check.UDP, check.IPv4, check.Preserved, check.ReasonSameAddress, v4},
					{check.TCP, check.IPv4, check.Preserved, check.ReasonSameAddress, v4},
					{check.UDP, check.IPv6, check.Preserved, check.ReasonSameAddress, v6},
					{check.TCP, check.IPv6, check.Preserved, check.ReasonSameAddress, v6},
				})
			})
			t.Run("rewritten", func(t *testing.T) {
				rep := run(t, check.Config{Targets: tgs, ExpectIPs: []netip.Addr{ip("203.0.113.10"), ip("2001:db8::10")}})
				if rep.Verdict != check.Rewritten {
					t.Errorf("verdict %s", rep.Verdict)
				}
				checkProbes(t, rep, []wantProbe{
					{check.UDP, check.IPv4, check.Rewritten, check.ReasonLoopback, v4},
					{check.TCP, check.IPv4, check.Rewritten, check.ReasonLoopback, v4},
					{check.UDP, check.IPv6, check.Rewritten, check.ReasonLoopback, v6},
					{check.TCP, check.IPv6, check.Rewritten, check.ReasonLoopback, v6},
				})
			})
			t.Run("reference", func(t *testing.T) {
				refs := []string{addrs[0].String(), "stun:" + addrs[1].String()}
				rep := run(t, check.Config{Targets: tgs, References: refs, Transports: []check.Transport{check.UDP}})
				if rep.Verdict != check.Preserved {
					t.Fatalf("verdict %s: %+v", rep.Verdict, rep.PublicIPs)
				}
				for _, p := range rep.PublicIPs {
					if p.Source != check.SourceReference || !p.IP.IsLoopback() {
						t.Errorf("public IP %+v", p)
					}
				}
			})
		})
	}
}

// TestScriptedPaths makes a responder claim what a load balancer would
// have shown it, over both transports.
func TestScriptedPaths(t *testing.T) {
	public := ip("203.0.113.10")
	tests := []struct {
		name    string
		resp    *stuntest.Responder
		verdict check.Verdict
		want    []wantProbe
	}{
		{
			name: "preserved", resp: &stuntest.Responder{Mapped: fixed(ap("203.0.113.10:40000"))}, verdict: check.Preserved,
			want: []wantProbe{{check.UDP, check.IPv4, check.Preserved, check.ReasonPortChanged, public}, {check.TCP, check.IPv4, check.Preserved, check.ReasonPortChanged, public}},
		},
		{
			name: "kube-proxy masquerade", resp: &stuntest.Responder{Mapped: fixed(ap("10.0.0.1:39807"))}, verdict: check.Rewritten,
			want: []wantProbe{{check.UDP, check.IPv4, check.Rewritten, check.ReasonPrivate, ip("10.0.0.1")}, {check.TCP, check.IPv4, check.Rewritten, check.ReasonPrivate, ip("10.0.0.1")}},
		},
		{
			name: "cgnat", resp: &stuntest.Responder{Mapped: fixed(ap("100.64.0.9:1"))}, verdict: check.Rewritten,
			want: []wantProbe{{check.UDP, check.IPv4, check.Rewritten, check.ReasonCGNAT, ip("100.64.0.9")}, {check.TCP, check.IPv4, check.Rewritten, check.ReasonCGNAT, ip("100.64.0.9")}},
		},
		{
			name: "other public", resp: &stuntest.Responder{Mapped: fixed(ap("192.0.2.50:1"))}, verdict: check.Rewritten,
			want: []wantProbe{{check.UDP, check.IPv4, check.Rewritten, check.ReasonOtherPublic, ip("192.0.2.50")}, {check.TCP, check.IPv4, check.Rewritten, check.ReasonOtherPublic, ip("192.0.2.50")}},
		},
		{
			name: "udp rewritten, tcp preserved", verdict: check.Rewritten,
			resp: &stuntest.Responder{Mapped: fixed(ap("10.0.0.1:39807")), MappedTCP: fixed(ap("203.0.113.10:40000"))},
			want: []wantProbe{{check.UDP, check.IPv4, check.Rewritten, check.ReasonPrivate, ip("10.0.0.1")}, {check.TCP, check.IPv4, check.Preserved, check.ReasonPortChanged, public}},
		},
		{
			// Issue 13 item 14: family IPv6 with a 4-byte address was
			// read as [2010:a746::] and judged rewritten (exit 1).
			name: "short xor-mapped-address", verdict: check.Inconclusive,
			resp: &stuntest.Responder{XORMappedRaw: []byte{0x00, 0x02, 0x00, 0x01, 0x20, 0x10, 0xa7, 0x46}},
			want: []wantProbe{{check.UDP, check.IPv4, check.Inconclusive, check.ReasonInvalidResponse, netip.Addr{}}, {check.TCP, check.IPv4, check.Inconclusive, check.ReasonInvalidResponse, netip.Addr{}}},
		},
		{
			name: "error response", resp: &stuntest.Responder{ErrorCode: 400}, verdict: check.Inconclusive,
			want: []wantProbe{{check.UDP, check.IPv4, check.Inconclusive, check.ReasonErrorResponse, netip.Addr{}}, {check.TCP, check.IPv4, check.Inconclusive, check.ReasonErrorResponse, netip.Addr{}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.resp.Start(t, v4)
			rep := run(t, check.Config{Targets: targets(t, addr), ExpectIPs: []netip.Addr{public}})
			if rep.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", rep.Verdict, tc.verdict)
			}
			checkProbes(t, rep, tc.want)
		})
	}
}

func TestSplitTransportHint(t *testing.T) {
	r := &stuntest.Responder{Mapped: fixed(ap("10.0.0.1:39807")), MappedTCP: fixed(ap("203.0.113.10:40000"))}
	addr := r.Start(t, v4)
	rep := run(t, check.Config{Targets: targets(t, addr), ExpectIPs: []netip.Addr{ip("203.0.113.10")}})
	if !contains(rep.Probes[0].Hint, "Cilium") {
		t.Errorf("UDP hint does not mention the UDP-only SNAT pattern: %q", rep.Probes[0].Hint)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func TestNoAnswer(t *testing.T) {
	silent := stuntest.Silent(t, v4)
	closed := netip.AddrPortFrom(v4, stuntest.FreePort(t, []netip.Addr{v4}))
	tests := []struct {
		name    string
		addr    netip.AddrPort
		reason  check.Reason
		timeout time.Duration
	}{
		{"silent", silent, check.ReasonNoResponse, 300 * time.Millisecond},
		// A refusal comes back at once; the long timeout only keeps a
		// loaded machine from turning it into no-response.
		{"closed", closed, check.ReasonRefused, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, check.WithRTO(check.Config{
				Targets: targets(t, tc.addr), ExpectIPs: []netip.Addr{v4}, Timeout: tc.timeout,
			}, 50*time.Millisecond))
			if rep.Verdict != check.Inconclusive {
				t.Errorf("verdict %s", rep.Verdict)
			}
			checkProbes(t, rep, []wantProbe{
				{check.UDP, check.IPv4, check.Inconclusive, tc.reason, netip.Addr{}},
				{check.TCP, check.IPv4, check.Inconclusive, tc.reason, netip.Addr{}},
			})
		})
	}
}

// TestPublicIPDiscovery checks the majority rule over reference servers.
func TestPublicIPDiscovery(t *testing.T) {
	ref := func(t *testing.T, mapped string) string {
		r := &stuntest.Responder{Mapped: fixed(ap(mapped))}

		return r.Start(t, v4).String()
	}
	tests := []struct {
		name    string
		refs    func(t *testing.T) []string
		wantIP  netip.Addr
		verdict check.Verdict
	}{
		{
			name: "majority", verdict: check.Preserved, wantIP: ip("203.0.113.10"),
			refs: func(t *testing.T) []string {
				return []string{ref(t, "203.0.113.10:1"), ref(t, "203.0.113.10:2"), ref(t, "192.0.2.9:3")}
			},
		},
		{
			name: "majority of the answering", verdict: check.Preserved, wantIP: ip("203.0.113.10"),
			refs: func(t *testing.T) []string {
				return []string{ref(t, "203.0.113.10:1"), stuntest.Silent(t, v4).String()}
			},
		},
		{
			name: "disagreement", verdict: check.Inconclusive,
			refs: func(t *testing.T) []string {
				return []string{ref(t, "203.0.113.10:1"), ref(t, "192.0.2.9:3")}
			},
		},
		{
			name: "no answer", verdict: check.Inconclusive,
			refs: func(t *testing.T) []string { return []string{stuntest.Silent(t, v4).String()} },
		},
		{name: "no references", verdict: check.Inconclusive, refs: func(t *testing.T) []string { return []string{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &stuntest.Responder{Mapped: fixed(ap("203.0.113.10:5000"))}
			addr := target.Start(t, v4)
			rep := run(t, check.WithRTO(check.Config{
				Targets: targets(t, addr), References: tc.refs(t), Timeout: 500 * time.Millisecond,
			}, 50*time.Millisecond))
			if rep.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", rep.Verdict, tc.verdict)
			}
			if len(rep.PublicIPs) != 1 || rep.PublicIPs[0].IP != tc.wantIP {
				t.Fatalf("public IPs %+v, want %s", rep.PublicIPs, tc.wantIP)
			}
			if tc.verdict == check.Inconclusive && rep.Probes[0].Reason != check.ReasonNoPublicIP {
				t.Errorf("reason %s", rep.Probes[0].Reason)
			}
		})
	}
}

func TestNATBehavior(t *testing.T) {
	b := ip("127.0.0.2")
	tests := []struct {
		name      string
		srv       *stuntest.RFC5780
		mapping   check.Behavior
		filtering check.Behavior
		noNAT     bool
		detail    string // a substring of the detail, when given
	}{
		// Loopback has no NAT: the server sees the local address, so
		// RFC 5780 §4.3 ends the mapping test at its first step.
		{name: "open", srv: &stuntest.RFC5780{}, mapping: check.EndpointIndependent, filtering: check.EndpointIndependent, noNAT: true, detail: "No NAT"},
		{name: "address filtering", srv: &stuntest.RFC5780{DropChangedIP: true}, mapping: check.EndpointIndependent, filtering: check.AddressDependent, noNAT: true},
		{name: "port filtering", srv: &stuntest.RFC5780{DropChangedPort: true}, mapping: check.EndpointIndependent, filtering: check.AddressAndPortDependent, noNAT: true},
		// A mapped port other than the local one: a NAT, tested in full.
		{name: "symmetric mapping", srv: &stuntest.RFC5780{PortPerDestination: true}, mapping: check.AddressAndPortDependent, filtering: check.EndpointIndependent},
		// A classic RFC 3489 server offers CHANGED-ADDRESS only: the tests
		// use it, and say so.
		{
			name: "classic server", srv: &stuntest.RFC5780{Classic: true, DropChangedIP: true},
			mapping: check.EndpointIndependent, filtering: check.AddressDependent, noNAT: true, detail: "CHANGED-ADDRESS",
		},
		{
			name: "classic server, symmetric mapping", srv: &stuntest.RFC5780{Classic: true, PortPerDestination: true},
			mapping: check.AddressAndPortDependent, filtering: check.EndpointIndependent, detail: "CHANGED-ADDRESS",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.srv.Start(t, v4, b)
			rep := run(t, check.WithRTO(check.Config{
				Targets: targets(t, addr), ExpectIPs: []netip.Addr{v4}, Transports: []check.Transport{check.UDP},
				NATBehavior: true, Timeout: 300 * time.Millisecond,
			}, 50*time.Millisecond))
			p := rep.Probes[0]
			if p.NAT == nil || p.NAT.Mapping != tc.mapping || p.NAT.Filtering != tc.filtering || p.NAT.NoNAT != tc.noNAT {
				t.Fatalf("NAT %+v, want mapping %s filtering %s no NAT %v", p.NAT, tc.mapping, tc.filtering, tc.noNAT)
			}
			if !strings.Contains(p.NAT.Detail, tc.detail) {
				t.Errorf("detail %q does not mention %q", p.NAT.Detail, tc.detail)
			}
			if p.Local.Addr() != v4 {
				t.Errorf("local address %s: the NAT tests must run from the address that reaches the server", p.Local)
			}
			if !tc.srv.Classic && (!p.OtherAddress.IsValid() || !p.ResponseOrigin.IsValid()) {
				t.Errorf("RFC 5780 attributes missing: %+v", p)
			}
		})
	}
	t.Run("no other-address, no NAT", func(t *testing.T) {
		addrs := startStund(t)
		rep := run(t, check.Config{Targets: targets(t, addrs[0]), ExpectIPs: []netip.Addr{v4}, Transports: []check.Transport{check.UDP}, NATBehavior: true})
		n := rep.Probes[0].NAT
		if n == nil || !n.NoNAT || n.Mapping != check.EndpointIndependent || n.Filtering != check.BehaviorUnknown || !strings.Contains(n.Detail, "OTHER-ADDRESS") {
			t.Fatalf("NAT %+v", n)
		}
	})
	t.Run("no other-address, behind a NAT", func(t *testing.T) {
		addr := (&stuntest.Responder{Mapped: fixed(ap("203.0.113.10:40000"))}).Start(t, v4)
		rep := run(t, check.Config{Targets: targets(t, addr), ExpectIPs: []netip.Addr{ip("203.0.113.10")}, Transports: []check.Transport{check.UDP}, NATBehavior: true})
		n := rep.Probes[0].NAT
		if n == nil || n.NoNAT || n.Mapping != check.BehaviorUnknown || n.Filtering != check.BehaviorUnknown || n.Detail == "" {
			t.Fatalf("NAT %+v", n)
		}
	})
}

// TestConfigErrors checks that New says which input it refuses: the
// sentinel, and the value as text, so that a command can name its flag.
func TestConfigErrors(t *testing.T) {
	tg := targets(t, ap("127.0.0.1:3478"))
	tests := []struct {
		name      string
		cfg       check.Config
		want      error
		wantInput string // the InputError's Input; empty: no InputError
	}{
		{"no targets", check.Config{}, check.ErrNoTarget, ""},
		{"two ipv4 expect", check.Config{Targets: tg, ExpectIPs: []netip.Addr{ip("192.0.2.1"), ip("192.0.2.2")}}, check.ErrTwoExpectIPs, "192.0.2.2"},
		{"unspecified expect", check.Config{Targets: tg, ExpectIPs: []netip.Addr{ip("0.0.0.0")}}, check.ErrBadExpectIP, "0.0.0.0"},
		{"mapped multicast expect", check.Config{Targets: tg, ExpectIPs: []netip.Addr{ip("::ffff:224.0.0.1")}}, check.ErrBadExpectIP, "224.0.0.1"},
		{"bad transport", check.Config{Targets: tg, Transports: []check.Transport{"sctp"}}, check.ErrBadTransport, "sctp"},
		{"bad reference", check.Config{Targets: tg, References: []string{"stuns:x"}}, check.ErrBadReference, "stuns:x"},
		{"negative timeout", check.Config{Targets: tg, Timeout: -time.Second}, check.ErrBadTimeout, "-1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check.New(tc.cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var ie *check.InputError
			if got := errors.As(err, &ie); got != (tc.wantInput != "") || got && ie.Input != tc.wantInput {
				t.Errorf("err = %#v, want an *InputError for %q", err, tc.wantInput)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a command-line flag", err)
			}
		})
	}
}

func TestResolveFailure(t *testing.T) {
	tg, err := check.ParseTarget("does-not-exist.invalid")
	if err != nil {
		t.Fatal(err)
	}
	c, err := check.New(check.Config{Targets: []check.Target{tg}, ExpectIPs: []netip.Addr{v4}, References: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run(context.Background())
	if !errors.Is(err, check.ErrResolve) || !strings.Contains(err.Error(), "does-not-exist.invalid") {
		t.Fatalf("err = %v, want ErrResolve naming the host", err)
	}
}

func TestResolveName(t *testing.T) {
	addrs := startStund(t)
	tg, err := check.ParseTarget("localhost:" + itoa(addrs[0].Port()))
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, check.Config{Targets: []check.Target{tg}, ExpectIPs: []netip.Addr{v4}, Transports: []check.Transport{check.UDP}})
	if len(rep.Probes) == 0 || rep.Probes[0].Address != addrs[0] || rep.Probes[0].Verdict != check.Preserved {
		t.Fatalf("probes %+v", rep.Probes)
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(v4, p).String()[len("127.0.0.1:"):]
}

// TestNATBehaviorCoturn runs --nat-behavior against coturn with two
// loopback addresses, where it offers OTHER-ADDRESS and honours
// CHANGE-REQUEST (RFC 5780). Loopback has no NAT: both behaviours must come
// out endpoint-independent, and the probe must report OTHER-ADDRESS.
func TestNATBehaviorCoturn(t *testing.T) {
	second := ip("127.0.0.2")
	c := stuntest.StartCoturn(t, []netip.Addr{v4, second})
	rep := run(t, check.Config{Targets: targets(t, c.Addr(v4)), ExpectIPs: []netip.Addr{v4},
		Transports: []check.Transport{check.UDP}, NATBehavior: true})
	if len(rep.Probes) != 1 {
		t.Fatalf("%d probes, want 1", len(rep.Probes))
	}
	p := rep.Probes[0]
	if !p.OtherAddress.IsValid() || p.OtherAddress.Addr() != second {
		t.Fatalf("OTHER-ADDRESS %v, want coturn's second address %s", p.OtherAddress, second)
	}
	if p.NAT == nil {
		t.Fatal("no NAT behaviour result")
	}
	if p.NAT.Mapping != check.EndpointIndependent || p.NAT.Filtering != check.EndpointIndependent {
		t.Errorf("mapping %s, filtering %s (%s); want endpoint-independent for both on loopback",
			p.NAT.Mapping, p.NAT.Filtering, p.NAT.Detail)
	}
	// Issue 13 item 15: the tests ran from a wildcard socket, and the
	// first step of RFC 5780 §4.3 (mapped = local: no NAT) never matched.
	if p.Local.Addr() != v4 {
		t.Errorf("local address %s, want the tests bound to %s", p.Local, v4)
	}
	if !p.NAT.NoNAT || p.Mapped != p.Local {
		t.Errorf("no NAT %v with mapped %s and local %s: RFC 5780 §4.3 says no NAT", p.NAT.NoNAT, p.Mapped, p.Local)
	}
}
