//go:build e2e

package e2e

import "testing"

// TestCoturnInPod runs scenario 8: coturn, with its default RFC 5780
// behaviour, replaces stund in the pod. stuncheck works with any STUN server,
// so its verdicts must be those of scenarios 1 and 2.
func TestCoturnInPod(t *testing.T) {
	for _, sc := range []struct {
		name    string
		mode    LBMode
		verdict string
		exit    int
		mapped  func(family) string
	}{
		{"8-coturn-passthrough", Passthrough, "preserved", 0, func(f family) string { return f.Public }},
		{"8-coturn-cluster", KubeProxyCluster, "rewritten", 1, func(f family) string { return f.Node }},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			StartCoturn(t, top.Pod, []string{ipv4.Pod, ipv6.Pod})
			for _, f := range families {
				for _, tr := range transports {
					t.Run(tr+f.Short, func(t *testing.T) {
						run := top.Stuncheck(t, append(expectIPs(),
							"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, stunPort))...)
						run.expect(t, sc.exit, sc.verdict)
						run.expectProbe(t, tr, f, sc.verdict, sc.mapped(f))
					})
				}
			}
		})
	}
}
