// Package netclass is the address taxonomy stund and stuncheck share: one
// table holding the IANA IPv4 and IPv6 Special-Purpose Address Registries
// (RFC 6890 and its updates) row by row, plus the few blocks of other IANA
// registries that matter for the same question (multicast, and the IPv6
// space outside global unicast).
//
// The question both programs ask is "can this address be a client's public
// source?". stund asks it of every request's source (its source_class
// label), stuncheck of the address a server says it saw (its verdict
// reason). Lookup returns the most specific row containing an address;
// Categorize and IsNonPublic answer from it.
//
// Documentation prefixes (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32, 3fff::/20) are not globally reachable, yet IsNonPublic
// counts them as public: they exist to stand for real addresses in
// examples, tests and labs (this project's lab uses them as the internet),
// and they never appear on the real internet, so treating them as public
// mislabels no real traffic. Their Category still says Documentation.
package netclass

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Category is what a block of addresses is for, as far as telling a
// client's public address from everything else needs.
type Category uint8

// Categories.
const (
	// Public is every address outside the special-purpose blocks, and the
	// special-purpose blocks IANA marks globally reachable (anycast
	// services, AS112, AMT, NAT64's well-known prefix) or that carry real
	// clients' addresses (Teredo, 6to4).
	Public Category = iota
	// Private is RFC 1918 private-use IPv4 and IPv6 unique-local fc00::/7.
	Private
	// Shared is the RFC 6598 shared address space 100.64.0.0/10 (CGNAT).
	Shared
	// Loopback is 127.0.0.0/8 and ::1.
	Loopback
	// LinkLocal is 169.254.0.0/16 and fe80::/10.
	LinkLocal
	// Documentation is TEST-NET-1..3, 2001:db8::/32 and 3fff::/20.
	Documentation
	// Benchmarking is 198.18.0.0/15 and 2001:2::/48.
	Benchmarking
	// Unspecified is "this network" 0.0.0.0/8 and the unspecified ::.
	Unspecified
	// Multicast is 224.0.0.0/4 and ff00::/8.
	Multicast
	// Broadcast is the limited broadcast 255.255.255.255.
	Broadcast
	// Reserved is every other block that is not globally reachable:
	// future use (240.0.0.0/4), IETF protocol assignments, discard-only,
	// SRv6 SIDs, IPv6 space outside 2000::/3, and the like.
	Reserved
)

var categoryNames = [...]string{
	Public:        "public",
	Private:       "private",
	Shared:        "shared",
	Loopback:      "loopback",
	LinkLocal:     "link-local",
	Documentation: "documentation",
	Benchmarking:  "benchmarking",
	Unspecified:   "unspecified",
	Multicast:     "multicast",
	Broadcast:     "broadcast",
	Reserved:      "reserved",
}

// String returns the category's name.
func (c Category) String() string {
	if int(c) < len(categoryNames) {
		return categoryNames[c]
	}

	return "unknown"
}

// Reach is a registry's "Globally Reachable" column: whether a datagram to
// the block may be forwarded beyond an administrative domain.
type Reach uint8

// Reach values.
const (
	// ReachNA is a row where the registry gives no value (deprecated
	// blocks, Teredo, 6to4) or a row from another registry.
	ReachNA Reach = iota
	ReachTrue
	ReachFalse
)

// Range is one row of the table.
type Range struct {
	Prefix netip.Prefix
	// Name is the registry's name for the block.
	Name string
	// RFC is the document that defines it.
	RFC string
	// Global is the registry's Globally Reachable column.
	Global Reach
	// Category is what stund and stuncheck make of it.
	Category Category
}

func row(prefix, name, rfc string, global Reach, c Category) Range {
	return Range{Prefix: netip.MustParsePrefix(prefix), Name: name, RFC: rfc, Global: global, Category: c}
}

// table holds the registries as IANA lists them (checked against the
// registries as updated in 2025). Nested rows are fine: Lookup picks the
// most specific one.
var table = []Range{
	// IANA IPv4 Special-Purpose Address Registry.
	row("0.0.0.0/8", `"This network"`, "RFC 791, Section 3.2", ReachFalse, Unspecified),
	row("0.0.0.0/32", `"This host on this network"`, "RFC 1122, Section 3.2.1.3", ReachFalse, Unspecified),
	row("10.0.0.0/8", "Private-Use", "RFC 1918", ReachFalse, Private),
	row("100.64.0.0/10", "Shared Address Space", "RFC 6598", ReachFalse, Shared),
	row("127.0.0.0/8", "Loopback", "RFC 1122, Section 3.2.1.3", ReachFalse, Loopback),
	row("169.254.0.0/16", "Link Local", "RFC 3927", ReachFalse, LinkLocal),
	row("172.16.0.0/12", "Private-Use", "RFC 1918", ReachFalse, Private),
	row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890, Section 2.1", ReachFalse, Reserved),
	row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", ReachFalse, Reserved),
	row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", ReachFalse, Reserved),
	row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", ReachTrue, Public),
	row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", ReachTrue, Public),
	row("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2", ReachFalse, Reserved),
	row("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2", ReachFalse, Reserved),
	row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", ReachFalse, Documentation),
	row("192.31.196.0/24", "AS112-v4", "RFC 7535", ReachTrue, Public),
	row("192.52.193.0/24", "AMT", "RFC 7450", ReachTrue, Public),
	row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", ReachNA, Public),
	row("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", ReachFalse, Reserved),
	row("192.168.0.0/16", "Private-Use", "RFC 1918", ReachFalse, Private),
	row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", ReachTrue, Public),
	row("198.18.0.0/15", "Benchmarking", "RFC 2544", ReachFalse, Benchmarking),
	row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", ReachFalse, Documentation),
	row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", ReachFalse, Documentation),
	row("240.0.0.0/4", "Reserved", "RFC 1112, Section 4", ReachFalse, Reserved),
	row("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 Section 7", ReachFalse, Broadcast),

	// IANA IPv6 Special-Purpose Address Registry.
	row("::1/128", "Loopback Address", "RFC 4291", ReachFalse, Loopback),
	row("::/128", "Unspecified Address", "RFC 4291", ReachFalse, Unspecified),
	// Lookup unmaps first, so an IPv4-mapped address gets the row of
	// the IPv4 address inside it; this row only completes the registry.
	row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", ReachFalse, Reserved),
	row("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", ReachTrue, Public),
	row("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", ReachFalse, Reserved),
	row("100::/64", "Discard-Only Address Block", "RFC 6666", ReachFalse, Reserved),
	row("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", ReachFalse, Reserved),
	row("2001::/23", "IETF Protocol Assignments", "RFC 2928", ReachFalse, Reserved),
	// Teredo and 6to4 carry real hosts' addresses: the address the
	// internet sees for a tunnelled client is its public address.
	row("2001::/32", "TEREDO", "RFC 4380, RFC 8190", ReachNA, Public),
	row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", ReachTrue, Public),
	row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", ReachTrue, Public),
	row("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", ReachTrue, Public),
	row("2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752", ReachFalse, Benchmarking),
	row("2001:3::/32", "AMT", "RFC 7450", ReachTrue, Public),
	row("2001:4:112::/48", "AS112-v6", "RFC 7535", ReachTrue, Public),
	row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", ReachNA, Reserved),
	row("2001:20::/28", "ORCHIDv2", "RFC 7343", ReachTrue, Public),
	row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", ReachTrue, Public),
	row("2001:db8::/32", "Documentation", "RFC 3849", ReachFalse, Documentation),
	row("2002::/16", "6to4", "RFC 3056", ReachNA, Public),
	row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", ReachTrue, Public),
	row("3fff::/20", "Documentation", "RFC 9637", ReachFalse, Documentation),
	row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", ReachFalse, Reserved),
	row("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", ReachFalse, Private),
	row("fe80::/10", "Link-Local Unicast", "RFC 4291", ReachFalse, LinkLocal),

	// IANA IPv4 and IPv6 Multicast Address Space Registries.
	row("224.0.0.0/4", "Multicast", "RFC 5771", ReachNA, Multicast),
	row("ff00::/8", "Multicast", "RFC 4291", ReachNA, Multicast),

	// IANA IPv6 Address Space: only 2000::/3 is allocated for global
	// unicast; the rest is reserved by the IETF unless a row above says
	// otherwise (fc00::/7, fe80::/10, ff00::/8, 64:ff9b::/96, ...).
	row("::/0", "Reserved by IETF", "RFC 4291", ReachNA, Reserved),
	row("2000::/3", "Global Unicast", "RFC 4291", ReachNA, Public),
}

// Ranges returns a copy of the table, in registry order.
func Ranges() []Range { return slices.Clone(table) }

// span is a run of addresses, from start to the next span's start, whose
// most specific row is the same (nil: no row). start is the address as a
// 128-bit number (IPv4 in the low 32 bits of lo).
type span struct {
	hi, lo uint64
	r      *Range
}

// spans4 and spans6 flatten the nested table into sorted, disjoint runs,
// so that a lookup is one binary search over integers: stund classifies
// every request's source.
var spans4, spans6 = flatten(true), flatten(false)

func key(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()

	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func flatten(v4 bool) []span {
	var rows []*Range
	for i := range table {
		if table[i].Prefix.Addr().Is4() == v4 {
			rows = append(rows, &table[i])
		}
	}
	first := netip.IPv6Unspecified()
	if v4 {
		first = netip.IPv4Unspecified()
	}
	starts := []netip.Addr{first}
	for _, r := range rows {
		starts = append(starts, r.Prefix.Masked().Addr())
		if next := last(r.Prefix).Next(); next.IsValid() {
			starts = append(starts, next)
		}
	}
	slices.SortFunc(starts, netip.Addr.Compare)
	starts = slices.Compact(starts)
	var out []span
	for _, s := range starts {
		var best *Range
		for _, r := range rows {
			if r.Prefix.Contains(s) && (best == nil || r.Prefix.Bits() > best.Prefix.Bits()) {
				best = r
			}
		}
		if len(out) > 0 && out[len(out)-1].r == best {
			continue
		}
		hi, lo := key(s)
		out = append(out, span{hi: hi, lo: lo, r: best})
	}

	return out
}

// find returns the most specific row containing addr, or nil.
func find(addr netip.Addr) *Range {
	if !addr.IsValid() {
		return nil
	}
	addr = addr.Unmap()
	spans := spans6
	if addr.Is4() {
		spans = spans4
	}
	hi, lo := key(addr)
	// The last span that starts at or before addr; spans[0] starts at
	// the family's first address.
	i, j := 0, len(spans)
	for j-i > 1 {
		m := int(uint(i+j) >> 1)
		if s := spans[m]; s.hi < hi || s.hi == hi && s.lo <= lo {
			i = m
		} else {
			j = m
		}
	}

	return spans[i].r
}

// last returns the highest address of p.
func last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)

	return a
}

// Lookup returns the most specific row containing addr, after unmapping an
// IPv4-mapped IPv6 address (a zone is ignored). ok is false when no row
// contains it (an ordinary IPv4 address) or addr is invalid.
func Lookup(addr netip.Addr) (r Range, ok bool) {
	if p := find(addr); p != nil {
		return *p, true
	}

	return Range{}, false
}

// Categorize returns the category of addr: its row's, or Public when no
// row holds it. An invalid address is Reserved.
func Categorize(addr netip.Addr) Category {
	if !addr.IsValid() {
		return Reserved
	}
	r := find(addr)
	if r == nil {
		return Public
	}

	return r.Category
}

// IsNonPublic reports whether addr can never be a client's public source
// address: private, shared (CGNAT), loopback, link-local, benchmarking,
// unspecified, multicast, broadcast or reserved. Documentation addresses
// count as public (see the package comment).
func IsNonPublic(addr netip.Addr) bool {
	switch Categorize(addr) {
	case Public, Documentation:
		return false
	default:
		return true
	}
}
