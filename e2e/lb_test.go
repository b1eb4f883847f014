//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// transports are the STUN transports every scenario runs over.
var transports = []string{"udp", "tcp"}

// TestLoadBalancer runs scenarios 1 to 4: a client with a known public IP
// checks stund behind four kinds of load balancer path, the proxy in two
// shapes (connecting from an inside address, or from the VIP itself).
func TestLoadBalancer(t *testing.T) {
	for _, sc := range []struct {
		name    string
		mode    LBMode
		verdict string
		exit    int
		mapped  func(family) string // the IP stund sees
		reasons []string
	}{
		{"1-passthrough-local", Passthrough, "preserved", 0, func(f family) string { return f.Public }, []string{"same-address"}},
		{"2-kube-proxy-cluster", KubeProxyCluster, "rewritten", 1, func(f family) string { return f.Node }, []string{"private-address"}},
		{"3-cloud-lb-snat", CloudSNAT, "rewritten", 1, func(f family) string { return f.LBInside }, []string{"private-address"}},
		{"4-proxy-lb", ProxyLB, "rewritten", 1, func(f family) string { return f.LBInside }, []string{"private-address"}},
		{"4-proxy-lb-from-vip", ProxyFromVIP, "rewritten", 1, func(f family) string { return f.VIP }, []string{"target-address"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			stund := top.StartStund(t)
			for _, f := range families {
				for _, tr := range transports {
					t.Run(tr+f.Short, func(t *testing.T) {
						before := stund.BindingRequests(t)
						run := top.Stuncheck(t, append(expectIPs(),
							"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, stunPort))...)
						run.expect(t, sc.exit, sc.verdict)
						run.expectProbe(t, tr, f, sc.verdict, sc.mapped(f), sc.reasons...)
						run.expectPublicIP(t, f, f.Public, "expect-ip")
						stund.expectCounted(t, before, tr, f, sc.mapped(f))
					})
				}
			}
			// The text output a user reads names what the server saw.
			t.Run("text", func(t *testing.T) {
				run := top.Stuncheck(t, append(expectIPs(), "--timeout", "3s",
					hostPort(ipv4.VIP, stunPort), hostPort(ipv6.VIP, stunPort))...)
				if run.Exit != sc.exit {
					t.Errorf("exit code %d, want %d", run.Exit, sc.exit)
				}
				for _, f := range families {
					if !strings.Contains(run.Stdout, sc.mapped(f)) {
						t.Errorf("text output does not name the address the server saw, %s", sc.mapped(f))
					}
				}
				if !strings.Contains(run.Stdout, sc.verdict) {
					t.Errorf("text output does not say %q", sc.verdict)
				}
			})
		})
	}
}
