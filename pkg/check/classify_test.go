package check

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		ip   string
		want class
	}{
		{"203.0.113.10", classPublic},
		{"8.8.8.8", classPublic},
		{"2001:db8::1", classPublic},
		{"10.0.0.1", classPrivate},
		{"172.16.5.4", classPrivate},
		{"172.32.0.1", classPublic},
		{"192.168.1.1", classPrivate},
		{"fd00::1", classPrivate},
		{"100.64.0.1", classCGNAT},
		{"100.127.255.254", classCGNAT},
		{"100.128.0.1", classPublic},
		{"169.254.10.1", classLinkLocal},
		{"fe80::1", classLinkLocal},
		{"127.0.0.1", classLoopback},
		{"127.9.9.9", classLoopback},
		{"::1", classLoopback},
		{"::ffff:10.1.2.3", classPrivate},
		{"0.0.0.0", classSpecial},
		{"224.0.0.1", classSpecial},
		{"::", classSpecial},
		// Issue 13 item 16: benchmarking space was "a public address".
		{"198.18.0.1", classSpecial},
		{"198.19.255.255", classSpecial},
		{"198.20.0.0", classPublic},
		{"2001:2::1", classSpecial},
		{"240.0.0.1", classSpecial},
		{"255.255.255.255", classSpecial},
		{"0.1.2.3", classSpecial},
		{"192.0.0.8", classSpecial},
		{"5f00::1", classSpecial},
		{"4000::1", classSpecial},
		{"::ffff:198.18.0.1", classSpecial},
		{"192.0.0.9", classPublic},
		{"64:ff9b::c000:221", classPublic},
		{"2001:0:4136:e378::1", classPublic},
		{"192.0.2.50", classPublic},
		{"3fff::1", classPublic},
	}
	for _, tc := range tests {
		t.Run(tc.ip, func(t *testing.T) {
			if got := classify(netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Errorf("classify(%s) = %s, want %s", tc.ip, got, tc.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	ap := netip.MustParseAddrPort
	ip := netip.MustParseAddr
	target := ap("198.51.100.7:3478")
	public := ip("203.0.113.10")
	tests := []struct {
		name        string
		obs         observation
		wantVerdict Verdict
		wantReason  Reason
		wantHint    bool
	}{
		{name: "same address", obs: observation{Mapped: ap("203.0.113.10:40000"), Local: ap("192.168.1.5:40000"), Target: target, Public: public}, wantVerdict: Preserved, wantReason: ReasonSameAddress},
		{name: "port changed", obs: observation{Mapped: ap("203.0.113.10:61000"), Local: ap("192.168.1.5:40000"), Target: target, Public: public}, wantVerdict: Preserved, wantReason: ReasonPortChanged},
		{name: "private node address", obs: observation{Mapped: ap("10.0.0.1:39807"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonPrivate, wantHint: true},
		{name: "ula", obs: observation{Mapped: ap("[fd00::5]:1"), Target: ap("[2001:db8::7]:3478"), Public: ip("2001:db8::10")}, wantVerdict: Rewritten, wantReason: ReasonPrivate, wantHint: true},
		{name: "cgnat", obs: observation{Mapped: ap("100.64.3.4:1"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonCGNAT, wantHint: true},
		{name: "link-local", obs: observation{Mapped: ap("169.254.1.1:1"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonLinkLocal, wantHint: true},
		{name: "loopback", obs: observation{Mapped: ap("127.0.0.1:1"), Target: ap("127.0.0.1:3478"), Public: public}, wantVerdict: Rewritten, wantReason: ReasonLoopback, wantHint: true},
		{name: "target address", obs: observation{Mapped: ap("198.51.100.7:5000"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonTarget, wantHint: true},
		{name: "private target address", obs: observation{Mapped: ap("10.96.0.20:5000"), Target: ap("10.96.0.20:3478"), Public: ip("10.1.1.1")}, wantVerdict: Rewritten, wantReason: ReasonTarget, wantHint: true},
		{name: "other public", obs: observation{Mapped: ap("192.0.2.44:1"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonOtherPublic, wantHint: true},
		{name: "special", obs: observation{Mapped: ap("0.0.0.0:1"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonSpecial, wantHint: true},
		{name: "benchmarking", obs: observation{Mapped: ap("198.18.0.5:1"), Target: target, Public: public}, wantVerdict: Rewritten, wantReason: ReasonSpecial, wantHint: true},
		{name: "no public ip", obs: observation{Mapped: ap("10.0.0.1:1"), Target: target}, wantVerdict: Inconclusive, wantReason: ReasonNoPublicIP, wantHint: true},
		{name: "private client is preserved", obs: observation{Mapped: ap("10.1.1.1:1"), Local: ap("10.1.1.1:2"), Target: ap("10.96.0.20:3478"), Public: ip("10.1.1.1")}, wantVerdict: Preserved, wantReason: ReasonPortChanged},
		{name: "loopback expect-ip", obs: observation{Mapped: ap("127.0.0.1:5"), Local: ap("127.0.0.1:5"), Target: ap("127.0.0.1:3478"), Public: ip("127.0.0.1")}, wantVerdict: Preserved, wantReason: ReasonSameAddress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := judge(tc.obs)
			if j.Verdict != tc.wantVerdict || j.Reason != tc.wantReason {
				t.Fatalf("got %s/%s, want %s/%s (%s)", j.Verdict, j.Reason, tc.wantVerdict, tc.wantReason, j.Detail)
			}
			if j.Detail == "" {
				t.Error("empty detail")
			}
			if (j.Hint != "") != tc.wantHint {
				t.Errorf("hint %q, want a hint: %v", j.Hint, tc.wantHint)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		name string
		in   []Verdict
		want Verdict
	}{
		{"none", nil, Inconclusive},
		{"all preserved", []Verdict{Preserved, Preserved}, Preserved},
		{"one rewritten", []Verdict{Preserved, Rewritten, Inconclusive}, Rewritten},
		{"one inconclusive", []Verdict{Preserved, Inconclusive}, Inconclusive},
		{"rewritten beats inconclusive", []Verdict{Inconclusive, Rewritten}, Rewritten},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := worst(tc.in...)
			if got != tc.want {
				t.Errorf("worst(%v) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// TestDescribeBenchmarking checks the words for an address in 198.18.0.0/15:
// it was called "a public address" (issue 13 item 16).
func TestDescribeBenchmarking(t *testing.T) {
	mapped := netip.MustParseAddrPort("198.18.0.5:1")
	j := judge(observation{Mapped: mapped, Target: netip.MustParseAddrPort("198.51.100.7:3478"), Public: netip.MustParseAddr("203.0.113.10")})
	if !strings.Contains(j.Detail, "Benchmarking, 198.18.0.0/15") || strings.Contains(j.Detail, "public address") {
		t.Errorf("detail %q", j.Detail)
	}
	j = judge(observation{Mapped: mapped, Target: netip.MustParseAddrPort("198.51.100.7:3478")})
	if !strings.Contains(j.Detail, "a special-purpose address (Benchmarking, 198.18.0.0/15)") {
		t.Errorf("detail without a public IP %q", j.Detail)
	}
}
