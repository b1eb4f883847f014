//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestNATBehaviorMultihomed runs issue 13 item 15: a client host with two
// addresses and no NAT asks coturn, listening on two addresses with RFC 5780
// on, for its NAT behaviour. Each of the client's addresses is on the subnet
// of one of coturn's, so the kernel sends to coturn's OTHER-ADDRESS from the
// client's second address. A test socket bound to the wildcard address took
// that for an address-dependent mapping; bound to the address of the first
// probe, the server sees the local address and RFC 5780 §4.3 says: no NAT.
//
//	client 192.0.2.10/24    ── one link ── server 192.0.2.1   (coturn, primary)
//	       198.51.100.10/24                       198.51.100.1 (coturn, OTHER-ADDRESS)
//	       (and the same with 2001:db8:a::/64 and 2001:db8:b::/64)
func TestNATBehaviorMultihomed(t *testing.T) {
	requireTool(t, "turnserver", "coturn")
	lab := NewLab(t)
	client, server := lab.Host("client"), lab.Host("server")
	lab.Connect(
		client.At("192.0.2.10/24", "198.51.100.10/24", "2001:db8:a::10/64", "2001:db8:b::10/64"),
		server.At("192.0.2.1/24", "198.51.100.1/24", "2001:db8:a::1/64", "2001:db8:b::1/64"),
	)
	StartCoturn(t, server, []string{"192.0.2.1", "198.51.100.1", "2001:db8:a::1", "2001:db8:b::1"})

	for _, tc := range []struct {
		name                  string
		local, second         string // the client's addresses
		primary, otherAddress string // coturn's
	}{
		{"ipv4", "192.0.2.10", "198.51.100.10", "192.0.2.1", "198.51.100.1"},
		{"ipv6", "2001:db8:a::10", "2001:db8:b::10", "2001:db8:a::1", "2001:db8:b::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The premise: this host reaches coturn's other address
			// from its other address.
			if out := client.MustExec("ip", "route", "get", tc.otherAddress); !strings.Contains(out, "src "+tc.second+" ") {
				t.Fatalf("the client does not reach %s from %s, so the scenario is not multi-homed:\n%s", tc.otherAddress, tc.second, out)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := client.Command(ctx, binPath(t, "stuncheck"), "--nat-behavior", "-o", "json", "--transport", "udp",
				"--timeout", "3s", "--expect-ip", tc.local, hostPort(tc.primary, stunPort))
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			t.Logf("$ %s\n%s%s", strings.Join(cmd.Args[4:], " "), stdout.String(), stderr.String())
			if err != nil {
				t.Fatalf("stuncheck: %v (want exit 0: preserved)", err)
			}
			var rep struct {
				Verdict string `json:"verdict"`
				Probes  []struct {
					Local        string `json:"local"`
					Mapped       string `json:"mapped"`
					OtherAddress string `json:"other_address"`
					NAT          *struct {
						Mapping   string `json:"mapping"`
						Filtering string `json:"filtering"`
						NoNAT     bool   `json:"no_nat"`
						Detail    string `json:"detail"`
					} `json:"nat_behavior"`
				} `json:"probes"`
			}
			if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
				t.Fatalf("stuncheck -o json printed no valid JSON: %v", err)
			}
			if rep.Verdict != "preserved" || len(rep.Probes) != 1 || rep.Probes[0].NAT == nil {
				t.Fatalf("report %+v, want one preserved probe with NAT behaviour", rep)
			}
			p := rep.Probes[0]
			if other, err := netip.ParseAddrPort(p.OtherAddress); err != nil || other.Addr().String() != tc.otherAddress {
				t.Fatalf("OTHER-ADDRESS %q, want coturn's second address %s: without it the tests do not run", p.OtherAddress, tc.otherAddress)
			}
			if local, err := netip.ParseAddrPort(p.Local); err != nil || local.Addr().String() != tc.local {
				t.Errorf("the tests ran from %q, want the address of the first probe %s", p.Local, tc.local)
			}
			if p.NAT.Mapping == "address-dependent" || p.NAT.Mapping == "address-and-port-dependent" {
				t.Errorf("mapping %s on a host without NAT (%s)", p.NAT.Mapping, p.NAT.Detail)
			}
			if p.NAT.Mapping != "endpoint-independent" || p.NAT.Filtering != "endpoint-independent" || !p.NAT.NoNAT {
				t.Errorf("NAT behaviour %+v, want no NAT: endpoint-independent mapping and filtering", *p.NAT)
			}
		})
	}
}
