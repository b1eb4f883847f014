package netclass

import (
	"net/netip"
	"testing"
)

// registry lists every row of the IANA IPv4 and IPv6 Special-Purpose
// Address Registries (and the multicast and IPv6 address-space rows the
// table adds) with addresses inside it, written out here rather than
// derived from the table, so that a wrong prefix in the table fails.
var registry = []struct {
	prefix    string // the row, as IANA writes it
	addrs     []string
	name      string // the row Lookup must return (a nested row may win)
	category  Category
	nonPublic bool
}{
	// IPv4.
	{"0.0.0.0/8", []string{"0.0.0.1", "0.255.255.255"}, `"This network"`, Unspecified, true},
	{"0.0.0.0/32", []string{"0.0.0.0"}, `"This host on this network"`, Unspecified, true},
	{"10.0.0.0/8", []string{"10.0.0.0", "10.1.2.3", "10.255.255.255"}, "Private-Use", Private, true},
	{"100.64.0.0/10", []string{"100.64.0.0", "100.127.255.255"}, "Shared Address Space", Shared, true},
	{"127.0.0.0/8", []string{"127.0.0.1", "127.255.255.254"}, "Loopback", Loopback, true},
	{"169.254.0.0/16", []string{"169.254.0.1", "169.254.255.255"}, "Link Local", LinkLocal, true},
	{"172.16.0.0/12", []string{"172.16.0.0", "172.31.255.255"}, "Private-Use", Private, true},
	{"192.0.0.0/24", []string{"192.0.0.100", "192.0.0.255"}, "IETF Protocol Assignments", Reserved, true},
	{"192.0.0.0/29", []string{"192.0.0.0", "192.0.0.1", "192.0.0.7"}, "IPv4 Service Continuity Prefix", Reserved, true},
	{"192.0.0.8/32", []string{"192.0.0.8"}, "IPv4 dummy address", Reserved, true},
	{"192.0.0.9/32", []string{"192.0.0.9"}, "Port Control Protocol Anycast", Public, false},
	{"192.0.0.10/32", []string{"192.0.0.10"}, "Traversal Using Relays around NAT Anycast", Public, false},
	{"192.0.0.170/32", []string{"192.0.0.170"}, "NAT64/DNS64 Discovery", Reserved, true},
	{"192.0.0.171/32", []string{"192.0.0.171"}, "NAT64/DNS64 Discovery", Reserved, true},
	{"192.0.2.0/24", []string{"192.0.2.0", "192.0.2.255"}, "Documentation (TEST-NET-1)", Documentation, false},
	{"192.31.196.0/24", []string{"192.31.196.1"}, "AS112-v4", Public, false},
	{"192.52.193.0/24", []string{"192.52.193.1"}, "AMT", Public, false},
	{"192.88.99.0/24", []string{"192.88.99.1", "192.88.99.255"}, "Deprecated (6to4 Relay Anycast)", Public, false},
	{"192.88.99.2/32", []string{"192.88.99.2"}, "6a44-relay anycast address", Reserved, true},
	{"192.168.0.0/16", []string{"192.168.0.0", "192.168.255.255"}, "Private-Use", Private, true},
	{"192.175.48.0/24", []string{"192.175.48.1"}, "Direct Delegation AS112 Service", Public, false},
	{"198.18.0.0/15", []string{"198.18.0.0", "198.18.0.5", "198.19.255.255"}, "Benchmarking", Benchmarking, true},
	{"198.51.100.0/24", []string{"198.51.100.7"}, "Documentation (TEST-NET-2)", Documentation, false},
	{"203.0.113.0/24", []string{"203.0.113.10"}, "Documentation (TEST-NET-3)", Documentation, false},
	{"240.0.0.0/4", []string{"240.0.0.0", "255.255.255.254"}, "Reserved", Reserved, true},
	{"255.255.255.255/32", []string{"255.255.255.255"}, "Limited Broadcast", Broadcast, true},
	{"224.0.0.0/4", []string{"224.0.0.1", "239.255.255.255"}, "Multicast", Multicast, true},

	// IPv6.
	{"::1/128", []string{"::1"}, "Loopback Address", Loopback, true},
	{"::/128", []string{"::"}, "Unspecified Address", Unspecified, true},
	{"64:ff9b::/96", []string{"64:ff9b::192.0.2.33", "64:ff9b::ffff:ffff"}, "IPv4-IPv6 Translat.", Public, false},
	{"64:ff9b:1::/48", []string{"64:ff9b:1::1", "64:ff9b:1:ffff::1"}, "IPv4-IPv6 Translat.", Reserved, true},
	{"100::/64", []string{"100::", "100::ffff:ffff:ffff:ffff"}, "Discard-Only Address Block", Reserved, true},
	{"100:0:0:1::/64", []string{"100:0:0:1::1"}, "Dummy IPv6 Prefix", Reserved, true},
	{"2001::/23", []string{"2001:100::1", "2001:1ff:ffff::1"}, "IETF Protocol Assignments", Reserved, true},
	{"2001::/32", []string{"2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"}, "TEREDO", Public, false},
	{"2001:1::1/128", []string{"2001:1::1"}, "Port Control Protocol Anycast", Public, false},
	{"2001:1::2/128", []string{"2001:1::2"}, "Traversal Using Relays around NAT Anycast", Public, false},
	{"2001:1::3/128", []string{"2001:1::3"}, "DNS-SD Service Registration Protocol Anycast", Public, false},
	{"2001:2::/48", []string{"2001:2::1", "2001:2:0:ffff::1"}, "Benchmarking", Benchmarking, true},
	{"2001:3::/32", []string{"2001:3::1"}, "AMT", Public, false},
	{"2001:4:112::/48", []string{"2001:4:112::1"}, "AS112-v6", Public, false},
	{"2001:10::/28", []string{"2001:10::1", "2001:1f::1"}, "Deprecated (previously ORCHID)", Reserved, true},
	{"2001:20::/28", []string{"2001:20::1", "2001:2f::1"}, "ORCHIDv2", Public, false},
	{"2001:30::/28", []string{"2001:30::1", "2001:3f::1"}, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", Public, false},
	{"2001:db8::/32", []string{"2001:db8::1"}, "Documentation", Documentation, false},
	{"2002::/16", []string{"2002:c000:204::1"}, "6to4", Public, false},
	{"2620:4f:8000::/48", []string{"2620:4f:8000::1"}, "Direct Delegation AS112 Service", Public, false},
	{"3fff::/20", []string{"3fff::1", "3fff:fff:ffff::1"}, "Documentation", Documentation, false},
	{"5f00::/16", []string{"5f00::1"}, "Segment Routing (SRv6) SIDs", Reserved, true},
	{"fc00::/7", []string{"fc00::1", "fd00::1", "fdff:ffff::1"}, "Unique-Local", Private, true},
	{"fe80::/10", []string{"fe80::1", "febf::1"}, "Link-Local Unicast", LinkLocal, true},
	{"ff00::/8", []string{"ff02::1", "ff0e::1"}, "Multicast", Multicast, true},
	{"::/0", []string{"::2", "4000::1", "fec0::1", "fe00::1"}, "Reserved by IETF", Reserved, true},
	{"2000::/3", []string{"2000::1", "2a00:1450::1", "3ffe::1", "3fff:1000::1"}, "Global Unicast", Public, false},
}

func TestRegistry(t *testing.T) {
	for _, tc := range registry {
		for _, a := range tc.addrs {
			t.Run(tc.prefix+"/"+a, func(t *testing.T) {
				addr := netip.MustParseAddr(a)
				r, ok := Lookup(addr)
				if !ok || r.Name != tc.name || r.Category != tc.category {
					t.Fatalf("Lookup(%s) = %q %s (found %v), want %q %s", a, r.Name, r.Category, ok, tc.name, tc.category)
				}
				if c := Categorize(addr); c != tc.category {
					t.Errorf("Categorize(%s) = %s, want %s", a, c, tc.category)
				}
				if got := IsNonPublic(addr); got != tc.nonPublic {
					t.Errorf("IsNonPublic(%s) = %v, want %v", a, got, tc.nonPublic)
				}
			})
		}
	}
}

// TestRegistryComplete fails when the table gains or loses a row that the
// vectors above do not list: every row needs its own test addresses.
func TestRegistryComplete(t *testing.T) {
	listed := map[netip.Prefix]bool{}
	for _, tc := range registry {
		listed[netip.MustParsePrefix(tc.prefix)] = true
	}
	rows := map[netip.Prefix]bool{}
	for _, r := range Ranges() {
		rows[r.Prefix] = true
		if r.Prefix == netip.MustParsePrefix("::ffff:0:0/96") {
			continue // checked by TestMapped: Lookup unmaps first
		}
		if !listed[r.Prefix] {
			t.Errorf("row %s (%s) has no test vector", r.Prefix, r.Name)
		}
	}
	for p := range listed {
		if !rows[p] {
			t.Errorf("test vector %s is not a row of the table", p)
		}
	}
}

// TestReachability checks each row's category against the registry's
// Globally Reachable column: a reachable block is public, an unreachable
// one is not (documentation aside, by design).
func TestReachability(t *testing.T) {
	for _, r := range Ranges() {
		switch r.Global {
		case ReachTrue:
			if r.Category != Public {
				t.Errorf("%s (%s) is globally reachable but %s", r.Prefix, r.Name, r.Category)
			}
		case ReachFalse:
			if r.Category == Public {
				t.Errorf("%s (%s) is not globally reachable but public", r.Prefix, r.Name)
			}
		}
		if r.Name == "" || r.RFC == "" || !r.Prefix.IsValid() || r.Prefix != r.Prefix.Masked() {
			t.Errorf("incomplete or unmasked row %+v", r)
		}
	}
}

// TestEdges checks the addresses just outside blocks, where an off-by-one
// in a prefix or in the flattening would show.
func TestEdges(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want Category
	}{
		{"1.0.0.0", Public},
		{"9.255.255.255", Public},
		{"11.0.0.0", Public},
		{"100.63.255.255", Public},
		{"100.128.0.0", Public},
		{"172.15.255.255", Public},
		{"172.32.0.0", Public},
		{"192.0.1.255", Public},
		{"192.0.3.0", Public},
		{"192.88.98.255", Public},
		{"192.88.100.0", Public},
		{"192.167.255.255", Public},
		{"192.169.0.0", Public},
		{"198.17.255.255", Public},
		{"198.20.0.0", Public},
		{"223.255.255.255", Public},
		{"8.8.8.8", Public},
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved},
		{"4000::", Reserved},
		{"2001:200::1", Public},
		{"2001:db7:ffff::1", Public},
		{"2001:db9::1", Public},
		{"2003::1", Public},
		{"3fff:1000::", Public},
		{"fe80::1%eth0", LinkLocal},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast},
	} {
		if got := Categorize(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Categorize(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := Categorize(netip.Addr{}); got != Reserved {
		t.Errorf("Categorize(invalid) = %s, want reserved", got)
	}
	if _, ok := Lookup(netip.MustParseAddr("8.8.8.8")); ok {
		t.Error("Lookup(8.8.8.8) found a row")
	}
}

// TestMapped checks that an IPv4-mapped IPv6 address is judged by the IPv4
// address inside it: ::ffff:127.0.0.1 must not slip past as IPv6.
func TestMapped(t *testing.T) {
	for _, tc := range registry {
		for _, a := range tc.addrs {
			addr := netip.MustParseAddr(a)
			if !addr.Is4() {
				continue
			}
			mapped := netip.AddrFrom16(addr.As16())
			if got := Categorize(mapped); got != tc.category {
				t.Errorf("Categorize(%s) = %s, want %s like %s", mapped, got, tc.category, a)
			}
		}
	}
}

// TestSpans checks the flattened table against a plain scan of the rows at
// every row's first and last address and their neighbours.
func TestSpans(t *testing.T) {
	scan := func(a netip.Addr) (Range, bool) {
		var best Range
		found := false
		for _, r := range table {
			if r.Prefix.Contains(a) && (!found || r.Prefix.Bits() > best.Prefix.Bits()) {
				best, found = r, true
			}
		}
		return best, found
	}
	for _, r := range table {
		for _, a := range []netip.Addr{r.Prefix.Addr().Prev(), r.Prefix.Addr(), last(r.Prefix), last(r.Prefix).Next()} {
			if !a.IsValid() || a.Is4In6() {
				continue
			}
			want, wantOK := scan(a)
			got, ok := Lookup(a)
			if ok != wantOK || got != want {
				t.Errorf("Lookup(%s) = %v %+v, a scan finds %v %+v", a, ok, got, wantOK, want)
			}
		}
	}
}

func BenchmarkIsNonPublic(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("10.1.0.2"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fd00::1"),
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		IsNonPublic(addrs[i%len(addrs)])
	}
}
