package check

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestReasonTexts(t *testing.T) {
	texts := ReasonTexts()
	for _, r := range []Reason{ReasonSameAddress, ReasonPortChanged, ReasonPrivate, ReasonCGNAT, ReasonLinkLocal, ReasonLoopback,
		ReasonTarget, ReasonOtherPublic, ReasonSpecial, ReasonNoPublicIP, ReasonCredentialsRejected, ReasonRelayedPrivate} {
		rt, ok := texts[r]
		if !ok {
			t.Errorf("no text for %s", r)
			continue
		}
		for _, s := range []string{"203.0.113", "10.11.12.13", "44444", "55555", "33333", "192.0.2.55"} {
			if strings.Contains(rt.Detail+rt.Hint, s) {
				t.Errorf("%s: example value %s left in %q / %q", r, s, rt.Detail, rt.Hint)
			}
		}
	}
	b, _ := json.MarshalIndent(texts, "", "  ")
	t.Logf("%s", b)
}

// TestReasonTextsExpand fills the templates in as the page does and
// compares with what the CLI says for the same observation.
func TestReasonTextsExpand(t *testing.T) {
	o := observation{Mapped: mustAddrPort("172.16.3.4:40000"), Local: mustAddrPort("10.0.0.2:50000"),
		Target: mustAddrPort("198.51.100.10:3478"), Public: mustAddr("203.0.113.50")}
	want := judge(o)
	rt := ReasonTexts()[want.Reason]
	r := strings.NewReplacer("{mapped}", o.Mapped.String(), "{public}", o.Public.String())
	if got := r.Replace(rt.Detail); got != want.Detail {
		t.Errorf("detail\n got %q\nwant %q", got, want.Detail)
	}
	if rt.Hint != want.Hint {
		t.Errorf("hint\n got %q\nwant %q", rt.Hint, want.Hint)
	}
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestAddressRanges: an address takes the class of the most specific
// block holding it, as classify says.
func TestAddressRanges(t *testing.T) {
	ranges := AddressRanges()
	for _, s := range []string{"10.1.0.1", "100.64.1.2", "169.254.0.9", "127.0.0.1", "198.18.0.1", "192.0.0.9", "192.0.0.170",
		"203.0.113.10", "8.8.8.8", "fd00:1::1", "fe80::1", "::1", "2001:db8::7", "ff02::1", "64:ff9b::1"} {
		ip := netip.MustParseAddr(s)
		got, bits := "public", -1
		for _, r := range ranges {
			p := netip.MustParsePrefix(r.Prefix)
			if p.Contains(ip) && p.Bits() > bits {
				got, bits = r.Class, p.Bits()
			}
		}
		if want := string(classify(ip)); got != want {
			t.Errorf("%s: the ranges say %s, classify %s", s, got, want)
		}
	}
}
