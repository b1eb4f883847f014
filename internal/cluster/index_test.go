package cluster_test

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/internal/cluster/clustertest"
)

func TestLookup(t *testing.T) {
	idx := cluster.NewIndex(
		[]*corev1.Node{
			clustertest.Node("worker-1", "10.1.0.2", "198.51.100.20", "10.244.1.0/24", "fd00:244:1::/64"),
			clustertest.Node("worker-2", "fd00:1::3", "", "10.244.2.0/24"),
			// A node whose InternalIP is the first address of its own pod
			// CIDR: its address, not merely its gateway.
			clustertest.Node("odd", "10.244.9.1", "", "10.244.9.0/24"),
			// A pod CIDR of one address has no gateway.
			clustertest.Node("tiny", "10.1.0.5", "", "10.250.0.7/32"),
		},
		[]*corev1.Service{clustertest.Service("stund", clustertest.Ingress("198.51.100.7"))},
		nil, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	gw := func(node string) cluster.Who { return cluster.Who{Kind: cluster.Node, Node: node, Gateway: true} }
	for _, tc := range []struct {
		name, addr string
		want       cluster.Who
	}{
		{"InternalIP", "10.1.0.2", cluster.Who{Kind: cluster.Node, Node: "worker-1"}},
		{"ExternalIP", "198.51.100.20", cluster.Who{Kind: cluster.Node, Node: "worker-1"}},
		{"IPv6 InternalIP", "fd00:1::3", cluster.Who{Kind: cluster.Node, Node: "worker-2"}},
		{"IPv4 gateway", "10.244.1.1", gw("worker-1")},
		{"IPv4-mapped gateway", "::ffff:10.244.2.1", gw("worker-2")},
		{"IPv6 gateway", "fd00:244:1::1", gw("worker-1")},
		{"pod", "10.244.1.2", cluster.Who{Kind: cluster.Pod, Node: "worker-1"}},
		{"pod CIDR's network address", "10.244.2.0", cluster.Who{Kind: cluster.Pod, Node: "worker-2"}},
		{"IPv6 pod", "fd00:244:1::2", cluster.Who{Kind: cluster.Pod, Node: "worker-1"}},
		{"pod CIDR's last address", "10.244.1.255", cluster.Who{Kind: cluster.Pod, Node: "worker-1"}},
		{"InternalIP at the gateway's place", "10.244.9.1", cluster.Who{Kind: cluster.Node, Node: "odd"}},
		{"one-address pod CIDR", "10.250.0.7", cluster.Who{Kind: cluster.Pod, Node: "tiny"}},
		{"past a one-address pod CIDR", "10.250.0.8", cluster.Who{Kind: cluster.Private}},
		{".1 of nobody's pod CIDR", "10.244.3.1", cluster.Who{Kind: cluster.Private}},
		{"load balancer", "198.51.100.7", cluster.Who{Kind: cluster.LB, Service: "stund"}},
		{"internal prefix", "192.0.2.1", cluster.Who{Kind: cluster.Private}},
		{"client", "203.0.113.10", cluster.Who{Kind: cluster.Client}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := idx.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tc.addr, got, tc.want)
			}
		})
	}
}
