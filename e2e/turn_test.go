//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The relay port range of coturn in the pod, forwarded by the load
// balancer and the node when a scenario says so.
const (
	relayMin = 49152
	relayMax = 49200
)

// TURN credentials of the lab's coturn.
const (
	turnUser     = "lab"
	turnPassword = "lab-password"
	turnSecret   = "lab-shared-secret"
	turnRealm    = "lab.example"
)

// turnProbe is what the lab asserts on in a TURN probe's JSON.
type turnProbe struct {
	Transport string  `json:"transport"`
	Family    string  `json:"family"`
	Mapped    *string `json:"mapped"`
	Verdict   string  `json:"verdict"`
	Reason    string  `json:"reason"`
	Detail    string  `json:"detail"`
	Hint      string  `json:"hint"`
	TURN      *struct {
		Auth struct {
			Status    *string `json:"status"`
			Mechanism string  `json:"mechanism"`
			Realm     string  `json:"realm"`
		} `json:"auth"`
		Relayed *struct {
			Address string `json:"address"`
			Class   string `json:"class"`
			Detail  string `json:"detail"`
		} `json:"relayed"`
		Relay struct {
			Status string   `json:"status"`
			Peer   *string  `json:"peer"`
			RTTms  *float64 `json:"rtt_ms"`
			Detail string   `json:"detail"`
		} `json:"relay"`
		Released bool `json:"released"`
	} `json:"turn"`
}

// forwardRelayPorts adds DNAT rules for coturn's relay port range: on the
// load balancer from the VIP to the node, on the node to the pod, ports
// unchanged, in tables of their own beside the lab's NAT tables.
func (top *Topology) forwardRelayPorts(f family) {
	top.LB.NFT(relayDNAT("lbrelay", f, f.VIP, f.Node))
	top.Node.NFT(relayDNAT("noderelay", f, f.Node, f.Pod))
}

func relayDNAT(table string, f family, from, to string) string {
	return fmt.Sprintf(`
table inet %s {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		%s daddr %s udp dport %d-%d dnat %s to %s
	}
}`, table, f.NFT, from, relayMin, relayMax, f.NFT, to)
}

// startTURN runs coturn as a TURN server in the pod on port 3478 (UDP and
// TCP, IPv4 and IPv6), relaying from the pod's addresses on ports relayMin..relayMax, with
// long-term credentials or, with rest, the TURN REST shared secret. extra
// are more turnserver flags (external-ip).
func (top *Topology) startTURN(t testing.TB, rest bool, extra ...string) *Proc {
	t.Helper()
	requireTool(t, "turnserver", "coturn")
	dir := t.TempDir()
	args := []string{
		"-n", "--no-tls", "--no-dtls", "--no-cli", "--verbose",
		"--listening-ip", ipv4.Pod, "--listening-ip", ipv6.Pod, "--relay-ip", ipv4.Pod, "--relay-ip", ipv6.Pod,
		"--listening-port", strconv.Itoa(stunPort),
		"--min-port", strconv.Itoa(relayMin), "--max-port", strconv.Itoa(relayMax),
		"--realm", turnRealm, "--no-tcp-relay",
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "turnserver.pid"), "--userdb", filepath.Join(dir, "turndb"),
	}
	if rest {
		args = append(args, "--use-auth-secret", "--static-auth-secret", turnSecret)
	} else {
		args = append(args, "--lt-cred-mech", "--user", turnUser+":"+turnPassword)
	}
	p := top.Pod.Start("turnserver", append(args, extra...)...)
	waitListening(t, top.Pod, p, "udp", stunPort)
	waitListening(t, top.Pod, p, "tcp", stunPort)
	return p
}

// TestTURNBehindLoadBalancer runs coturn in the pod behind the load
// balancer and checks stuncheck's TURN verdicts over IPv4 and IPv6, UDP
// and TCP: a deployment that works end to end, one whose server does not
// know its public address, one whose load balancer does not forward the
// relay ports, and one whose load balancer SNATs.
func TestTURNBehindLoadBalancer(t *testing.T) {
	public := func(f family) string { return f.Public }
	vip := func(f family) string { return f.VIP }
	for _, sc := range []struct {
		name       string
		mode       LBMode
		rest       bool
		externalIP bool
		forward    bool
		exit       int
		verdict    string
		reason     string
		mappedIP   func(family) string
		relayedIP  func(family) string
		class      string
		relay      string
		says       string // in the detail or hint
	}{
		{"external-ip", Passthrough, false, true, true, 0, "preserved", "same-address", public, vip, "load-balancer", "works", ""},
		{"external-ip-rest", Passthrough, true, true, true, 0, "preserved", "same-address", public, vip, "load-balancer", "works", ""},
		{"no-external-ip", Passthrough, false, false, true, 1, "failed", "relayed-private-address", public, func(f family) string { return f.Pod },
			"private", "unreachable", "external-ip=<LB IP>/<pod IP>"},
		{"relay-ports-not-forwarded", Passthrough, false, true, false, 1, "failed", "relay-unreachable", public, vip, "load-balancer", "unreachable",
			"does not forward the relay port range"},
		{"cloud-snat", CloudSNAT, false, true, true, 1, "rewritten", "private-address", func(f family) string { return f.LBInside }, vip,
			"load-balancer", "", ""},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			var extra []string
			for _, f := range families {
				if sc.forward {
					top.forwardRelayPorts(f)
				}
				if sc.externalIP {
					extra = append(extra, "--external-ip", f.VIP+"/"+f.Pod)
				}
			}
			coturn := top.startTURN(t, sc.rest, extra...)
			creds := []string{"--turn-user", turnUser, "--turn-password", turnPassword}
			if sc.rest {
				creds = []string{"--turn-user", "lab-client", "--turn-secret", turnSecret}
			}
			for _, f := range families {
				for _, tr := range transports {
					t.Run(tr+f.Short, func(t *testing.T) {
						target := fmt.Sprintf("turn:%s?transport=%s", hostPort(f.VIP, stunPort), tr)
						run := top.Stuncheck(t, append(append(expectIPs(), creds...), "-o", "json", "--timeout", "3s", target)...)
						run.expect(t, sc.exit, sc.verdict)
						run.expectProbe(t, tr, f, sc.verdict, sc.mappedIP(f), sc.reason)
						var rep struct {
							Probes []turnProbe `json:"probes"`
						}
						if err := json.Unmarshal([]byte(run.Stdout), &rep); err != nil || len(rep.Probes) != 1 || rep.Probes[0].TURN == nil {
							t.Fatalf("no TURN probe in the report: %v", err)
						}
						p := rep.Probes[0]
						tu := p.TURN
						if tu.Auth.Status == nil || *tu.Auth.Status != "ok" || tu.Auth.Realm != turnRealm {
							t.Errorf("auth %+v, want ok in realm %s", tu.Auth, turnRealm)
						}
						if tu.Relayed == nil {
							t.Fatal("no relayed address")
						}
						ra, err := netip.ParseAddrPort(tu.Relayed.Address)
						if err != nil || ra.Addr().String() != sc.relayedIP(f) || ra.Port() < relayMin || ra.Port() > relayMax || tu.Relayed.Class != sc.class {
							t.Errorf("relayed %s (%s), want %s port %d-%d (%s)", tu.Relayed.Address, tu.Relayed.Class, sc.relayedIP(f), relayMin, relayMax, sc.class)
						}
						if sc.relay != "" && tu.Relay.Status != sc.relay {
							t.Errorf("relay %s (%s), want %s", tu.Relay.Status, tu.Relay.Detail, sc.relay)
						}
						if sc.relay == "works" {
							peer, err := netip.ParseAddrPort(deref(tu.Relay.Peer))
							if tu.Relay.RTTms == nil || *tu.Relay.RTTms <= 0 || err != nil || peer.Addr().String() != f.Public {
								t.Errorf("relay works with RTT %v and peer %s, want an RTT and a peer at %s", tu.Relay.RTTms, deref(tu.Relay.Peer), f.Public)
							}
						}
						if sc.says != "" && !strings.Contains(p.Detail+" "+p.Hint+" "+tu.Relay.Detail, sc.says) {
							t.Errorf("the probe does not say %q: %s / %s", sc.says, p.Detail, p.Hint)
						}
						if !tu.Released {
							t.Error("allocation not released")
						}
					})
				}
			}
			// No allocation left behind: coturn logged a Refresh with
			// lifetime 0 for each probe.
			if n, want := strings.Count(coturn.Output(), "lifetime=0"), len(families)*len(transports); n < want {
				t.Errorf("coturn logged %d refreshes with lifetime=0, want %d", n, want)
			}
			// The text a user reads.
			t.Run("text", func(t *testing.T) {
				run := top.Stuncheck(t, append(append(expectIPs(), creds...), "--timeout", "3s",
					"turn:"+hostPort(ipv4.VIP, stunPort), "turn:"+hostPort(ipv6.VIP, stunPort))...)
				if run.Exit != sc.exit {
					t.Errorf("exit code %d, want %d", run.Exit, sc.exit)
				}
				want := []string{"turn auth:", sc.verdict}
				for _, f := range families {
					want = append(want, "turn relayed: "+strings.TrimSuffix(hostPort(sc.relayedIP(f), 0), ":0"))
				}
				for _, w := range want {
					if !strings.Contains(run.Stdout, w) {
						t.Errorf("text output does not say %q", w)
					}
				}
				for _, secret := range []string{turnPassword, turnSecret} {
					if strings.Contains(run.Stdout+run.Stderr, secret) {
						t.Errorf("the output holds a secret")
					}
				}
			})
		})
	}
}
