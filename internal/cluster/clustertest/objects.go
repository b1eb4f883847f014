// Package clustertest builds the Kubernetes objects that stund's and
// stuncheck's tests describe clusters with.
package clustertest

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// NS is the namespace of every object built here.
const NS = "lab"

// Node is a node with an InternalIP, an ExternalIP (either may be empty)
// and pod CIDRs.
func Node(name string, internal, external string, podCIDRs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: podCIDRs}}
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	if internal != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: internal})
	}
	if external != "" {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: external})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})

	return n
}

// ServiceOption changes a Service that Service builds.
type ServiceOption func(*corev1.Service)

// Service is a LoadBalancer Service with UDP and TCP 3478 and
// externalTrafficPolicy Cluster, changed by opts.
func Service(name string, opts ...ServiceOption) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: NS, UID: types.UID("uid-svc-" + name)},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			SessionAffinity:       corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{
				{Name: "stun-udp", Protocol: corev1.ProtocolUDP, Port: 3478},
				{Name: "stun-tcp", Protocol: corev1.ProtocolTCP, Port: 3478},
			},
		},
	}
	for _, o := range opts {
		o(s)
	}

	return s
}

// Local sets externalTrafficPolicy Local and a health check node port.
func Local(s *corev1.Service) {
	s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	s.Spec.HealthCheckNodePort = 32000
}

// Ingress adds load-balancer ingress IPs.
func Ingress(ips ...string) ServiceOption {
	return func(s *corev1.Service) {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
	}
}

// ProxyMode marks every ingress ipMode Proxy.
func ProxyMode(s *corev1.Service) {
	for i := range s.Status.LoadBalancer.Ingress {
		s.Status.LoadBalancer.Ingress[i].IPMode = ptr.To(corev1.LoadBalancerIPModeProxy)
	}
}

// Annotate adds annotations, given as key, value, key, value...
func Annotate(kv ...string) ServiceOption {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// UDPOnly keeps only the UDP port.
func UDPOnly(s *corev1.Service) { s.Spec.Ports = s.Spec.Ports[:1] }

// TCPOnly keeps only the TCP port.
func TCPOnly(s *corev1.Service) { s.Spec.Ports = s.Spec.Ports[1:] }

// Endpoint is a pod on a node, ready or not.
type Endpoint struct {
	Node  string
	Ready bool
}

// Slice is an EndpointSlice of Service svc with the given endpoints.
func Slice(svc, name string, eps ...Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: NS, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{"10.244.0." + string(rune('2'+i))},
			NodeName:   ptr.To(e.Node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.Ready)},
		})
	}

	return s
}
