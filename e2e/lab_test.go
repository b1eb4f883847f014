//go:build e2e

package e2e

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// reflexive finds the address in turnutils_stunclient's "UDP reflexive addr:
// 10.1.0.2:49667" (IPv6 addresses come without brackets).
var reflexive = regexp.MustCompile(`UDP reflexive addr: (\S+):\d+`)

// TestLab checks the topology itself, without stund or stuncheck: coturn in
// the pod answers a STUN client in the client namespace (coturn's own
// turnutils_stunclient over UDP, the lab's minimal client over TCP), and the
// address coturn saw is the one the scenario's NAT rules should produce.
func TestLab(t *testing.T) {
	for _, tc := range []struct {
		mode LBMode
		want func(family) string
	}{
		{Passthrough, func(f family) string { return f.Public }},
		{KubeProxyCluster, func(f family) string { return f.Node }},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: tc.mode})
			StartCoturn(t, top.Pod, []string{ipv4.Pod, ipv6.Pod}, "--no-rfc5780")
			for _, f := range families {
				for _, network := range []string{"udp", "tcp"} {
					t.Run(network+f.Short, func(t *testing.T) {
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
						defer cancel()
						got, err := stunBinding(ctx, top.Client, network, hostPort(f.VIP, stunPort))
						if err != nil {
							t.Fatalf("STUN Binding from the client to %s over %s: %v", hostPort(f.VIP, stunPort), network, err)
						}
						if got.Addr().String() != tc.want(f) {
							t.Errorf("coturn saw %s, want %s", got, tc.want(f))
						}
						if network == "udp" {
							// And coturn's own client agrees.
							out, err := top.Client.Exec("turnutils_stunclient", "-p", strconv.Itoa(stunPort), f.VIP)
							if err != nil {
								t.Fatalf("turnutils_stunclient %s: %v\n%s", f.VIP, err, out)
							}
							m := reflexive.FindStringSubmatch(out)
							if m == nil || m[1] != tc.want(f) {
								t.Errorf("turnutils_stunclient %s: want reflexive address %s, got:\n%s", f.VIP, tc.want(f), out)
							}
						}
					})
				}
			}
		})
	}
}
