package check

import (
	"bytes"
	"encoding/json"
	"github.com/stund/stund/internal/golden"
	"net/netip"
	"strings"
	"testing"
	"time"
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
