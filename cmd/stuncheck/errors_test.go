package main

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/stund/stund/pkg/check"
)

// TestExitCode pins the exit codes that --help promises for each verdict.
func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		verdict check.Verdict
		want    int
	}{
		{check.Preserved, 0},
		{check.Rewritten, 1},
		{check.Inconclusive, 3},
		{"", 3},
	} {
		if got := exitCode(tc.verdict); got != tc.want {
			t.Errorf("exitCode(%q) = %d, want %d", tc.verdict, got, tc.want)
		}
	}
}

func TestParseTransports(t *testing.T) {
	tests := []struct {
		in      string
		want    []check.Transport
		wantErr string
	}{
		{in: "udp", want: []check.Transport{check.UDP}},
		{in: "tcp", want: []check.Transport{check.TCP}},
		{in: "udp,tcp", want: []check.Transport{check.UDP, check.TCP}},
		{in: "tcp,udp", want: []check.Transport{check.TCP, check.UDP}},
		{in: "UDP", want: []check.Transport{check.UDP}},
		{in: "udp,udp", wantErr: `--transport "udp" given twice`},
		{in: "sctp", wantErr: `--transport "sctp": want udp, tcp or udp,tcp`},
		{in: "", wantErr: `--transport "": want udp, tcp or udp,tcp`},
		{in: "tls", wantErr: `--transport "tls": want udp, tcp or udp,tcp`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTransports(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}

				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestConfigErrorMessage checks the words for check.New's errors: the
// inputs that come from a flag are named by it.
func TestConfigErrorMessage(t *testing.T) {
	tg, err := check.ParseTarget("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		cfg  check.Config
		want string
	}{
		{"unspecified expect-ip", check.Config{ExpectIPs: []netip.Addr{ip("0.0.0.0")}}, "--expect-ip 0.0.0.0 is not a unicast address"},
		{"two expect-ip", check.Config{ExpectIPs: []netip.Addr{ip("192.0.2.1"), ip("192.0.2.2")}},
			"two IPv4 expected IPs (192.0.2.1 and 192.0.2.2): give at most one per family"},
		{"bad reference", check.Config{References: []string{"stuns:x"}},
			`reference: target "stuns:x": stuns: (STUN over TLS) is not supported; stuncheck probes plain UDP and TCP: use stun:HOST[:PORT] with the server's plain port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Targets = []check.Target{tg}
			_, err := check.New(tc.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if got := configErrorMessage(err); got != tc.want {
				t.Errorf("message %q, want %q", got, tc.want)
			}
		})
	}
}
