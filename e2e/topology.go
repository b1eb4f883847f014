//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// The lab's addresses. "Public" ones come from the documentation ranges,
// inside ones from RFC 1918 and ULA space.
//
//	                     reference (coturn) 192.0.2.53 / 2001:db8:5::53
//	                        │
//	client ───────────── internet ───────────── lb ──────────── node ──────────── pod
//	203.0.113.10            (router)       VIP 198.51.100.7  10.1.0.2          10.244.0.2
//	2001:db8:c::10                         VIP 2001:db8:7::7 fd00:1::2         fd00:244::2
//	                                       in  10.1.0.1      NodePort 31478    stund :3478
//	                                       in  fd00:1::1
//
// With a home NAT, the client sits at 192.168.1.10 / fd00:168:1::10 behind a
// "home" router that takes the public addresses above.
const (
	stunPort    = 3478  // what clients connect to, on the VIP and in the pod
	nodePort    = 31478 // the Service's NodePort on the node
	metricsPort = 9478  // stund's --http-listen port in the pod
)

// A family holds the lab's addresses for one IP version.
type family struct {
	Name      string // "ipv4" or "ipv6", as in stund's metric labels
	Short     string // "4" or "6", for test names
	Public    string // the client's public address (its own, or its home NAT's)
	Home      string // the client's address behind the home NAT
	HomeGW    string // the home router's inside address
	VIP       string // the load balancer's public address
	Reference string // the reference STUN server on the internet
	LBInside  string // the load balancer's address towards the node
	Node      string // the node's address
	Pod       string // the pod's address
	PodGW     string // the node's address towards the pod
	Bits      string // prefix length of every lab subnet
	NFT       string // nftables' name for the family in rules: "ip" or "ip6"
}

var (
	ipv4 = family{
		Name: "ipv4", Short: "4",
		Public: "203.0.113.10", Home: "192.168.1.10", HomeGW: "192.168.1.1",
		VIP: "198.51.100.7", Reference: "192.0.2.53",
		LBInside: "10.1.0.1", Node: "10.1.0.2", Pod: "10.244.0.2", PodGW: "10.244.0.1",
		Bits: "24", NFT: "ip",
	}
	ipv6 = family{
		Name: "ipv6", Short: "6",
		Public: "2001:db8:c::10", Home: "fd00:168:1::10", HomeGW: "fd00:168:1::1",
		VIP: "2001:db8:7::7", Reference: "2001:db8:5::53",
		LBInside: "fd00:1::1", Node: "fd00:1::2", Pod: "fd00:244::2", PodGW: "fd00:244::1",
		Bits: "64", NFT: "ip6",
	}
	families = []family{ipv4, ipv6}
)

// internetSide is the internet router's address on the subnet of addr (the
// ".1" / "::1" of that subnet).
func internetSide(addr string) string {
	a := netip.MustParseAddr(addr)
	bits := 64
	if a.Is4() {
		bits = 24
	}
	return netip.PrefixFrom(a, bits).Masked().Addr().Next().String()
}

// hostPort formats ip and port the way stuncheck and URLs want them.
func hostPort(ip string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port)).String()
}

// An LBMode is how the load balancer and the node treat the client's
// source address: the scenarios of issue 4.
type LBMode int

const (
	// Passthrough: the LB and the node only DNAT (externalTrafficPolicy:
	// Local). The pod sees the client.
	Passthrough LBMode = iota
	// KubeProxyCluster: the LB DNATs to the node, which DNATs to the pod and
	// masquerades to its own address (externalTrafficPolicy: Cluster, the
	// endpoint on another node).
	KubeProxyCluster
	// CloudSNAT: the LB itself SNATs to its inside address.
	CloudSNAT
	// ProxyLB: the LB is a proxy (haproxy for TCP, nginx stream for UDP)
	// that opens its own connections to the node.
	ProxyLB
	// HybridDSR: the node SNATs UDP and leaves TCP alone, like Cilium's
	// hybrid DSR mode.
	HybridDSR
	// ProxyFromVIP: a proxy LB that opens its connections to the node from
	// the VIP itself (a one-armed proxy on a public address), so the server
	// sees the address the client sent to.
	ProxyFromVIP
)

func (m LBMode) String() string {
	return [...]string{"passthrough", "kube-proxy-cluster", "cloud-snat", "proxy", "hybrid-dsr", "proxy-from-vip"}[m]
}

// isProxy tells whether the LB is a proxy rather than a NAT.
func (m LBMode) isProxy() bool { return m == ProxyLB || m == ProxyFromVIP }

// Topology is the lab of issue 4: the hosts and the path between client and
// pod.
type Topology struct {
	*Lab
	Client, Home, Internet, Reference, LB, Node, Pod *Host
	Mode                                             LBMode
}

// TopologyOptions choose the scenario.
type TopologyOptions struct {
	Mode    LBMode
	HomeNAT bool // put the client behind a home NAT router
}

// NewTopology builds the lab for one scenario. Servers are started
// separately (StartStund, StartCoturn).
func NewTopology(t testing.TB, opts TopologyOptions) *Topology {
	t.Helper()
	lab := NewLab(t)
	top := &Topology{Lab: lab, Mode: opts.Mode}
	top.Internet = lab.Host("internet")
	top.Client = lab.Host("client")
	top.Reference = lab.Host("reference")
	top.LB = lab.Host("lb")
	top.Node = lab.Host("node")
	top.Pod = lab.Host("pod")
	for _, h := range []*Host{top.Internet, top.LB, top.Node} {
		h.Forward()
	}

	// The client, or its home router, on the internet.
	edge := top.Client
	if opts.HomeNAT {
		top.Home = lab.Host("home")
		top.Home.Forward()
		edge = top.Home
		lab.Connect(top.Client.At(addrs(ipv4.Home, ipv6.Home)...), top.Home.At(addrs(ipv4.HomeGW, ipv6.HomeGW)...))
		for _, f := range families {
			top.Client.Route("default", f.HomeGW)
		}
		// The home router masquerades everything leaving for the internet.
		top.Home.NFT(`
table inet home {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "internet" masquerade
	}
}`)
	}
	top.wireInternet(edge, ipv4.Public, ipv6.Public)
	top.wireInternet(top.Reference, ipv4.Reference, ipv6.Reference)
	top.wireInternet(top.LB, ipv4.VIP, ipv6.VIP)

	lab.Connect(top.LB.At(addrs(ipv4.LBInside, ipv6.LBInside)...), top.Node.At(addrs(ipv4.Node, ipv6.Node)...))
	lab.Connect(top.Node.At(addrs(ipv4.PodGW, ipv6.PodGW)...), top.Pod.At(addrs(ipv4.Pod, ipv6.Pod)...))
	for _, f := range families {
		top.Node.Route("default", f.LBInside)
		top.Pod.Route("default", f.PodGW)
	}

	top.LB.NFT(lbRules(opts.Mode))
	top.Node.NFT(nodeRules(opts.Mode))
	if opts.Mode.isProxy() {
		top.startProxies(t, opts.Mode == ProxyFromVIP)
	}
	return top
}

// wireInternet connects h to the internet router with the given public
// addresses and makes the router h's default gateway.
func (top *Topology) wireInternet(h *Host, v4, v6 string) {
	top.Connect(top.Internet.At(addrs(internetSide(v4), internetSide(v6))...), h.At(addrs(v4, v6)...))
	h.Route("default", internetSide(v4))
	h.Route("default", internetSide(v6))
}

// addrs appends each family's prefix length to the addresses given.
func addrs(v4, v6 string) []string {
	return []string{v4 + "/" + ipv4.Bits, v6 + "/" + ipv6.Bits}
}

// lbRules is the load balancer's nftables ruleset: DNAT from the VIP to the
// node's NodePort (unless the LB is a proxy), and SNAT to its inside address
// for a cloud LB that does that.
func lbRules(mode LBMode) string {
	var dnat, snat []string
	if !mode.isProxy() {
		for _, f := range families {
			dnat = append(dnat, fmt.Sprintf("%s daddr %s meta l4proto { tcp, udp } th dport %d dnat %s to %s",
				f.NFT, f.VIP, stunPort, f.NFT, hostPort(f.Node, nodePort)))
		}
	}
	if mode == CloudSNAT {
		snat = append(snat, `oifname "node" ct status dnat masquerade`)
	}
	return natTable("lb", dnat, snat)
}

// nodeRules is the node's nftables ruleset, what kube-proxy (or Cilium)
// would do: DNAT from the NodePort to the pod, and SNAT to the node's own
// address in Cluster mode (both transports) or hybrid DSR (UDP only).
func nodeRules(mode LBMode) string {
	var dnat, snat []string
	for _, f := range families {
		dnat = append(dnat, fmt.Sprintf("%s daddr %s meta l4proto { tcp, udp } th dport %d dnat %s to %s",
			f.NFT, f.Node, nodePort, f.NFT, hostPort(f.Pod, stunPort)))
		switch mode {
		case KubeProxyCluster:
			snat = append(snat, fmt.Sprintf(`oifname "pod" meta nfproto %s ct status dnat snat %s to %s`,
				f.Name, f.NFT, f.Node))
		case HybridDSR:
			snat = append(snat, fmt.Sprintf(`oifname "pod" meta nfproto %s meta l4proto udp ct status dnat snat %s to %s`,
				f.Name, f.NFT, f.Node))
		}
	}
	return natTable("node", dnat, snat)
}

func natTable(name string, prerouting, postrouting []string) string {
	return fmt.Sprintf(`
table inet %s {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		%s
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		%s
	}
}`, name, strings.Join(prerouting, "\n\t\t"), strings.Join(postrouting, "\n\t\t"))
}
