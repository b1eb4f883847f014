package server

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pion/stun/v3"
)

// RFC 5769 test vectors, as verified in the project's shared test data.
const (
	rfc5769Request  = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"
	rfc5769IPv4     = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
	rfc5769IPv6     = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c"
	rfc5769LongTerm = "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666"
	rfc5769Password = "VOkJxbRl1RmTxUk/WvJxBt"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}

	return b
}

func decode(t *testing.T, b []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("decode response: %v", err)
	}

	return m
}

func TestRFC5769Vectors(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		m := decode(t, mustHex(t, rfc5769Request))
		if m.Type != stun.BindingRequest {
			t.Fatalf("type = %s", m.Type)
		}
		if err := stun.Fingerprint.Check(m); err != nil {
			t.Errorf("fingerprint: %v", err)
		}
		if err := stun.NewShortTermIntegrity(rfc5769Password).Check(m); err != nil {
			t.Errorf("message integrity: %v", err)
		}
		var sw stun.Software
		if err := sw.GetFrom(m); err != nil || sw.String() != "STUN test client" {
			t.Errorf("software = %q, %v", sw, err)
		}
	})
	for _, tc := range []struct {
		name string
		hex  string
		want string
	}{
		{"ipv4 response", rfc5769IPv4, "192.0.2.1:32853"},
		{"ipv6 response", rfc5769IPv6, "[2001:db8:1234:5678:11:2233:4455:6677]:32853"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, mustHex(t, tc.hex))
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Errorf("fingerprint: %v", err)
			}
			if err := stun.NewShortTermIntegrity(rfc5769Password).Check(m); err != nil {
				t.Errorf("message integrity: %v", err)
			}
			var xa stun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil {
				t.Fatal(err)
			}
			got := netip.AddrPortFrom(netip.MustParseAddr(xa.IP.String()), uint16(xa.Port)) //nolint:gosec // a port
			if got.String() != tc.want {
				t.Errorf("XOR-MAPPED-ADDRESS = %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("long-term request", func(t *testing.T) {
		m := decode(t, mustHex(t, rfc5769LongTerm))
		// "TheMatrIX" is the SASLprep'd password of RFC 5769 §2.4.
		integrity := stun.NewLongTermIntegrity("\u30de\u30c8\u30ea\u30c3\u30af\u30b9", "example.org", "TheMatrIX")
		if err := integrity.Check(m); err != nil {
			t.Errorf("message integrity: %v", err)
		}
	})
}

// TestHandleRFC5769Requests checks that the server answers the RFC 5769
// sample requests, which carry credentials and ICE attributes, like any
// other Binding request: a basic server does not authenticate.
func TestHandleRFC5769Requests(t *testing.T) {
	h := handler{software: []byte("stund")}
	src := netip.MustParseAddrPort("192.0.2.1:32853")
	for _, name := range []string{rfc5769Request, rfc5769LongTerm} {
		req := mustHex(t, name)
		resp, res := h.handle(newScratch(), req, src)
		if res.outcome != outcomeSuccess {
			t.Fatalf("outcome = %d (%s), want success", res.outcome, res.reason)
		}
		m := decode(t, resp)
		if m.TransactionID != [12]byte(req[8:20]) {
			t.Errorf("transaction ID not echoed")
		}
		assertMapped(t, m, src)
	}
}

func assertMapped(t *testing.T, m *stun.Message, want netip.AddrPort) {
	t.Helper()
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(m); err != nil {
		t.Fatalf("XOR-MAPPED-ADDRESS: %v", err)
	}
	ip, _ := netip.AddrFromSlice(xa.IP)
	got := netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port)) //nolint:gosec // a port
	if got != want {
		t.Errorf("XOR-MAPPED-ADDRESS = %s, want %s", got, want)
	}
}

// build returns a Binding-style message of type typ with the given
// setters, FINGERPRINT last unless noFingerprint.
func build(t testing.TB, typ stun.MessageType, setters ...stun.Setter) []byte {
	t.Helper()
	all := append([]stun.Setter{stun.TransactionID, typ}, setters...)
	m, err := stun.Build(all...)
	if err != nil {
		t.Fatal(err)
	}

	return m.Raw
}

func TestHandleReceiveRules(t *testing.T) {
	valid := build(t, stun.BindingRequest, stun.Fingerprint)
	withBits := bytes.Clone(valid)
	withBits[0] |= 0x80
	badCookie := bytes.Clone(valid)
	badCookie[4] ^= 0xff
	classic := bytes.Clone(build(t, stun.BindingRequest))
	copy(classic[4:8], []byte{1, 2, 3, 4})
	badLengthOdd := bytes.Clone(valid)
	binary.BigEndian.PutUint16(badLengthOdd[2:4], 6)
	trailing := append(bytes.Clone(valid), 0, 0, 0, 0)
	badFP := bytes.Clone(valid)
	badFP[len(badFP)-1] ^= 1
	fpNotLast := build(t, stun.BindingRequest, stun.Fingerprint, stun.NewSoftware("x"))
	truncatedAttr := build(t, stun.BindingRequest, stun.NewSoftware("abcd"))
	binary.BigEndian.PutUint16(truncatedAttr[22:24], 200)

	tests := []struct {
		name    string
		msg     []byte
		rfc3489 bool
		outcome outcome
		reason  reason
		src     string
	}{
		{"valid with fingerprint", valid, false, outcomeSuccess, reasonNone, ""},
		{"valid without fingerprint", build(t, stun.BindingRequest), false, outcomeSuccess, reasonNone, ""},
		{"empty", nil, false, outcomeDiscard, reasonShort, ""},
		{"short header", valid[:19], false, outcomeDiscard, reasonShort, ""},
		{"first two bits set", withBits, false, outcomeDiscard, reasonNotSTUN, ""},
		{"length not multiple of 4", badLengthOdd, false, outcomeDiscard, reasonBadLength, ""},
		{"trailing bytes after message", trailing, false, outcomeDiscard, reasonBadLength, ""},
		{"truncated datagram", valid[:len(valid)-4], false, outcomeDiscard, reasonBadLength, ""},
		{"wrong magic cookie on a response type", func() []byte {
			b := bytes.Clone(badCookie)
			binary.BigEndian.PutUint16(b[0:2], 0x0101)

			return b
		}(), false, outcomeDiscard, reasonBadCookie, ""},
		{"classic request, rfc3489 off", classic, false, outcomeDiscard, reasonRFC3489Disabled, ""},
		{"classic request, rfc3489 on", classic, true, outcomeSuccess, reasonNone, ""},
		{"attribute overruns message", truncatedAttr, false, outcomeDiscard, reasonMalformed, ""},
		{"bad fingerprint", badFP, false, outcomeDiscard, reasonBadFingerprint, ""},
		{"fingerprint not last", fpNotLast, false, outcomeDiscard, reasonBadFingerprint, ""},
		{"indication", build(t, stun.NewType(stun.MethodBinding, stun.ClassIndication)), false, outcomeDiscard, reasonIndication, ""},
		{"success response", build(t, stun.BindingSuccess), false, outcomeDiscard, reasonResponse, ""},
		{"error response", build(t, stun.BindingError), false, outcomeDiscard, reasonResponse, ""},
		{"allocate request", build(t, stun.NewType(stun.MethodAllocate, stun.ClassRequest)), false, outcomeDiscard, reasonUnsupportedMethod, ""},
		{"unknown optional attribute", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0xC001, Value: []byte{1, 2, 3}}), false, outcomeSuccess, reasonNone, ""},
		{"unknown required attribute", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x7F01, Value: []byte{1}}), false, outcomeError420, reasonNone, ""},
		{"credentials are not checked", build(t, stun.BindingRequest, stun.NewUsername("a:b"), stun.NewShortTermIntegrity("wrong"), stun.Fingerprint), false, outcomeSuccess, reasonNone, ""},
		{"change request asking nothing", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 0}}), false, outcomeSuccess, reasonNone, ""},
		{"change request for another ip", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 4}}), false, outcomeError420, reasonNone, ""},
		{"change request for another port", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 2}}), false, outcomeError420, reasonNone, ""},
		{"response-port is not supported", build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x0027, Value: []byte{0, 1, 0, 0}}), false, outcomeError420, reasonNone, ""},
		{"from port 0", valid, false, outcomeDiscard, reasonBadSource, "203.0.113.10:0"},
		{"from unspecified", valid, false, outcomeDiscard, reasonBadSource, "0.0.0.0:5000"},
		{"from broadcast", valid, false, outcomeDiscard, reasonBadSource, "255.255.255.255:5000"},
		{"from multicast", valid, false, outcomeDiscard, reasonBadSource, "[ff02::1]:5000"},
		{"from mapped multicast", valid, false, outcomeDiscard, reasonBadSource, "[::ffff:224.0.0.1]:5000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := netip.MustParseAddrPort("203.0.113.10:40000")
			if tc.src != "" {
				src = netip.MustParseAddrPort(tc.src)
			}
			h := handler{software: []byte("stund"), rfc3489: tc.rfc3489}
			resp, res := h.handle(newScratch(), tc.msg, src)
			if res.outcome != tc.outcome || res.reason != tc.reason {
				t.Fatalf("got outcome %d reason %s, want outcome %d reason %s", res.outcome, res.reason, tc.outcome, tc.reason)
			}
			if (resp == nil) != (tc.outcome == outcomeDiscard) {
				t.Fatalf("response %x for outcome %d", resp, res.outcome)
			}
			if len(resp) >= 548 {
				t.Errorf("response is %d bytes, want under 548", len(resp))
			}
		})
	}
}

func TestSuccessResponse(t *testing.T) {
	origin4 := netip.MustParseAddrPort("198.51.100.1:3478")
	origin6 := netip.MustParseAddrPort("[2001:db8::100]:3478")
	tests := []struct {
		name     string
		software string
		origins  []netip.AddrPort
		src      netip.AddrPort
		want     netip.AddrPort // the RESPONSE-ORIGIN expected, if any
	}{
		{"ipv4 with software", "stund", nil, netip.MustParseAddrPort("198.51.100.7:3478"), netip.AddrPort{}},
		{"ipv6 no software", "", nil, netip.MustParseAddrPort("[2001:db8::1]:65535"), netip.AddrPort{}},
		{"mapped ipv4 source", "stund", nil, netip.MustParseAddrPort("[::ffff:192.0.2.9]:1"), netip.AddrPort{}},
		{"response origin", "stund", []netip.AddrPort{origin4}, netip.MustParseAddrPort("192.0.2.1:5000"), origin4},
		{"ipv4 origin only: none to an ipv6 client", "stund", []netip.AddrPort{origin4}, netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.AddrPort{}},
		{"ipv6 origin only: none to an ipv4 client", "stund", []netip.AddrPort{origin6}, netip.MustParseAddrPort("192.0.2.1:5000"), netip.AddrPort{}},
		{"both: ipv4 client gets the ipv4 one", "stund", []netip.AddrPort{origin6, origin4}, netip.MustParseAddrPort("192.0.2.1:5000"), origin4},
		{"both: mapped ipv4 client gets the ipv4 one", "stund", []netip.AddrPort{origin4, origin6}, netip.MustParseAddrPort("[::ffff:192.0.2.1]:5000"), origin4},
		{"both: ipv6 client gets the ipv6 one", "stund", []netip.AddrPort{origin4, origin6}, netip.MustParseAddrPort("[2001:db8::1]:5000"), origin6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Software: tc.software, ResponseOrigin: tc.origins})
			if err != nil {
				t.Fatal(err)
			}
			req := build(t, stun.BindingRequest, stun.Fingerprint)
			resp, _ := s.h.handle(newScratch(), req, tc.src)
			m := decode(t, resp)
			if m.Type != stun.BindingSuccess {
				t.Fatalf("type %s", m.Type)
			}
			if m.TransactionID != [12]byte(req[8:20]) {
				t.Error("transaction ID differs")
			}
			assertMapped(t, m, netip.AddrPortFrom(tc.src.Addr().Unmap(), tc.src.Port()))
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Errorf("fingerprint: %v", err)
			}
			if last := m.Attributes[len(m.Attributes)-1]; last.Type != stun.AttrFingerprint {
				t.Errorf("last attribute %s, want FINGERPRINT", last.Type)
			}
			var sw stun.Software
			err = sw.GetFrom(m)
			if tc.software == "" && err == nil {
				t.Errorf("SOFTWARE %q sent although disabled", sw)
			}
			if tc.software != "" && sw.String() != tc.software {
				t.Errorf("SOFTWARE = %q (%v)", sw, err)
			}
			if m.Contains(stun.AttrOtherAddress) {
				t.Error("OTHER-ADDRESS sent by a single-address server")
			}
			var ro stun.ResponseOrigin
			err = ro.GetFrom(m)
			if tc.want.IsValid() {
				if err != nil || ro.String() != tc.want.String() {
					t.Errorf("RESPONSE-ORIGIN = %s (%v), want %s", ro, err, tc.want)
				}
			} else if err == nil {
				t.Errorf("RESPONSE-ORIGIN %s sent to a client at %s, want none", ro, tc.src)
			}
		})
	}
}

// TestResponseOriginRefused checks that New refuses two origins of one
// family, which would leave it to chance which one a client learns.
func TestResponseOriginRefused(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
	}{
		{"two ipv4", []string{"198.51.100.1:3478", "198.51.100.2:3478"}},
		{"two ipv6", []string{"[2001:db8::1]:3478", "[2001:db8::2]:3478"}},
		{"ipv4 and mapped ipv4", []string{"198.51.100.1:3478", "[::ffff:198.51.100.2]:3478"}},
		{"unspecified", []string{"0.0.0.0:3478"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var origins []netip.AddrPort
			for _, o := range tc.origins {
				origins = append(origins, netip.MustParseAddrPort(o))
			}
			if _, err := New(Config{ResponseOrigin: origins}); !errors.Is(err, ErrBadResponseOrigin) {
				t.Errorf("New: %v, want %v", err, ErrBadResponseOrigin)
			}
		})
	}
	if _, err := New(Config{ResponseOrigin: []netip.AddrPort{{}}}); !errors.Is(err, ErrBadResponseOrigin) {
		t.Errorf("New with a zero origin: %v, want %v", err, ErrBadResponseOrigin)
	}
}

func TestError420(t *testing.T) {
	h := handler{software: []byte("stund")}
	req := build(t, stun.BindingRequest,
		stun.RawAttribute{Type: 0x7F01, Value: []byte{1}},
		stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 6}},
		stun.RawAttribute{Type: 0x7F01, Value: []byte{2}},
		stun.RawAttribute{Type: 0x8F01, Value: []byte{2}},
		stun.Fingerprint)
	resp, res := h.handle(newScratch(), req, netip.MustParseAddrPort("192.0.2.1:1"))
	if res.outcome != outcomeError420 {
		t.Fatalf("outcome %d", res.outcome)
	}
	m := decode(t, resp)
	if m.Type != stun.BindingError {
		t.Fatalf("type %s", m.Type)
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil || ec.Code != stun.CodeUnknownAttribute {
		t.Fatalf("ERROR-CODE %v (%v)", ec, err)
	}
	var ua stun.UnknownAttributes
	if err := ua.GetFrom(m); err != nil {
		t.Fatal(err)
	}
	if len(ua) != 2 || ua[0] != 0x7F01 || ua[1] != 0x0003 {
		t.Errorf("UNKNOWN-ATTRIBUTES = %v, want [0x7f01 CHANGE-REQUEST] once each", ua)
	}
	if m.Contains(stun.AttrSoftware) {
		t.Error("a 420 carries SOFTWARE: it only makes the error a better reflector")
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Errorf("fingerprint: %v", err)
	}
}

// TestError420Bounded checks that a request crammed with unknown
// attributes cannot make the answer bigger than the request.
func TestError420Bounded(t *testing.T) {
	var setters []stun.Setter
	for i := range 120 {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrType(0x7000 + i)})
	}
	req := build(t, stun.BindingRequest, setters...)
	resp, res := handler{}.handleOnce(req)
	if res.outcome != outcomeError420 {
		t.Fatalf("outcome %d", res.outcome)
	}
	if len(resp) >= len(req) || len(resp) >= 548 {
		t.Errorf("420 of %d bytes for a %d-byte request", len(resp), len(req))
	}
}

func (h handler) handleOnce(b []byte) ([]byte, result) {
	return h.handle(newScratch(), b, netip.MustParseAddrPort("192.0.2.1:1"))
}

func TestClassicResponse(t *testing.T) {
	req := build(t, stun.BindingRequest)
	copy(req[4:8], []byte{9, 8, 7, 6})
	h := handler{rfc3489: true, software: []byte("stund")}
	src := netip.MustParseAddrPort("192.0.2.33:4444")
	resp, _ := h.handle(newScratch(), req, src)
	if !bytes.Equal(resp[4:20], req[4:20]) {
		t.Errorf("the 16-byte transaction ID is not echoed")
	}
	if binary.BigEndian.Uint16(resp[0:2]) != 0x0101 {
		t.Errorf("type %#04x", resp[0:2])
	}
	// MAPPED-ADDRESS alone: type 1, length 8, family 1, port, address.
	want := []byte{0, 1, 0, 8, 0, 1, 0x11, 0x5c, 192, 0, 2, 33}
	if !bytes.Equal(resp[20:], want) || binary.BigEndian.Uint16(resp[2:4]) != 12 {
		t.Errorf("body %x, want %x", resp[2:], want)
	}
}

// TestResponsesDoNotLeak checks that nothing of an earlier, larger
// exchange survives in a later response built with the same scratch.
func TestResponsesDoNotLeak(t *testing.T) {
	s := newScratch()
	h := handler{software: []byte("stund")}
	big := build(t, stun.BindingRequest, stun.RawAttribute{Type: 0x7F01, Value: bytes.Repeat([]byte{0xAA}, 3)},
		stun.RawAttribute{Type: 0x7F02}, stun.RawAttribute{Type: 0x7F03})
	if _, res := h.handle(s, big, netip.MustParseAddrPort("[2001:db8::1]:1")); res.outcome != outcomeError420 {
		t.Fatal("setup: want a 420")
	}
	small := build(t, stun.BindingRequest)
	resp, _ := h.handle(s, small, netip.MustParseAddrPort("192.0.2.1:1"))
	fresh, _ := h.handle(newScratch(), small, netip.MustParseAddrPort("192.0.2.1:1"))
	if !bytes.Equal(resp, fresh) {
		t.Errorf("reused scratch gives %x, fresh gives %x", resp, fresh)
	}
}

func TestStaticClassifier(t *testing.T) {
	c := StaticClassifier{Internal: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28")}}
	tests := []struct {
		addr string
		want SourceClass
	}{
		{"203.0.113.10", ClassClient},
		{"2001:db8::1", ClassClient},
		{"10.0.1.23", ClassPrivate},
		{"192.168.1.1", ClassPrivate},
		{"100.64.0.1", ClassPrivate},
		{"169.254.1.1", ClassPrivate},
		{"127.0.0.1", ClassPrivate},
		{"fd00::1", ClassPrivate},
		{"fe80::1", ClassPrivate},
		{"::ffff:10.0.0.1", ClassPrivate},
		{"198.51.100.5", ClassPrivate},
		{"198.51.100.20", ClassClient},
	}
	for _, tc := range tests {
		if got := c.Classify(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Classify(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// amplificationCases are the rows of the amplification table in
// docs/security.md: the answers stund gives with its defaults (SOFTWARE
// "stund", FINGERPRINT), and with --rfc3489 or --response-origin where
// named.
func amplificationCases(t *testing.T) []struct {
	name string
	cfg  Config
	req  []byte
	src  string
} {
	t.Helper()
	classic := func(attrs ...byte) []byte {
		b := build(t, stun.BindingRequest)
		copy(b[4:8], []byte{9, 8, 7, 6})
		b = append(b, attrs...)
		binary.BigEndian.PutUint16(b[2:4], uint16(len(attrs))) //nolint:gosec // a few bytes

		return b
	}
	def := Config{Software: "stund"}
	withOrigin := Config{Software: "stund", ResponseOrigin: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}}
	rfc3489 := Config{Software: "stund", RFC3489: true}
	unknown := stun.RawAttribute{Type: 0x7F01}

	return []struct {
		name string
		cfg  Config
		req  []byte
		src  string
	}{
		{"bare Binding request, IPv4 source", def, build(t, stun.BindingRequest), "203.0.113.10:5000"},
		{"bare Binding request, IPv6 source", def, build(t, stun.BindingRequest), "[2001:db8::1]:5000"},
		{"with FINGERPRINT, IPv4", def, build(t, stun.BindingRequest, stun.Fingerprint), "203.0.113.10:5000"},
		{"browser-like (SOFTWARE, FINGERPRINT), IPv4", def, build(t, stun.BindingRequest, stun.NewSoftware("libwebrtc"), stun.Fingerprint), "203.0.113.10:5000"},
		{"unknown comprehension-required attribute (420), IPv4", def, build(t, stun.BindingRequest, unknown), "203.0.113.10:5000"},
		{"unknown comprehension-required attribute (420), IPv6", def, build(t, stun.BindingRequest, unknown), "[2001:db8::1]:5000"},
		{"bare Binding request with an IPv4 `--response-origin`, IPv4", withOrigin, build(t, stun.BindingRequest), "203.0.113.10:5000"},
		{"classic RFC 3489 request (`--rfc3489`), IPv4", rfc3489, classic(), "203.0.113.10:5000"},
		{"classic RFC 3489 request (`--rfc3489`), IPv6", rfc3489, classic(), "[2001:db8::1]:5000"},
		{"classic CHANGE-REQUEST (`--rfc3489`, 420), IPv4", rfc3489, classic(0, 3, 0, 4, 0, 0, 0, 6), "203.0.113.10:5000"},
	}
}

// TestAmplification measures bytes out over bytes in and checks them
// against the amplification table in docs/security.md, row by row: the
// table is this test's output. A 24-byte request with an unknown
// attribute must get at most 2.7 times its size back.
func TestAmplification(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	inTable := false
	for _, line := range strings.Split(string(readme), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "| Request | In | Out | Out/in |":
			inTable = true
		case inTable && strings.HasPrefix(line, "|---"):
		case inTable && strings.HasPrefix(line, "|"):
			cells := strings.Split(strings.Trim(line, "|"), "|")
			documented[strings.TrimSpace(cells[0])] = line
		default:
			inTable = false
		}
	}
	cases := amplificationCases(t)
	if len(documented) != len(cases) {
		t.Errorf("docs/security.md's amplification table has %d rows, the test %d", len(documented), len(cases))
	}
	for _, tc := range cases {
		s, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, res := s.h.handle(newScratch(), tc.req, netip.MustParseAddrPort(tc.src))
		if resp == nil {
			t.Fatalf("%s: no answer (%s)", tc.name, res.reason)
		}
		ratio := float64(len(resp)) / float64(len(tc.req))
		row := fmt.Sprintf("| %s | %d | %d | %.2f |", tc.name, len(tc.req), len(resp), ratio)
		t.Log(row)
		if documented[tc.name] != row {
			t.Errorf("docs/security.md row\n\t%s\nwant\n\t%s", documented[tc.name], row)
		}
		if res.outcome == outcomeError420 && ratio > 2.7 {
			t.Errorf("%s: a 420 of %d bytes for %d, %.2fx: over 2.7x", tc.name, len(resp), len(tc.req), ratio)
		}
	}
}

// TestError420Largest checks the bound docs/security.md states: a 420
// answer is at most 124 bytes however many unknown attributes come,
// SOFTWARE or not.
func TestError420Largest(t *testing.T) {
	var setters []stun.Setter
	for i := range 200 {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrType(0x7000 + i)})
	}
	resp, _ := handler{software: []byte("stund")}.handleOnce(build(t, stun.BindingRequest, setters...))
	if len(resp) != 124 {
		t.Errorf("largest 420 is %d bytes, docs/security.md says 124", len(resp))
	}
}

// TestClassicChangeRequest checks that with --rfc3489 a classic request
// asking for another address or port gets a Binding Error Response, never
// a success from the one address stund has: that success would tell a
// classic client its NAT filters nothing (RFC 3489 §10.1, test II).
func TestClassicChangeRequest(t *testing.T) {
	classic := func(attrs ...byte) []byte {
		b := build(t, stun.BindingRequest)
		copy(b[4:8], []byte{9, 8, 7, 6})
		b = append(b, attrs...)
		binary.BigEndian.PutUint16(b[2:4], uint16(len(attrs))) //nolint:gosec // a few bytes

		return b
	}
	software := []byte{0x80, 0x22, 0, 4, 'a', 'b', 'c', 'd'}
	tests := []struct {
		name    string
		req     []byte
		outcome outcome
		reason  reason
	}{
		{"no change request", classic(), outcomeSuccess, reasonNone},
		{"change request asking nothing", classic(0, 3, 0, 4, 0, 0, 0, 0), outcomeSuccess, reasonNone},
		{"change ip and port (test II)", classic(0, 3, 0, 4, 0, 0, 0, 6), outcomeError420, reasonNone},
		{"change ip", classic(0, 3, 0, 4, 0, 0, 0, 4), outcomeError420, reasonNone},
		{"change port (test III)", classic(0, 3, 0, 4, 0, 0, 0, 2), outcomeError420, reasonNone},
		{"after another attribute", classic(append(bytes.Clone(software), 0, 3, 0, 4, 0, 0, 0, 2)...), outcomeError420, reasonNone},
		{"change request of the wrong size", classic(0, 3, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0), outcomeError420, reasonNone},
		{"attribute overruns the message", classic(0, 3, 0, 8, 0, 0, 0, 6), outcomeDiscard, reasonMalformed},
		{"after a padded odd-length attribute", classic(0x80, 0x22, 0, 1, 'a', 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 2), outcomeError420, reasonNone},
		{"attribute header cut short", classic(0x80, 0x22, 0, 0, 0, 3, 0, 4), outcomeDiscard, reasonMalformed},
	}
	h := handler{rfc3489: true, software: []byte("stund")}
	src := netip.MustParseAddrPort("192.0.2.33:4444")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, res := h.handle(newScratch(), tc.req, src)
			if res.outcome != tc.outcome || res.reason != tc.reason {
				t.Fatalf("outcome %d reason %s, want outcome %d reason %s", res.outcome, res.reason, tc.outcome, tc.reason)
			}
			if res.outcome == outcomeDiscard {
				return
			}
			if !bytes.Equal(resp[4:20], tc.req[4:20]) {
				t.Errorf("the 16-byte transaction ID is not echoed")
			}
			typ := binary.BigEndian.Uint16(resp[0:2])
			if res.outcome == outcomeSuccess {
				if typ != 0x0101 {
					t.Errorf("type %#04x, want a Binding Response", typ)
				}

				return
			}
			// A Binding Error Response: ERROR-CODE 420 with its reason
			// padded to 4 bytes, UNKNOWN-ATTRIBUTES naming CHANGE-REQUEST
			// twice (RFC 3489 §11.2.9, §11.2.10).
			want := []byte{0x01, 0x11, 0, 36}
			want = append(want, tc.req[4:20]...)
			want = append(want, 0, 9, 0, 24, 0, 0, 4, 20)
			want = append(want, "Unknown Attribute   "...)
			want = append(want, 0, 0x0A, 0, 4, 0, 3, 0, 3)
			if !bytes.Equal(resp, want) {
				t.Errorf("answer\n\t%x\nwant\n\t%x", resp, want)
			}
		})
	}
}

// TestMaxAmplification checks the worst answer per byte that stund's
// start-up warning is about, for the families a server listens on.
func TestMaxAmplification(t *testing.T) {
	origin4 := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478")}
	long := strings.Repeat("s", 40)
	tests := []struct {
		name   string
		cfg    Config
		listen string // started on it when set
		want   Amplification
	}{
		// An IPv6 success is 64 bytes (3.2x), 52 with its own address at
		// an IPv4 one's size: the 420 is worse.
		{"defaults", Config{Software: "stund"}, "", Amplification{Request: 24, Response: 64}},
		{"no software: the 420 is the worst", Config{}, "", Amplification{Request: 24, Response: 64}},
		{"ipv4 origin", Config{Software: "stund", ResponseOrigin: origin4}, "", Amplification{Request: 20, Response: 64}},
		{"long software", Config{Software: long}, "", Amplification{Request: 20, Response: 84}},
		{"ipv6 origin", Config{Software: "stund", ResponseOrigin: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:3478")}}, "", Amplification{Request: 20, Response: 88, IPv6: true, AddressExtra: 12}},
		{"rfc3489 adds nothing worse", Config{RFC3489: true}, "", Amplification{Request: 24, Response: 64}},
		{"listening on ipv4 only", Config{Software: "stund"}, "127.0.0.1:0", Amplification{Request: 24, Response: 64}},
		{"listening on ipv4 only, long software", Config{Software: long}, "127.0.0.1:0", Amplification{Request: 20, Response: 84}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s *Server
			if tc.listen != "" {
				tc.cfg.Listen = []string{tc.listen}
				s, _ = startServer(t, tc.cfg)
			} else {
				var err error
				if s, err = New(tc.cfg); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.MaxAmplification(); got != tc.want {
				t.Errorf("MaxAmplification = %+v, want %+v", got, tc.want)
			}
		})
	}
}
