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
// TCP), relaying from the pod's address on ports relayMin..relayMax, with
// long-term credentials or, with rest, the TURN REST shared secret. extra
// are more turnserver flags (external-ip).
func (top *Topology) startTURN(t testing.TB, f family, rest bool, extra ...string) *Proc {
	t.Helper()
	requireTool(t, "turnserver", "coturn")
	dir := t.TempDir()
	args := []string{
		"-n", "--no-tls", "--no-dtls", "--no-cli", "--verbose",
		"--listening-ip", f.Pod, "--relay-ip", f.Pod, "--listening-port", strconv.Itoa(stunPort),
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
// balancer and checks stuncheck's TURN verdicts over UDP and TCP: a
// deployment that works end to end, one whose server does not know its
// public address, one whose load balancer does not forward the relay
// ports, and one whose load balancer SNATs.
func TestTURNBehindLoadBalancer(t *testing.T) {
	f := ipv4
	for _, sc := range []struct {
		name       string
		mode       LBMode
		rest       bool
		externalIP bool
		forward    bool
		exit       int
		verdict    string
		reason     string
		mappedIP   string
		relayedIP  string
		class      string
		relay      string
		says       string // in the detail or hint
	}{
		{"external-ip", Passthrough, false, true, true, 0, "preserved", "same-address", f.Public, f.VIP, "load-balancer", "works", ""},
		{"external-ip-rest", Passthrough, true, true, true, 0, "preserved", "same-address", f.Public, f.VIP, "load-balancer", "works", ""},
		{"no-external-ip", Passthrough, false, false, true, 1, "failed", "relayed-private-address", f.Public, f.Pod, "private", "unreachable",
			"external-ip=<LB IP>/<pod IP>"},
		{"relay-ports-not-forwarded", Passthrough, false, true, false, 1, "failed", "relay-unreachable", f.Public, f.VIP, "load-balancer", "unreachable",
			"does not forward the relay port range"},
		{"cloud-snat", CloudSNAT, false, true, true, 1, "rewritten", "private-address", f.LBInside, f.VIP, "load-balancer", "", ""},
	} {
		t.Run(sc.name, func(t *testing.T) {
			top := NewTopology(t, TopologyOptions{Mode: sc.mode})
			if sc.forward {
				top.forwardRelayPorts(f)
			}
			var extra []string
			if sc.externalIP {
				extra = append(extra, "--external-ip", f.VIP+"/"+f.Pod)
			}
			coturn := top.startTURN(t, f, sc.rest, extra...)
			creds := []string{"--turn-user", turnUser, "--turn-password", turnPassword}
			if sc.rest {
				creds = []string{"--turn-user", "lab-client", "--turn-secret", turnSecret}
			}
			for _, tr := range transports {
				t.Run(tr, func(t *testing.T) {
					target := fmt.Sprintf("turn:%s?transport=%s", hostPort(f.VIP, stunPort), tr)
					run := top.Stuncheck(t, append(append(expectIPs(), creds...), "-o", "json", "--timeout", "3s", target)...)
					run.expect(t, sc.exit, sc.verdict)
					run.expectProbe(t, tr, f, sc.verdict, sc.mappedIP, sc.reason)
					var rep struct {
						Probes []turnProbe `json:"probes"`
					}
					if err := jsonUnmarshal(run.Stdout, &rep); err != nil || len(rep.Probes) != 1 || rep.Probes[0].TURN == nil {
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
					if err != nil || ra.Addr().String() != sc.relayedIP || ra.Port() < relayMin || ra.Port() > relayMax || tu.Relayed.Class != sc.class {
						t.Errorf("relayed %s (%s), want %s:%d-%d (%s)", tu.Relayed.Address, tu.Relayed.Class, sc.relayedIP, relayMin, relayMax, sc.class)
					}
					if sc.relay != "" && tu.Relay.Status != sc.relay {
						t.Errorf("relay %s (%s), want %s", tu.Relay.Status, tu.Relay.Detail, sc.relay)
					}
					if sc.relay == "works" && (tu.Relay.RTTms == nil || *tu.Relay.RTTms <= 0 || tu.Relay.Peer == nil || !strings.HasPrefix(*tu.Relay.Peer, f.Public+":")) {
						t.Errorf("relay works without an RTT or with peer %v, want a peer at %s", deref(tu.Relay.Peer), f.Public)
					}
					if sc.says != "" && !strings.Contains(p.Detail+" "+p.Hint+" "+tu.Relay.Detail, sc.says) {
						t.Errorf("the probe does not say %q: %s / %s", sc.says, p.Detail, p.Hint)
					}
					if !tu.Released {
						t.Error("allocation not released")
					}
				})
			}
			// No allocation left behind: coturn logged a Refresh with
			// lifetime 0 for each probe.
			if n := strings.Count(coturn.Output(), "lifetime=0"); n < len(transports) {
				t.Errorf("coturn logged %d refreshes with lifetime=0, want %d", n, len(transports))
			}
			// The text a user reads.
			t.Run("text", func(t *testing.T) {
				run := top.Stuncheck(t, append(append(expectIPs(), creds...), "--timeout", "3s", "turn:"+hostPort(f.VIP, stunPort))...)
				if run.Exit != sc.exit {
					t.Errorf("exit code %d, want %d", run.Exit, sc.exit)
				}
				for _, w := range []string{"turn auth:", "turn relayed: " + sc.relayedIP, sc.verdict} {
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

// jsonUnmarshal decodes stuncheck's JSON output.
func jsonUnmarshal(s string, v any) error {
	return json.Unmarshal([]byte(s), v)
}
