package server

import (
	"net/netip"
	"testing"
)

// TestClassifySpecialPurpose checks the source classes of the IANA
// special-purpose blocks that the old check (RFC 1918, CGNAT, loopback,
// link-local, unspecified, multicast) let through as clients: benchmarking
// 198.18.0.0/15 first of all (issue 13 item 16), and the limited broadcast,
// which can never be a source.
func TestClassifySpecialPurpose(t *testing.T) {
	var c StaticClassifier
	for _, tc := range []struct {
		addr string
		want SourceClass
	}{
		{"198.18.0.5", ClassPrivate}, // benchmarking
		{"198.19.255.255", ClassPrivate},
		{"::ffff:198.18.0.5", ClassPrivate},
		{"2001:2::1", ClassPrivate},       // benchmarking, IPv6
		{"255.255.255.255", ClassPrivate}, // limited broadcast
		{"240.0.0.1", ClassPrivate},       // reserved
		{"0.1.2.3", ClassPrivate},         // "this network"
		{"192.0.0.8", ClassPrivate},       // IETF protocol assignments
		{"192.88.99.2", ClassPrivate},     // 6a44 relay
		{"64:ff9b:1::1", ClassPrivate},
		{"100::1", ClassPrivate},  // discard-only
		{"5f00::1", ClassPrivate}, // SRv6 SIDs
		{"4000::1", ClassPrivate}, // outside 2000::/3
		{"2001:10::1", ClassPrivate},
		{"198.17.255.255", ClassClient},
		{"198.20.0.0", ClassClient},
		{"192.0.0.9", ClassClient},           // PCP anycast: globally reachable
		{"64:ff9b::c000:221", ClassClient},   // NAT64 well-known prefix
		{"2001:0:4136:e378::1", ClassClient}, // Teredo client
		{"2002:c000:204::1", ClassClient},    // 6to4 client
		// Documentation prefixes stand for the internet in tests and
		// the lab.
		{"192.0.2.1", ClassClient},
		{"198.51.100.7", ClassClient},
		{"203.0.113.10", ClassClient},
		{"2001:db8::1", ClassClient},
		{"3fff::1", ClassClient},
	} {
		if got := c.Classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Classify(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
