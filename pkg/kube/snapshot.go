package kube

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/stund/stund/pkg/server"
)

// snapshot is an immutable view of the cluster's addresses. A new one
// replaces the old one atomically whenever a watched object changes;
// readers never lock.
type snapshot struct {
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
	// services are the watched Services, for log and Event messages.
	services []*corev1.Service
	// endpointNodes are the nodes with a ready endpoint, sorted.
	endpointNodes []string
}

// who says whose address a source is: a node, a Service or nothing.
type who struct {
	class server.SourceClass
	// node is the node that owns the address (ClassNode, ClassPod).
	node string
	// service is the Service whose ingress it is (ClassLB).
	service string
}

// lookup classifies addr. Node addresses win over load-balancer ingress
// addresses, which win over pod CIDRs, which win over internal and
// non-public ranges.
func (s *snapshot) lookup(addr netip.Addr) who {
	addr = addr.Unmap()
	if n, ok := s.nodes[addr]; ok {
		return who{class: server.ClassNode, node: n}
	}
	if svc, ok := s.lbs[addr]; ok {
		return who{class: server.ClassLB, service: svc}
	}
	for _, bits := range s.podBits {
		p, err := addr.Prefix(bits)
		if err != nil {
			continue // the other family's length
		}
		if n, ok := s.pods[p]; ok {
			return who{class: server.ClassPod, node: n}
		}
	}
	for _, p := range s.internal {
		if p.Contains(addr) {
			return who{class: server.ClassPrivate}
		}
	}
	if server.IsNonPublic(addr) {
		return who{class: server.ClassPrivate}
	}

	return who{class: server.ClassClient}
}

// nodeAddresses returns the InternalIP and ExternalIP addresses of n.
func nodeAddresses(n *corev1.Node) []netip.Addr {
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

// podCIDRs returns the pod CIDRs of n, masked.
func podCIDRs(n *corev1.Node) []netip.Prefix {
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

// readyEndpointNodes returns the sorted names of the nodes that run a
// ready endpoint in slices. An endpoint without a ready condition counts
// as ready, as the API defines it.
func readyEndpointNodes(slices_ []*discoveryv1.EndpointSlice) []string {
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

// buildSnapshot makes a snapshot from the watched objects.
func buildSnapshot(nodes []*corev1.Node, services []*corev1.Service, eps []*discoveryv1.EndpointSlice, internal []netip.Prefix) *snapshot {
	s := &snapshot{
		nodes:         map[netip.Addr]string{},
		lbs:           map[netip.Addr]string{},
		pods:          map[netip.Prefix]string{},
		internal:      internal,
		services:      services,
		endpointNodes: readyEndpointNodes(eps),
	}
	for _, n := range nodes {
		for _, ip := range nodeAddresses(n) {
			s.nodes[ip] = n.Name
		}
		for _, p := range podCIDRs(n) {
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
