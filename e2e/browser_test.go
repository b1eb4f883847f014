//go:build e2e

package e2e

import (
	"slices"
	"testing"
)

// TestBrowserICE is what a WebRTC application sees: headless Chromium on the
// client gathers ICE candidates with stund, in the pod, as its STUN server
// behind the VIP. Through a passthrough path its server-reflexive candidate
// is the client's public address, the one peers can reach; behind
// kube-proxy's masquerade it is the node's inside address, which no peer
// can reach.
func TestBrowserICE(t *testing.T) {
	requireTool(t, "chromium", "chromium")
	for _, sc := range []struct {
		name  string
		mode  LBMode
		srflx func(family) string // the address of Chromium's srflx candidate
	}{
		{"passthrough", Passthrough, func(f family) string { return f.Public }},
		{"kube-proxy-cluster", KubeProxyCluster, func(f family) string { return f.Node }},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			stund := top.StartStund(t)
			for _, f := range families {
				t.Run(f.Name, func(t *testing.T) {
					before := stund.BindingRequests(t)
					cands := gatherICE(t, top.Client, "stun:"+hostPort(f.VIP, stunPort))
					// Chromium ran in the client's namespace: it gathered
					// from the client's own address.
					if !slices.ContainsFunc(cands, func(c iceCandidate) bool { return c.Type == "host" && c.Address == f.Public }) {
						t.Errorf("no host candidate with the client's address %s", f.Public)
					}
					srflx := srflxCandidates(cands)
					if len(srflx) == 0 {
						t.Fatalf("Chromium gathered no srflx candidate with stund")
					}
					for _, c := range srflx {
						if c.Protocol != "udp" || c.Address != sc.srflx(f) || c.RelatedAddress != f.Public {
							t.Errorf("srflx candidate %s %s port %d (related %s), want udp %s (related %s)",
								c.Protocol, c.Address, c.Port, c.RelatedAddress, sc.srflx(f), f.Public)
						}
					}
					stund.expectCounted(t, before, "udp", f, sc.srflx(f))
				})
			}
		})
	}
}
