package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net/netip"
	"testing"
)

// The test vectors of RFC 5769 §2, in hex.
const (
	vectorRequest   = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"
	vectorIPv4      = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
	vectorIPv6      = "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c"
	vectorLongTerm  = "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b900000015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666"
	vectorID        = "b7e7a701bc34d686fa87dfae"
	vectorLongTermD = "78ad3433c6ad72c029da412e"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}

	return b
}

func mustID(t testing.TB, s string) TransactionID {
	t.Helper()

	return TransactionID(mustHex(t, s))
}

func TestRFC5769Decode(t *testing.T) {
	type attr struct {
		typ   AttrType
		value string // hex; "" to skip the comparison
	}
	tests := []struct {
		name   string
		raw    string
		typ    MessageType
		id     string
		attrs  []attr
		mapped netip.AddrPort
	}{
		{
			name: "2.1 request", raw: vectorRequest, typ: BindingRequest, id: vectorID,
			attrs: []attr{
				{AttrSoftware, hex.EncodeToString([]byte("STUN test client"))},
				{AttrPriority, "6e0001ff"},
				{AttrICEControlled, "932ff9b151263b36"},
				{AttrUsername, hex.EncodeToString([]byte("evtj:h6vY"))},
				{AttrMessageIntegrity, "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"},
				{AttrFingerprint, "e57a3bcf"},
			},
		},
		{
			name: "2.2 IPv4 response", raw: vectorIPv4, typ: BindingSuccess, id: vectorID,
			attrs: []attr{
				{AttrSoftware, hex.EncodeToString([]byte("test vector"))},
				{AttrXORMappedAddress, ""},
				{AttrMessageIntegrity, "2b91f599fd9e90c38c7489f92af9ba53f06be7d7"},
				{AttrFingerprint, "c07d4c96"},
			},
			mapped: netip.MustParseAddrPort("192.0.2.1:32853"),
		},
		{
			name: "2.3 IPv6 response", raw: vectorIPv6, typ: BindingSuccess, id: vectorID,
			attrs: []attr{
				{AttrSoftware, hex.EncodeToString([]byte("test vector"))},
				{AttrXORMappedAddress, ""},
				{AttrMessageIntegrity, "a382954e4be67bf11784c97c8292c275bfe3ed41"},
				{AttrFingerprint, "c8fb0b4c"},
			},
			mapped: netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"),
		},
		{
			name: "2.4 long-term authentication", raw: vectorLongTerm, typ: BindingRequest, id: vectorLongTermD,
			attrs: []attr{
				{AttrUsername, hex.EncodeToString([]byte("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9"))},
				{AttrNonce, hex.EncodeToString([]byte("f//499k954d6OL34oL9FSTvy64sA"))},
				{AttrRealm, hex.EncodeToString([]byte("example.org"))},
				{AttrMessageIntegrity, "f67024656dd64a3e02b8e0712e85c9a28ca89666"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := m.Decode(mustHex(t, tc.raw)); err != nil {
				t.Fatal(err)
			}
			if m.Type() != tc.typ || m.Classic() {
				t.Errorf("type %s classic %v, want %s", m.Type(), m.Classic(), tc.typ)
			}
			if m.TransactionID() != mustID(t, tc.id) {
				t.Errorf("transaction ID %x, want %s", m.TransactionID(), tc.id)
			}
			if m.Len() != len(tc.attrs) {
				t.Fatalf("%d attributes, want %d", m.Len(), len(tc.attrs))
			}
			for i, want := range tc.attrs {
				a := m.Attr(i)
				if a.Type != want.typ {
					t.Errorf("attribute %d is %s, want %s", i, a.Type, want.typ)
				}
				if want.value != "" && hex.EncodeToString(a.Value) != want.value {
					t.Errorf("%s = %x, want %s", a.Type, a.Value, want.value)
				}
			}
			if err := m.CheckFingerprint(); err != nil {
				t.Errorf("fingerprint: %v", err)
			}
			got, err := m.XORAddress(AttrXORMappedAddress)
			if tc.mapped.IsValid() {
				if err != nil || got != tc.mapped {
					t.Errorf("XOR-MAPPED-ADDRESS %s (%v), want %s", got, err, tc.mapped)
				}
			} else if err != ErrNoAttribute {
				t.Errorf("XOR-MAPPED-ADDRESS %s (%v), want ErrNoAttribute", got, err)
			}
		})
	}
}

// TestRFC5769Encode builds the vectors again from what they say and
// compares byte for byte. The vectors pad with spaces where this package
// pads with zeros (as RFC 8489 §14 has senders do), so the expected bytes
// are the vector's with its padding zeroed and FINGERPRINT recomputed.
// MESSAGE-INTEGRITY is copied: computing it is not this package's job.
func TestRFC5769Encode(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		build func(m *Message, b *Builder)
	}{
		{"2.1 request", vectorRequest, func(m *Message, b *Builder) {
			b.AddString(AttrSoftware, "STUN test client")
			prio, _ := m.Get(AttrPriority)
			b.Add(AttrPriority, prio)
			ice, _ := m.Get(AttrICEControlled)
			b.Add(AttrICEControlled, ice)
			b.AddString(AttrUsername, "evtj:h6vY")
			mi, _ := m.Get(AttrMessageIntegrity)
			b.Add(AttrMessageIntegrity, mi)
			b.AddFingerprint()
		}},
		{"2.2 IPv4 response", vectorIPv4, func(m *Message, b *Builder) {
			b.AddString(AttrSoftware, "test vector")
			b.AddXORAddress(AttrXORMappedAddress, netip.MustParseAddrPort("192.0.2.1:32853"))
			mi, _ := m.Get(AttrMessageIntegrity)
			b.Add(AttrMessageIntegrity, mi)
			b.AddFingerprint()
		}},
		{"2.3 IPv6 response", vectorIPv6, func(m *Message, b *Builder) {
			b.AddString(AttrSoftware, "test vector")
			b.AddXORAddress(AttrXORMappedAddress, netip.MustParseAddrPort("[2001:db8:1234:5678:11:2233:4455:6677]:32853"))
			mi, _ := m.Get(AttrMessageIntegrity)
			b.Add(AttrMessageIntegrity, mi)
			b.AddFingerprint()
		}},
		{"2.4 long-term authentication", vectorLongTerm, func(m *Message, b *Builder) {
			b.AddString(AttrUsername, "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9")
			b.AddString(AttrNonce, "f//499k954d6OL34oL9FSTvy64sA")
			b.AddString(AttrRealm, "example.org")
			mi, _ := m.Get(AttrMessageIntegrity)
			b.Add(AttrMessageIntegrity, mi)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustHex(t, tc.raw)
			var m Message
			if err := m.Decode(raw); err != nil {
				t.Fatal(err)
			}
			b := NewBuilder(nil, m.Type(), m.TransactionID())
			tc.build(&m, &b)
			got, err := b.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if want := zeroPadding(t, raw); !bytes.Equal(got, want) {
				t.Errorf("built\n%x\nwant\n%x", got, want)
			}
		})
	}
}

// zeroPadding returns a copy of the well-formed message raw with every
// padding byte zero and a final 4-byte FINGERPRINT recomputed. It walks the
// message itself rather than trusting Decode.
func zeroPadding(t testing.TB, raw []byte) []byte {
	t.Helper()
	out := bytes.Clone(raw)
	for off := HeaderSize; off < len(out); {
		typ := binary.BigEndian.Uint16(out[off:])
		l := int(binary.BigEndian.Uint16(out[off+2:]))
		end := off + 4 + l
		for end%4 != 0 {
			out[end] = 0
			end++
		}
		if typ == 0x8028 && l == 4 && end == len(out) {
			binary.BigEndian.PutUint32(out[off+4:], crc32.ChecksumIEEE(out[:off])^0x5354554e)
		}
		off = end
	}

	return out
}
