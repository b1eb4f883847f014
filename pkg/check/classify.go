package check

import (
	"fmt"
	"net/netip"

	"github.com/stund/stund/internal/netclass"
)

// class is the kind of address a server saw.
type class string

// Address classes. They come from the IANA special-purpose registries that
// stuncheck and stund share (internal/netclass).
const (
	classPublic    class = "public"
	classPrivate   class = "private"    // RFC 1918, ULA fc00::/7
	classCGNAT     class = "cgnat"      // 100.64.0.0/10 (RFC 6598)
	classLinkLocal class = "link-local" // 169.254.0.0/16, fe80::/10
	classLoopback  class = "loopback"   // 127.0.0.0/8, ::1
	// classSpecial is every other block that cannot be a client's public
	// source: unspecified, benchmarking (198.18.0.0/15), multicast,
	// broadcast, reserved.
	classSpecial class = "special"
)

// classify returns the class of ip. Documentation prefixes (TEST-NET-1..3,
// 2001:db8::/32) are public: they stand for real addresses in examples and
// labs.
func classify(ip netip.Addr) class {
	return classOf(netclass.Categorize(ip))
}

// classOf maps the shared address taxonomy onto the verdict rules' classes.
func classOf(c netclass.Category) class {
	switch c {
	case netclass.Public, netclass.Documentation:
		return classPublic
	case netclass.Private:
		return classPrivate
	case netclass.Shared:
		return classCGNAT
	case netclass.LinkLocal:
		return classLinkLocal
	case netclass.Loopback:
		return classLoopback
	default:
		return classSpecial
	}
}

// specialName names the special-purpose block of ip, as the IANA registry
// does, with its prefix: "Benchmarking, 198.18.0.0/15".
func specialName(ip netip.Addr) string {
	r, ok := netclass.Lookup(ip)
	if !ok {
		return "reserved"
	}

	return fmt.Sprintf("%s, %s", r.Name, r.Prefix)
}

// Verdict is the outcome of a probe or of a whole check.
type Verdict string

// Verdicts, from best to worst for the overall result.
const (
	Preserved    Verdict = "preserved"
	Inconclusive Verdict = "inconclusive"
	Rewritten    Verdict = "rewritten"
	// Failed is a TURN probe's verdict when the deployment is broken in
	// another way than a rewritten source: credentials rejected, a relayed
	// address peers cannot reach, a relay that carries nothing, a
	// certificate that does not verify.
	Failed Verdict = "failed"
)

// Reason is a short machine word saying why a probe got its verdict.
type Reason string

// Reasons. They are part of the JSON interface: never rename one.
const (
	ReasonSameAddress       Reason = "same-address"         // preserved, IP and port as sent
	ReasonPortChanged       Reason = "port-changed"         // preserved IP, different port
	ReasonPrivate           Reason = "private-address"      // rewritten
	ReasonCGNAT             Reason = "cgnat-address"        // rewritten
	ReasonLinkLocal         Reason = "link-local-address"   // rewritten
	ReasonLoopback          Reason = "loopback-address"     // rewritten
	ReasonTarget            Reason = "target-address"       // rewritten
	ReasonOtherPublic       Reason = "other-public-address" // rewritten
	ReasonSpecial           Reason = "special-address"      // rewritten
	ReasonNoResponse        Reason = "no-response"          // inconclusive
	ReasonRefused           Reason = "connection-refused"   // inconclusive
	ReasonErrorResponse     Reason = "error-response"       // inconclusive
	ReasonInvalidResponse   Reason = "invalid-response"     // inconclusive
	ReasonNetworkError      Reason = "network-error"        // inconclusive
	ReasonNoPublicIP        Reason = "no-public-ip"         // inconclusive
	ReasonUnsupportedFamily Reason = "no-local-address"     // inconclusive: this host has no address of the family
)

// observation is what one probe learned, the input to judge.
type observation struct {
	// Mapped is the address the server saw.
	Mapped netip.AddrPort
	// Local is the client socket's own address (for the port comparison).
	Local netip.AddrPort
	// Target is the server address the probe was sent to.
	Target netip.AddrPort
	// Public is the client's public IP in Mapped's family; invalid if unknown.
	Public netip.Addr
}

// Judgement is a verdict with its explanation.
type Judgement struct {
	Verdict Verdict
	Reason  Reason
	// Detail is one sentence saying what was seen.
	Detail string
	// Hint says what usually causes it and what to try; empty when
	// nothing needs doing.
	Hint string
}

// judge applies the verdict rules to one answered probe: preserved when
// the mapped IP is the public IP; otherwise rewritten, named by what the
// mapped address is; inconclusive when there is no public IP to compare.
func judge(o observation) Judgement {
	mapped := o.Mapped.Addr().Unmap()
	if !o.Public.IsValid() {
		return Judgement{
			Verdict: Inconclusive, Reason: ReasonNoPublicIP,
			Detail: fmt.Sprintf("The server saw %s (%s), but your public %s address is unknown, so there is nothing to compare it with.",
				o.Mapped, describeClass(classify(mapped), mapped, o.Target.Addr()), familyName(familyOf(mapped))),
			Hint: "Pass --expect-ip with your public IP, or --reference servers outside the load balancer that answer.",
		}
	}
	if mapped == o.Public.Unmap() {
		if o.Local.IsValid() && o.Mapped.Port() != o.Local.Port() {
			return Judgement{
				Verdict: Preserved, Reason: ReasonPortChanged,
				Detail: fmt.Sprintf("The server saw your public IP %s, with port %d instead of your local port %d: "+
					"your own NAT or the load balancer changed the port. That is normal and fine for NAT discovery.",
					mapped, o.Mapped.Port(), o.Local.Port()),
			}
		}

		return Judgement{
			Verdict: Preserved, Reason: ReasonSameAddress,
			Detail: fmt.Sprintf("The server saw your public IP %s and your port unchanged.", mapped),
		}
	}
	if mapped == o.Target.Addr().Unmap() && !mapped.IsLoopback() {
		return Judgement{
			Verdict: Rewritten, Reason: ReasonTarget,
			Detail: fmt.Sprintf("The server saw %s, the address you sent to: the load balancer is a proxy that opens its own connection to the server.", o.Mapped),
			Hint: "A proxying load balancer (an L4/L7 proxy, ipMode: Proxy, nginx, HAProxy, Envoy) always hides the client. " +
				"Use a passthrough load balancer (e.g. AWS NLB, GCP passthrough NLB, MetalLB) with externalTrafficPolicy: Local, " +
				"or enable PROXY protocol on the load balancer and the server (most providers offer it for TCP only).",
		}
	}
	j := Judgement{Verdict: Rewritten}
	switch classify(mapped) {
	case classPrivate:
		j.Reason = ReasonPrivate
		j.Detail = fmt.Sprintf("The server saw %s, a private address (RFC 1918 / ULA), instead of your public IP %s: something on the path source-NATed the traffic.", o.Mapped, o.Public)
		j.Hint = "Usually kube-proxy with externalTrafficPolicy: Cluster masquerading to a node address, or a cloud load balancer that SNATs to its internal address. " +
			"Set externalTrafficPolicy: Local on the Service (only nodes running a server pod then receive traffic), " +
			"use a passthrough load balancer, or PROXY protocol where the server supports it."
	case classCGNAT:
		j.Reason = ReasonCGNAT
		j.Detail = fmt.Sprintf("The server saw %s, a shared address (100.64.0.0/10), instead of your public IP %s: a carrier-grade NAT, an overlay network or the load balancer rewrote the source.", o.Mapped, o.Public)
		j.Hint = "If the 100.64/10 address belongs to the cluster or cloud network (some CNIs, overlays and cloud LBs use it), the load balancer or node SNATs: " +
			"use externalTrafficPolicy: Local or a passthrough load balancer. If you are behind a carrier-grade NAT yourself, check that --expect-ip is the address the internet sees."
	case classLinkLocal:
		j.Reason = ReasonLinkLocal
		j.Detail = fmt.Sprintf("The server saw %s, a link-local address, instead of your public IP %s: a node-local proxy or the node's own networking relayed the traffic.", o.Mapped, o.Public)
		j.Hint = "Link-local sources come from node-local proxies and some CNI or cloud LB data paths. Route STUN traffic to the pod without a proxy: " +
			"externalTrafficPolicy: Local with a passthrough load balancer."
	case classLoopback:
		j.Reason = ReasonLoopback
		j.Detail = fmt.Sprintf("The server saw %s, a loopback address, instead of your public IP %s: a proxy on the server's own host relayed the traffic.", o.Mapped, o.Public)
		j.Hint = "A sidecar proxy, a userspace proxy or kubectl port-forward in front of the server hides the client. Send STUN traffic straight to the server's port."
	case classSpecial:
		j.Reason = ReasonSpecial
		j.Detail = fmt.Sprintf("The server saw %s, a special-purpose address (%s) that cannot be a client's public source, instead of your public IP %s.",
			o.Mapped, specialName(mapped), o.Public)
		j.Hint = "The server or something on the path is broken; try another STUN server on the same path to tell which."
		if netclass.Categorize(mapped) == netclass.Benchmarking {
			j.Hint = "Benchmarking space is also used inside networks (lab gear, the fake-IP mode of some VPN and proxy tools): " +
				"a proxy or NAT on the path rewrote the source. Send STUN traffic around it, or check the server with another client."
		}
	default:
		j.Reason = ReasonOtherPublic
		j.Detail = fmt.Sprintf("The server saw %s, a public address that is not your public IP %s.", o.Mapped, o.Public)
		j.Hint = "Check --expect-ip first (a VPN, a second uplink or several egress IPs change it). If it is right, the load balancer proxies or SNATs to a public address: " +
			"use a passthrough load balancer with externalTrafficPolicy: Local, or PROXY protocol."
	}

	return j
}

// worst combines verdicts: rewritten beats failed beats inconclusive
// beats preserved. No verdicts at all is inconclusive.
func worst(vs ...Verdict) Verdict {
	if len(vs) == 0 {
		return Inconclusive
	}
	out := Preserved
	for _, v := range vs {
		switch {
		case v == Rewritten:
			return Rewritten
		case v == Failed:
			out = Failed
		case v != Preserved && out != Failed:
			out = Inconclusive
		}
	}

	return out
}

func describeClass(c class, ip, target netip.Addr) string {
	if ip == target.Unmap() {
		return "the address you sent to"
	}
	switch c {
	case classPrivate:
		return "a private address"
	case classCGNAT:
		return "a shared CGNAT address"
	case classLinkLocal:
		return "a link-local address"
	case classLoopback:
		return "a loopback address"
	case classSpecial:
		return "a special-purpose address (" + specialName(ip) + ")"
	default:
		return "a public address"
	}
}

func familyName(f Family) string {
	if f == IPv6 {
		return "IPv6"
	}

	return "IPv4"
}
