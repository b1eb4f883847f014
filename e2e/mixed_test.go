//go:build e2e

package e2e

import (
	"strconv"
	"testing"
)

// TestHybridDSR runs scenario 6: the node SNATs UDP but not TCP, as
// Cilium's hybrid DSR mode does. One stuncheck run over both transports must
// report each transport right and the worst of them overall.
func TestHybridDSR(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: HybridDSR})
	stund := top.StartStund(t)
	for _, f := range families {
		t.Run("6-hybrid-dsr/udp+tcp"+f.Short, func(t *testing.T) {
			before := stund.BindingRequests(t)
			run := top.Stuncheck(t, append(expectIPs(),
				"-o", "json", "--transport", "udp,tcp", "--timeout", "3s", hostPort(f.VIP, stunPort))...)
			run.expect(t, 1, "rewritten")
			run.expectProbe(t, "udp", f, "rewritten", f.Node, "private-address")
			run.expectProbe(t, "tcp", f, "preserved", f.Public, "same-address")
			stund.expectCounted(t, before, "udp", f, f.Node)
			stund.expectCounted(t, before, "tcp", f, f.Public)
		})
	}
}

// TestNoServer runs scenario 7: the Service points at a port nothing
// listens on (stund runs, but on another port, as with a wrong
// targetPort). stuncheck must say inconclusive with exit code 3, never
// guess, and stund must have counted nothing.
func TestNoServer(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	const otherPort = stunPort + 1
	p := top.Pod.Start(binPath(t, "stund"), "--listen", ":"+strconv.Itoa(otherPort), "--drain-timeout", "100ms")
	waitListening(t, top.Pod, p, "udp", otherPort)
	stund := &Stund{Proc: p, host: top.Pod, base: "http://" + hostPort(ipv4.Pod, metricsPort)}
	waitReady(t, stund)
	for _, f := range families {
		for _, tr := range transports {
			t.Run("7-no-server/"+tr+f.Short, func(t *testing.T) {
				before := stund.BindingRequests(t)
				run := top.Stuncheck(t, append(expectIPs(),
					"-o", "json", "--transport", tr, "--timeout", "2s", hostPort(f.VIP, stunPort))...)
				run.expect(t, 3, "inconclusive")
				run.expectProbe(t, tr, f, "inconclusive", "", "no-response", "connection-refused")
				after := stund.BindingRequests(t)
				for k, v := range after {
					if v != before[k] {
						t.Errorf("stund on port %d counted a request: %+v went from %v to %v", otherPort, k, before[k], v)
					}
				}
			})
		}
	}
}

// TestNoEndpoint is scenario 7's silent variant: the load balancer drops
// everything (no healthy endpoint), so nothing answers, not even with a
// refusal. stuncheck must wait out --timeout and say inconclusive.
func TestNoEndpoint(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.LB.NFT(`
table inet blackhole {
	chain forward {
		type filter hook forward priority filter; policy accept;
		meta l4proto { tcp, udp } th dport ` + strconv.Itoa(nodePort) + ` drop
	}
}`)
	for _, f := range families {
		t.Run("7-no-endpoint/udp+tcp"+f.Short, func(t *testing.T) {
			run := top.Stuncheck(t, append(expectIPs(),
				"-o", "json", "--transport", "udp,tcp", "--timeout", "2s", hostPort(f.VIP, stunPort))...)
			run.expect(t, 3, "inconclusive")
			run.expectProbe(t, "udp", f, "inconclusive", "", "no-response")
			// A TCP connect that times out is no-response, whichever of
			// the dial's deadline and the probe's context fires first.
			run.expectProbe(t, "tcp", f, "inconclusive", "", "no-response")
		})
	}
}
