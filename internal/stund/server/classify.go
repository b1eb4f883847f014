package server

import (
	"net/netip"

	"github.com/stund/stund/internal/netclass"
)

// SourceClass says what kind of address a request came from. It is the
// source_class label of stund_binding_requests_total: a small fixed set, so
// the metric's cardinality stays bounded.
type SourceClass uint8

// The classes of request sources.
const (
	// ClassClient is an address outside every internal range: what a
	// client's own public address (or its home NAT's) looks like.
	ClassClient SourceClass = iota
	// ClassPrivate is an address that can never be a client's public
	// source (private, CGNAT, link-local, loopback, benchmarking, reserved
	// and the rest of the IANA special-purpose blocks, see netclass.IsNonPublic), or
	// one inside a configured internal CIDR: something rewrote the source.
	ClassPrivate
	// ClassNode is the address of a cluster node: kube-proxy or the CNI
	// masqueraded the client.
	ClassNode
	// ClassPod is an address inside a pod CIDR.
	ClassPod
	// ClassLB is a load-balancer ingress address: a proxy load balancer.
	ClassLB
	classCount
)

var classNames = [classCount]string{"client", "private", "node", "pod", "lb"}

// String returns the label value of c.
func (c SourceClass) String() string { return classNames[c] }

// Classifier decides the class of each request's source. The server
// calls Observe once for every well-formed Binding request, on the packet
// path, so it must not block. An implementation may also record what it
// observes: kubeclass's counts rewritten sources, warns and queues
// Kubernetes Events.
type Classifier interface {
	// Observe returns the class of addr, the source of one request.
	Observe(addr netip.Addr) SourceClass
}

// StaticClassifier classifies by address ranges alone: internal prefixes
// and the well-known non-public ranges are ClassPrivate, the rest
// ClassClient.
type StaticClassifier struct {
	Internal []netip.Prefix
}

// Observe implements Classifier; it only classifies.
func (c StaticClassifier) Observe(addr netip.Addr) SourceClass { return c.Classify(addr) }

// Classify returns the class of addr.
func (c StaticClassifier) Classify(addr netip.Addr) SourceClass {
	addr = addr.Unmap()
	for _, p := range c.Internal {
		if p.Contains(addr) {
			return ClassPrivate
		}
	}
	if netclass.IsNonPublic(addr) {
		return ClassPrivate
	}

	return ClassClient
}
