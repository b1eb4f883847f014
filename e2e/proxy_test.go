//go:build e2e

package e2e

import (
	"net/netip"
	"testing"
	"time"
)

// TestProxyProtocol runs issue 9's scenarios: stund behind proxy load
// balancers that tell it the client's address with PROXY protocol v2 (1:
// haproxy's send-proxy-v2 over TCP, 2: the lab's own relay over UDP), the
// same stund refusing headers forged by a client that reaches it directly
// while still answering that client about its real address (3), and, for
// contrast, stund without --proxy-protocol behind the same proxies (4).
// See proxy.go for the ports on the VIP.
func TestProxyProtocol(t *testing.T) {
	t.Run("with-proxy-protocol", func(t *testing.T) {
		lab := NewProxyLab(t)
		stund := lab.StartStundWith(t, proxyTrust()...)

		// 1 and 2: through a proxy that sends PROXY v2, stund sees the client.
		for _, f := range families {
			for _, tr := range transports {
				name := map[string]string{"tcp": "1-haproxy-send-proxy-v2/", "udp": "2-udp-relay-proxy-v2/"}[tr]
				t.Run(name+tr+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					relayed := lab.Relays[f.Name].Forwarded.Load()
					run := lab.Stuncheck(t, append(expectIPs(),
						"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, proxyV2Port))...)
					run.expect(t, 0, "preserved")
					run.expectProbe(t, tr, f, "preserved", f.Public, "same-address")
					run.expectPublicIP(t, f, f.Public, "expect-ip")
					stund.expectCounted(t, requests, tr, f, f.Public)
					stund.expectProxyHeaders(t, headers, tr, false, map[string]float64{"accepted": 1})
					if tr == "udp" && lab.Relays[f.Name].Forwarded.Load() == relayed {
						t.Errorf("the UDP PROXY v2 relay forwarded nothing: stuncheck's answer came another way")
					}
				})
			}
		}

		// 3: a client on the internet reaches stund directly (VIP:3480 is
		// plain DNAT) and claims to be someone else. stund must neither
		// answer it nor believe it, and must count the refusal.
		for _, f := range families {
			dst := netip.MustParseAddrPort(hostPort(f.VIP, directPort))
			claimed := netip.AddrPortFrom(netip.MustParseAddr(forgedClient(f)), 40000)
			for _, fc := range []struct {
				name, transport string
				header          []byte
			}{
				{"tcp-v1", "tcp", proxyV1Header(claimed, dst)},
				{"tcp-v2", "tcp", proxyV2Header("tcp", claimed, dst)},
				{"udp-v2", "udp", proxyV2Header("udp", claimed, dst)},
			} {
				t.Run("3-forged-header/"+fc.name+"-"+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					sent := 1.0
					if fc.transport == "tcp" {
						got, err := forgedTCP(lab.Client, dst.String(), fc.header, 3*time.Second)
						if len(got) > 0 {
							t.Errorf("stund answered a forged header over TCP with %d bytes: %s", len(got), describeAnswer(got))
						}
						if !closedByPeer(err) {
							t.Errorf("stund did not close the TCP connection that carried a forged header: %v", err)
						}
					} else {
						const tries = 3
						sent = tries
						answers, err := forgedUDP(lab.Client, dst.String(), fc.header, tries, 500*time.Millisecond)
						if err != nil {
							t.Errorf("send forged datagrams: %v", err)
						}
						for _, a := range answers {
							t.Errorf("stund answered a forged header over UDP: %s", describeAnswer(a))
						}
					}
					stund.expectProxyHeaders(t, headers, fc.transport, true, map[string]float64{"untrusted": sent})
					expectNoRequests(t, stund, requests, fc.transport, f)
				})
			}
			// The same stund answers a plain direct client about its real
			// address: the refusal is about the header, not the client.
			for _, tr := range transports {
				t.Run("3-direct-client/"+tr+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					run := lab.Stuncheck(t, append(expectIPs(),
						"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, directPort))...)
					run.expect(t, 0, "preserved")
					run.expectProbe(t, tr, f, "preserved", f.Public, "same-address")
					stund.expectCounted(t, requests, tr, f, f.Public)
					stund.expectProxyHeaders(t, headers, tr, true, nil)
				})
			}
		}

		// A trusted proxy that sends no header (the lab's plain haproxy and
		// nginx on VIP:3478) is refused rather than answered with its own
		// address, so a misconfigured LB shows at once.
		for _, f := range families {
			for _, tr := range transports {
				t.Run("3-trusted-proxy-without-header/"+tr+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					run := lab.Stuncheck(t, append(expectIPs(),
						"-o", "json", "--transport", tr, "--timeout", "2s", hostPort(f.VIP, stunPort))...)
					run.expect(t, 3, "inconclusive")
					run.expectProbe(t, tr, f, "inconclusive", "")
					stund.expectProxyHeaders(t, headers, tr, false, map[string]float64{"missing": 1})
					expectNoRequests(t, stund, requests, tr, f)
				})
			}
		}
	})

	// 4: without --proxy-protocol the proxy's own inside address is all
	// stund can see: the problem PROXY protocol fixes.
	t.Run("without-proxy-protocol", func(t *testing.T) {
		lab := NewProxyLab(t)
		stund := lab.StartStund(t)
		for _, f := range families {
			for _, tr := range transports {
				t.Run("4-proxy-lb-rewritten/"+tr+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					run := lab.Stuncheck(t, append(expectIPs(),
						"-o", "json", "--transport", tr, "--timeout", "3s", hostPort(f.VIP, stunPort))...)
					run.expect(t, 1, "rewritten")
					run.expectProbe(t, tr, f, "rewritten", f.LBInside, "private-address")
					stund.expectCounted(t, requests, tr, f, f.LBInside)
					stund.expectProxyHeaders(t, headers, tr, true, nil)
				})
				// The opposite mistake: the LB sends PROXY v2 to a stund
				// that does not expect it. The header is not STUN, so no
				// answer, and certainly none that believes it.
				t.Run("4-send-proxy-v2-to-plain-stund/"+tr+f.Short, func(t *testing.T) {
					headers, requests := stund.ProxyHeaders(t), stund.BindingRequests(t)
					run := lab.Stuncheck(t, append(expectIPs(),
						"-o", "json", "--transport", tr, "--timeout", "2s", hostPort(f.VIP, proxyV2Port))...)
					run.expect(t, 3, "inconclusive")
					run.expectProbe(t, tr, f, "inconclusive", "")
					stund.expectProxyHeaders(t, headers, tr, true, nil)
					expectNoRequests(t, stund, requests, tr, f)
				})
			}
		}
	})
}

// expectNoRequests checks that stund counted no Binding request for
// transport and family since before.
func expectNoRequests(t testing.TB, s *Stund, before map[requestKey]float64, transport string, f family) {
	t.Helper()
	for k, v := range s.BindingRequests(t) {
		if k.Transport == transport && k.Family == f.Name && v != before[k] {
			t.Errorf("stund counted a Binding request: %+v went from %v to %v", k, before[k], v)
		}
	}
}

// describeAnswer says what an unexpected answer claimed the client was.
func describeAnswer(b []byte) string {
	if len(b) >= 20 {
		if ap, err := parseXORMapped(b, b[8:20]); err == nil {
			return "XOR-MAPPED-ADDRESS " + ap.String()
		}
	}
	return "no XOR-MAPPED-ADDRESS"
}
