package check

import (
	"net/netip"
	"strings"

	"github.com/stund/stund/internal/netclass"
)

// ReasonText is the wording of one reason as a template: Detail and Hint
// with placeholders in braces that a renderer outside Go (stuncheck's web
// page) fills in: {mapped} (the address the server saw, IP:port),
// {mapped_ip}, {mapped_port}, {local_port}, {public} (the public IP),
// {class} (what kind of address {mapped} is), {family} (IPv4 or IPv6),
// {special} (the special-purpose block), {relayed} (a TURN relayed IP),
// {error} and {realm} (a TURN server's error reason and realm).
type ReasonText struct {
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`
	Hint    string  `json:"hint,omitempty"`
}

// Example addresses that ReasonTexts feeds to the verdict rules and then
// replaces by placeholders. None occurs in the fixed wording.
var (
	sentinelPublic   = netip.MustParseAddr("203.0.113.9")
	sentinelTarget   = netip.MustParseAddrPort("192.0.2.55:3478")
	sentinelLocal    = netip.MustParseAddrPort("192.168.77.7:55555")
	sentinelPort     = uint16(44444)
	sentinelPortMove = uint16(33333)
)

// ReasonTexts returns the wording of every reason that a page can reach
// from what a browser sees (a mapped address, a relayed address, a TURN
// error), produced by the same rules that judge stuncheck's probes: the
// CLI and the page cannot drift apart. ClassTexts names the {class}
// values.
func ReasonTexts() map[Reason]ReasonText {
	out := map[Reason]ReasonText{}
	add := func(j Judgement, vars [][2]string) {
		pairs := make([]string, 0, 2*len(vars))
		for _, v := range vars {
			pairs = append(pairs, v[0], v[1])
		}
		r := strings.NewReplacer(pairs...)
		out[j.Reason] = ReasonText{Verdict: j.Verdict, Detail: r.Replace(j.Detail), Hint: r.Replace(j.Hint)}
	}
	mapped := func(ip string, port uint16) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr(ip), port)
	}
	for _, ip := range []string{"10.11.12.13", "100.64.1.2", "169.254.1.2", "127.0.0.2", "240.0.0.1", "198.51.100.77", sentinelTarget.Addr().String()} {
		m := mapped(ip, sentinelPort)
		if ip == sentinelTarget.Addr().String() {
			m = sentinelTarget
		}
		j := judge(observation{Mapped: m, Local: sentinelLocal, Target: sentinelTarget, Public: sentinelPublic})
		add(j, [][2]string{{m.String(), "{mapped}"}, {specialName(m.Addr()), "{special}"}, {sentinelPublic.String(), "{public}"}, {ip, "{mapped_ip}"}})
	}
	same := netip.AddrPortFrom(sentinelPublic, sentinelLocal.Port())
	add(judge(observation{Mapped: same, Local: sentinelLocal, Target: sentinelTarget, Public: sentinelPublic}),
		[][2]string{{same.String(), "{mapped}"}, {sentinelPublic.String(), "{public}"}})
	moved := netip.AddrPortFrom(sentinelPublic, sentinelPortMove)
	add(judge(observation{Mapped: moved, Local: sentinelLocal, Target: sentinelTarget, Public: sentinelPublic}),
		[][2]string{{moved.String(), "{mapped}"}, {sentinelPublic.String(), "{public}"}, {"33333", "{mapped_port}"}, {"55555", "{local_port}"}})
	unknown := mapped("10.11.12.13", sentinelPort)
	add(judge(observation{Mapped: unknown, Local: sentinelLocal, Target: sentinelTarget}),
		[][2]string{{unknown.String(), "{mapped}"}, {describeClass(classPrivate, unknown.Addr(), sentinelTarget.Addr()), "{class}"}, {"IPv4", "{family}"}})
	add(rejected("{error}", "{realm}", false), nil)
	relayed := netip.MustParseAddr("10.11.12.13")
	class, detail := classifyRelayed(relayed, sentinelTarget.Addr())
	add(judgeTURN(Judgement{Verdict: Preserved}, &TURNResult{RelayedClass: class, RelayedDetail: detail, Relay: TURNRelay{Status: RelayNotTested}}),
		[][2]string{{relayed.String(), "{relayed}"}})

	return out
}

// ClassTexts returns how the reason texts name each class of address
// ({class}): "private" is "a private address".
func ClassTexts() map[string]string {
	out := map[string]string{}
	for c, ip := range map[class]string{
		classPublic: "198.51.100.77", classPrivate: "10.11.12.13", classCGNAT: "100.64.1.2",
		classLinkLocal: "169.254.1.2", classLoopback: "127.0.0.2",
	} {
		a := netip.MustParseAddr(ip)
		out[string(c)] = describeClass(c, a, sentinelTarget.Addr())
	}
	out["target"] = describeClass(classPublic, sentinelTarget.Addr(), sentinelTarget.Addr())

	return out
}

// AddressRange is one special-purpose block of the IANA registries and the
// class the verdict rules give the addresses in it. An address in no block
// is public; in nested blocks, the most specific one counts.
type AddressRange struct {
	Prefix string `json:"prefix"`
	// Class is "public", "private", "cgnat", "link-local", "loopback" or
	// "special".
	Class string `json:"class"`
	// Name is the block's name and prefix, as the texts' {special}.
	Name string `json:"name"`
}

// AddressRanges returns the blocks the verdict rules classify addresses
// by, for renderers that classify addresses themselves.
func AddressRanges() []AddressRange {
	var out []AddressRange
	for _, r := range netclass.Ranges() {
		out = append(out, AddressRange{Prefix: r.Prefix.String(), Class: string(classOf(r.Category)), Name: r.Name + ", " + r.Prefix.String()})
	}

	return out
}
