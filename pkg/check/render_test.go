package check

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stund/stund/internal/golden"
	"github.com/stund/stund/internal/stuncheck/turn"
)

// sampleReport is a fixed report: a load balancer that masquerades UDP and
// passes TCP through, plus an IPv6 address that did not answer.
func sampleReport() *Report {
	ap := netip.MustParseAddrPort
	public := netip.MustParseAddr("203.0.113.10")
	probes := []Probe{
		{Target: "stun.example.com", Address: ap("198.51.100.7:3478"), Transport: UDP, Family: IPv4,
			Local: ap("192.168.1.20:51000"), Mapped: ap("10.0.0.1:39807"), RTT: 12345 * time.Microsecond, Software: "stund"},
		{Target: "stun.example.com", Address: ap("198.51.100.7:3478"), Transport: TCP, Family: IPv4,
			Local: ap("192.168.1.20:51001"), Mapped: ap("203.0.113.10:61001"), RTT: 15 * time.Millisecond, Software: "stund",
			ResponseOrigin: ap("198.51.100.7:3478")},
		{Target: "stun.example.com", Address: ap("[2001:db8::7]:3478"), Transport: UDP, Family: IPv6},
	}
	for i := range probes[:2] {
		p := &probes[i]
		p.PublicIP = public
		p.Judgement = judge(observation{Mapped: p.Mapped, Local: p.Local, Target: p.Address, Public: public})
	}
	probes[2].Judgement = failure(errNoResponseForTest, probes[2].Address, UDP, 5*time.Second)
	probes[2].PublicIP = netip.MustParseAddr("2001:db8::10")
	probes[0].NAT = &NATBehavior{Mapping: EndpointIndependent, Filtering: AddressAndPortDependent}
	explainSplit(probes)
	rep := &Report{
		PublicIPs: []PublicIP{
			{Family: IPv4, IP: public, Source: SourceReference, Detail: "2 of 2 answering reference servers agree", References: []ReferenceAnswer{
				{Server: "stun.l.google.com:19302", Address: ap("192.0.2.100:19302"), Mapped: ap("203.0.113.10:51000")},
				{Server: "stun.cloudflare.com:3478", Address: ap("192.0.2.200:3478"), Mapped: ap("203.0.113.10:51002")},
				{Server: "stun.invalid:3478", Error: "resolve: no such host"},
			}},
			{Family: IPv6, IP: netip.MustParseAddr("2001:db8::10"), Source: SourceExpectIP, Detail: "given with --expect-ip"},
		},
		Probes: probes,
	}
	rep.Verdict = worst(probes[0].Verdict, probes[1].Verdict, probes[2].Verdict)

	return rep
}

func TestGoldenJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.golden.json", buf.Bytes())

	// The contract's fields are present with the documented types.
	var doc struct {
		Verdict   string `json:"verdict"`
		PublicIPs []struct {
			Family string  `json:"family"`
			IP     *string `json:"ip"`
			Source string  `json:"source"`
		} `json:"public_ips"`
		Probes []map[string]any `json:"probes"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Verdict != "rewritten" || len(doc.PublicIPs) != 2 || len(doc.Probes) != 3 {
		t.Fatalf("unexpected document %+v", doc)
	}
	for _, k := range []string{"target", "transport", "family", "mapped", "verdict", "reason", "detail", "rtt_ms"} {
		if _, ok := doc.Probes[2][k]; !ok {
			t.Errorf("probe without %q", k)
		}
	}
	if doc.Probes[2]["mapped"] != nil || doc.Probes[2]["rtt_ms"] != nil {
		t.Errorf("unanswered probe must have null mapped and rtt_ms: %v", doc.Probes[2])
	}
	if doc.Probes[1]["response_origin"] != "198.51.100.7:3478" {
		t.Errorf("response_origin %v", doc.Probes[1]["response_origin"])
	}
}

func TestGoldenText(t *testing.T) {
	for _, tc := range []struct {
		file  string
		color bool
	}{{"report.golden.txt", false}, {"report.golden.color.txt", true}} {
		t.Run(tc.file, func(t *testing.T) {
			var buf bytes.Buffer
			if err := sampleReport().WriteText(&buf, TextOptions{Color: tc.color}); err != nil {
				t.Fatal(err)
			}
			if has := strings.Contains(buf.String(), "\x1b["); has != tc.color {
				t.Errorf("escape sequences present = %v, want %v", has, tc.color)
			}
			golden.Assert(t, tc.file, buf.Bytes())
		})
	}
}

// sampleTURNReport is a fixed report of TURN probes: a working relay
// behind the load balancer over UDP, a relayed pod IP over TCP, and
// rejected credentials over TLS.
func sampleTURNReport() *Report {
	ap := netip.MustParseAddrPort
	public := netip.MustParseAddr("203.0.113.10")
	lb := ap("198.51.100.7:3478")
	probes := []Probe{
		{Target: "turn:turn.example.com", Address: lb, Transport: UDP, Family: IPv4,
			Local: ap("192.168.1.20:51000"), Mapped: ap("203.0.113.10:51000"), RTT: 2100 * time.Microsecond, Software: "Coturn-4.6.1",
			TURN: &TURNResult{Auth: TURNAuth{Status: AuthOK, Mechanism: "rest", Realm: "example.com"},
				Relayed: ap("198.51.100.7:49160"), Lifetime: 600 * time.Second, Released: true,
				Relay: TURNRelay{Status: RelayWorks, Peer: ap("203.0.113.10:51001"), RTT: 4321 * time.Microsecond}}},
		{Target: "turn:turn.example.com", Address: lb, Transport: TCP, Family: IPv4,
			Local: ap("192.168.1.20:51002"), Mapped: ap("203.0.113.10:51002"), RTT: 3 * time.Millisecond, Software: "Coturn-4.6.1",
			TURN: &TURNResult{Auth: TURNAuth{Status: AuthStaleNonce, Mechanism: "rest", Realm: "example.com"},
				Relayed: ap("10.244.1.7:49161"), Lifetime: 600 * time.Second, Released: true,
				Relay: TURNRelay{Status: RelayUnreachable, Peer: ap("203.0.113.10:51003")}}},
		{Target: "turns:turn.example.com", Address: ap("198.51.100.7:5349"), Transport: TLS, Family: IPv4, PublicIP: public,
			TURN: &TURNResult{Auth: TURNAuth{Status: AuthRejected, Mechanism: "rest", Realm: "example.com", Code: 401, Reason: "Unauthorized"},
				Relay: TURNRelay{Status: RelayNotTested, Detail: "No allocation to relay through."}}},
	}
	for i := range probes[:2] {
		p := &probes[i]
		p.PublicIP = public
		t := p.TURN
		t.RelayedClass, t.RelayedDetail = classifyRelayed(t.Relayed.Addr(), p.Address.Addr())
		t.Relay.Detail = relayOutcome(turn.Relay{Status: turn.RelayStatus(t.Relay.Status), Peer: t.Relay.Peer, RTT: t.Relay.RTT, Failed: turn.LegToRelay},
			t.RelayedClass, t.Relayed).Detail
		p.Judgement = judgeTURN(judge(observation{Mapped: p.Mapped, Local: p.Local, Target: p.Address, Public: public}), t)
	}
	probes[2].Judgement = Judgement{Verdict: Failed, Reason: ReasonCredentialsRejected,
		Detail: `The server rejected the credentials (401 Unauthorized after they were sent, realm "example.com").`,
		Hint:   "Credentials rejected: check the shared secret (coturn static-auth-secret, use-auth-secret) and the server's clock: REST credentials expire, and a server whose clock is ahead sees them as expired."}
	rep := &Report{
		PublicIPs: []PublicIP{{Family: IPv4, IP: public, Source: SourceExpectIP, Detail: "given with --expect-ip"}},
		Probes:    probes,
	}
	rep.Verdict = worst(probes[0].Verdict, probes[1].Verdict, probes[2].Verdict)

	return rep
}

func TestGoldenTURN(t *testing.T) {
	rep := sampleTURNReport()
	var txt, js bytes.Buffer
	if err := rep.WriteText(&txt, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.turn.golden.txt", txt.Bytes())
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "report.turn.golden.json", js.Bytes())

	var doc struct {
		Verdict string `json:"verdict"`
		Probes  []struct {
			Reason string `json:"reason"`
			TURN   *struct {
				Auth struct {
					Status *string `json:"status"`
					Code   *int    `json:"code"`
				} `json:"auth"`
				Relayed *struct {
					Address string `json:"address"`
					Class   string `json:"class"`
				} `json:"relayed"`
				Relay struct {
					Status string   `json:"status"`
					RTTms  *float64 `json:"rtt_ms"`
				} `json:"relay"`
				Released bool `json:"released"`
			} `json:"turn"`
		} `json:"probes"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Verdict != "failed" || len(doc.Probes) != 3 {
		t.Fatalf("verdict %s, %d probes", doc.Verdict, len(doc.Probes))
	}
	p0, p1, p2 := doc.Probes[0], doc.Probes[1], doc.Probes[2]
	if *p0.TURN.Auth.Status != "ok" || p0.TURN.Relayed.Class != "load-balancer" || p0.TURN.Relay.Status != "works" || *p0.TURN.Relay.RTTms != 4.321 || !p0.TURN.Released {
		t.Errorf("probe 0: %+v", p0.TURN)
	}
	if p1.Reason != "relayed-private-address" || p1.TURN.Relayed.Class != "private" || *p1.TURN.Auth.Status != "stale-nonce-recovered" {
		t.Errorf("probe 1: %s %+v", p1.Reason, p1.TURN)
	}
	if p2.Reason != "credentials-rejected" || *p2.TURN.Auth.Status != "rejected" || *p2.TURN.Auth.Code != 401 || p2.TURN.Relayed != nil || p2.TURN.Relay.Status != "not-tested" {
		t.Errorf("probe 2: %s %+v", p2.Reason, p2.TURN)
	}
	if !strings.Contains(txt.String(), "external-ip=<LB IP>/<pod IP>") {
		t.Error("the text does not give the external-ip fix")
	}
}
