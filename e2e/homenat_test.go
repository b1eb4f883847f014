//go:build e2e

package e2e

import "testing"

// TestHomeNAT runs scenario 5: the client sits behind its own home NAT and
// does not know its public IP; stuncheck learns it from a reference STUN
// server (coturn) on the internet, then checks stund through a passthrough
// load balancer (preserved) and through kube-proxy's Cluster mode
// (rewritten).
func TestHomeNAT(t *testing.T) {
	for _, sc := range []struct {
		name    string
		mode    LBMode
		verdict string
		exit    int
		mapped  func(family) string
		reasons []string
	}{
		// The home NAT may or may not keep the client's port.
		{"5-home-nat-passthrough", Passthrough, "preserved", 0, func(f family) string { return f.Public }, []string{"same-address", "port-changed"}},
		{"5-home-nat-cluster", KubeProxyCluster, "rewritten", 1, func(f family) string { return f.Node }, []string{"private-address"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode, HomeNAT: true})
			StartCoturn(t, top.Reference, []string{ipv4.Reference, ipv6.Reference}, "--no-rfc5780")
			stund := top.StartStund(t)
			for _, f := range families {
				for _, tr := range transports {
					t.Run(tr+f.Short, func(t *testing.T) {
						before := stund.BindingRequests(t)
						run := top.Stuncheck(t,
							"--reference", hostPort(ipv4.Reference, stunPort),
							"--reference", hostPort(ipv6.Reference, stunPort),
							"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, stunPort))
						run.expect(t, sc.exit, sc.verdict)
						run.expectPublicIP(t, f, f.Public, "reference")
						run.expectProbe(t, tr, f, sc.verdict, sc.mapped(f), sc.reasons...)
						stund.expectCounted(t, before, tr, f, sc.mapped(f))
					})
				}
			}
		})
	}
}
