package cluster

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/stund/stund/internal/netclass"
)

// Kind says whose address a source is, as far as the cluster tells.
type Kind uint8

// The kinds of source addresses, in the order of stund's source classes.
const (
	// Client is an address of nobody in the cluster, nor a non-public one:
	// what a client's own (or its NAT's) address looks like.
	Client Kind = iota
	// Private is a non-public address (see netclass) or one inside an
	// internal prefix: something rewrote the source.
	Private
	// Node is a node's InternalIP or ExternalIP, or its pod-network
	// gateway (Who.Gateway): an address of the node itself.
	Node
	// Pod is inside a node's pod CIDR, other than its gateway.
	Pod
	// LB is a load-balancer ingress IP of an indexed Service.
	LB
)

// Index is an immutable view of the cluster's addresses: who owns each
// node address, pod CIDR and load-balancer ingress IP. stund swaps a new
// one in atomically whenever a watched object changes (readers never
// lock); stuncheck builds one from what it read once.
type Index struct {
	// nodes maps every InternalIP and ExternalIP to its node's name.
	nodes map[netip.Addr]string
	// lbs maps every load-balancer ingress IP to its Service's name.
	lbs map[netip.Addr]string
	// pods maps every masked pod CIDR to its node's name; podBits are the
	// distinct prefix lengths among them, so a lookup masks the address
	// once per length instead of scanning every node's CIDR.
	pods    map[netip.Prefix]string
	podBits []int
	// internal are the --internal-cidr prefixes.
	internal []netip.Prefix
	// Services are the indexed Services.
	Services []*corev1.Service
	// EndpointNodes are the nodes with a ready endpoint, sorted.
	EndpointNodes []string
}

// Who says whose address a source is: a node, a Service or nobody.
type Who struct {
	Kind Kind
	// Node is the node that owns the address (Node, Pod).
	Node string
	// Gateway is set, with Kind Node, when the address is the node's
	// pod-network gateway rather than its InternalIP or ExternalIP: the
	// first host address of one of its pod CIDRs, which bridge CNIs give
	// the node's end of the pod network. kube-proxy's masquerade leaves
	// it on traffic it delivers to a pod on that same node.
	Gateway bool
	// Service is the Service whose ingress it is (LB).
	Service string
}

// Lookup says whose address addr is. Node addresses win over load-balancer ingress
// addresses, which win over pod CIDRs, which win over internal and
// non-public ranges. The first host address of a node's pod CIDR (the
// address after the network address, in IPv4 and IPv6 alike) is that
// node's pod-network gateway: Kind Node with Gateway set, not Pod, since
// bridge CNIs put it on the node's bridge and host-local IPAM reserves it
// for that gateway by default.
func (s *Index) Lookup(addr netip.Addr) Who {
	addr = addr.Unmap()
	if n, ok := s.nodes[addr]; ok {
		return Who{Kind: Node, Node: n}
	}
	if svc, ok := s.lbs[addr]; ok {
		return Who{Kind: LB, Service: svc}
	}
	for _, bits := range s.podBits {
		p, err := addr.Prefix(bits)
		if err != nil {
			continue // the other family's length
		}
		if n, ok := s.pods[p]; ok {
			if addr == p.Addr().Next() {
				// The pod network's gateway: the node's own address there.
				return Who{Kind: Node, Node: n, Gateway: true}
			}

			return Who{Kind: Pod, Node: n}
		}
	}
	for _, p := range s.internal {
		if p.Contains(addr) {
			return Who{Kind: Private}
		}
	}
	if netclass.IsNonPublic(addr) {
		return Who{Kind: Private}
	}

	return Who{Kind: Client}
}

// NodeAddresses returns the InternalIP and ExternalIP addresses of n.
func NodeAddresses(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}

	return out
}

// PodCIDRs returns the pod CIDRs of n, masked.
func PodCIDRs(n *corev1.Node) []netip.Prefix {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
		}
	}

	return out
}

func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return p.Bits() - 96
	}

	return p.Bits()
}

// ingressIPs returns the load-balancer ingress IPs of svc (hostnames are
// skipped: a request never comes from a name).
func ingressIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, ip.Unmap())
		}
	}

	return out
}

// ReadyEndpointNodes returns the sorted names of the nodes that run a
// ready endpoint in slices. An endpoint without a ready condition counts
// as ready, as the API defines it.
func ReadyEndpointNodes(slices_ []*discoveryv1.EndpointSlice) []string {
	seen := map[string]bool{}
	for _, s := range slices_ {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.NodeName != nil && *ep.NodeName != "" {
				seen[*ep.NodeName] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)

	return out
}

// NewIndex indexes the addresses of nodes and of services' load-balancer
// ingress, the nodes that run a ready endpoint in eps, and the internal
// prefixes that count as Private.
func NewIndex(nodes []*corev1.Node, services []*corev1.Service, eps []*discoveryv1.EndpointSlice, internal []netip.Prefix) *Index {
	s := &Index{
		nodes:         map[netip.Addr]string{},
		lbs:           map[netip.Addr]string{},
		pods:          map[netip.Prefix]string{},
		internal:      internal,
		Services:      services,
		EndpointNodes: ReadyEndpointNodes(eps),
	}
	for _, n := range nodes {
		for _, ip := range NodeAddresses(n) {
			s.nodes[ip] = n.Name
		}
		for _, p := range PodCIDRs(n) {
			s.pods[p] = n.Name
			if !slices.Contains(s.podBits, p.Bits()) {
				s.podBits = append(s.podBits, p.Bits())
			}
		}
	}
	for _, svc := range services {
		for _, ip := range ingressIPs(svc) {
			s.lbs[ip] = svc.Name
		}
	}

	return s
}

// Counts says how many node addresses, pod CIDRs and load-balancer
// addresses the index holds.
func (s *Index) Counts() (nodeAddrs, podCIDRs, lbAddrs int) {
	return len(s.nodes), len(s.pods), len(s.lbs)
}

// IsLoadBalancerOrNodePort reports whether traffic reaches svc from
// outside the cluster through kube-proxy's node ports.
func IsLoadBalancerOrNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeNodePort
}

// IsLocal reports whether svc has externalTrafficPolicy Local.
func IsLocal(svc *corev1.Service) bool {
	return svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}
