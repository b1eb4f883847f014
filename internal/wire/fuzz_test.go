package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v3"
)

// FuzzDecode: decoding never panics, nor does reading any attribute of
// what decodes; Decode agrees with pion/stun's decoder on which messages
// are well formed and on what they hold; and what decodes, built again
// from its attributes, gives the same bytes up to padding, and the same
// addresses and error code. Seeds are in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		strict := m.Decode(b)
		if strict == nil && m.Classic() {
			t.Fatal("Decode accepted a message without the magic cookie")
		}
		comparePion(t, b, strict)
		if err := m.DecodeAllowClassic(b); err != nil {
			// Both fail alike, except that a message without the cookie
			// may fail later, on its attributes.
			if strict == nil || (strict != ErrBadCookie && err != strict) {
				t.Fatalf("DecodeAllowClassic: %v, Decode: %v", err, strict)
			}

			return
		}
		if strict != nil && (strict != ErrBadCookie || !m.Classic()) {
			t.Fatalf("Decode: %v, but DecodeAllowClassic accepts it (classic %v)", strict, m.Classic())
		}
		if !bytes.Equal(m.Raw(), b) {
			t.Fatal("Raw is not the bytes decoded")
		}
		reencode(t, &m)
		readAttributes(t, &m)
	})
}

// comparePion checks Decode's verdict err on b against pion's decoder,
// which skips the checks of the first two bits and of the length against
// the bytes (it takes a prefix), and has no attribute limit.
func comparePion(t *testing.T, b []byte, err error) {
	t.Helper()
	p := stun.New()
	perr := stun.Decode(b, p)
	switch {
	case err == nil:
		if perr != nil {
			t.Fatalf("accepted %x, pion says %v", b, perr)
		}
	case errors.Is(err, ErrMalformed):
		if perr == nil {
			t.Fatalf("malformed %x, pion decodes %d attributes", b, len(p.Attributes))
		}

		return
	case errors.Is(err, ErrTooManyAttributes):
		if perr != nil || len(p.Attributes) <= MaxAttributes {
			t.Fatalf("too many attributes, pion: %d (%v)", len(p.Attributes), perr)
		}

		return
	case errors.Is(err, ErrBadCookie):
		if perr == nil {
			t.Fatalf("bad cookie %x, pion decodes it", b)
		}

		return
	default:
		return // checks pion does not make
	}
	var m Message
	if err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	if uint16(m.Type()) != p.Type.Value() || m.TransactionID() != TransactionID(p.TransactionID) {
		t.Fatalf("type %#04x id %x, pion %#04x %x", uint16(m.Type()), m.TransactionID(), p.Type.Value(), p.TransactionID)
	}
	if m.Len() != len(p.Attributes) {
		t.Fatalf("%d attributes, pion %d", m.Len(), len(p.Attributes))
	}
	for i, pa := range p.Attributes {
		a := m.Attr(i)
		typ := a.Type
		if typ == AttrXORMappedAddressDraft {
			typ = AttrXORMappedAddress // pion renumbers the draft's type
		}
		if uint16(typ) != uint16(pa.Type) || !bytes.Equal(a.Value, pa.Value) {
			t.Fatalf("attribute %d: %s %x, pion %s %x", i, a.Type, a.Value, pa.Type, pa.Value)
		}
	}
}

// reencode builds m again from its attributes and compares.
func reencode(t *testing.T, m *Message) {
	t.Helper()
	var nb Builder
	if m.Classic() {
		nb = NewClassicBuilder(nil, m.Type(), m.ClassicTransactionID())
	} else {
		nb = NewBuilder(nil, m.Type(), m.TransactionID())
	}
	for i := range m.Len() {
		a := m.Attr(i)
		if a.Type == AttrFingerprint && i == m.Len()-1 && len(a.Value) == 4 {
			nb.AddFingerprint()

			continue
		}
		nb.Add(a.Type, a.Value)
	}
	out, err := nb.Finish()
	if err != nil {
		t.Fatalf("building %x again: %v", m.Raw(), err)
	}
	if want := zeroPadding(t, m.Raw()); !bytes.Equal(out, want) {
		t.Fatalf("built again\n%x\nwant\n%x", out, want)
	}
	var again Message
	if err := again.DecodeAllowClassic(out); err != nil {
		t.Fatalf("built again, does not decode: %v", err)
	}
	if m.Has(AttrFingerprint) && errors.Is(m.CheckFingerprint(), ErrFingerprintMalformed) != errors.Is(again.CheckFingerprint(), ErrFingerprintMalformed) {
		t.Fatal("FINGERPRINT placement changed")
	}
	if m.CheckFingerprint() == nil && again.CheckFingerprint() != nil {
		t.Fatalf("a good FINGERPRINT went bad: %v", again.CheckFingerprint())
	}
}

// readAttributes reads every attribute as its type says and encodes what
// reads back, comparing values.
func readAttributes(t *testing.T, m *Message) {
	t.Helper()
	for _, typ := range []AttrType{
		AttrMappedAddress, AttrResponseOrigin, AttrOtherAddress, AttrChangedAddress,
		AttrXORMappedAddress, AttrXORMappedAddressDraft,
	} {
		xor := typ == AttrXORMappedAddress || typ == AttrXORMappedAddressDraft
		var addr netip.AddrPort
		var err error
		if xor {
			addr, err = m.XORAddress(typ)
		} else {
			addr, err = m.Address(typ)
		}
		v, ok := m.Get(typ)
		if !ok {
			if err != ErrNoAttribute {
				t.Fatalf("absent %s: %v", typ, err)
			}

			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadAttribute) {
				t.Fatalf("%s: %v is not ErrBadAttribute", typ, err)
			}
			if (len(v) == 8 && v[1] == 1) || (len(v) == 20 && v[1] == 2) {
				t.Fatalf("%s %x refused: %v", typ, v, err)
			}

			continue
		}
		if (len(v) != 8 || v[1] != 1) && (len(v) != 20 || v[1] != 2) {
			t.Fatalf("%s %x accepted as %s", typ, v, addr)
		}
		// Build it again under m's transaction ID.
		nb := NewBuilder(nil, BindingSuccess, m.TransactionID())
		if xor {
			nb.AddXORAddress(typ, addr)
		} else {
			nb.AddAddress(typ, addr)
		}
		out, err := nb.Finish()
		if err != nil {
			t.Fatal(err)
		}
		var again Message
		if err := again.Decode(out); err != nil {
			t.Fatal(err)
		}
		nv, _ := again.Get(typ)
		if addr.Addr().Is4In6() {
			// Sent back as IPv4, which is what it means.
			if len(nv) != 8 {
				t.Fatalf("%s %s built as %x", typ, addr, nv)
			}

			continue
		}
		if !bytes.Equal(nv[1:], v[1:]) || nv[0] != 0 {
			t.Fatalf("%s %x read as %s, built again as %x", typ, v, addr, nv)
		}
	}
	code, reason, err := m.ErrorCode()
	if v, ok := m.Get(AttrErrorCode); ok && err == nil && v[2]&7 >= 3 && v[2]&7 <= 6 && v[3] < 100 {
		nb := NewBuilder(nil, BindingError, m.TransactionID())
		nb.AddErrorCode(code, string(reason))
		out, err := nb.Finish()
		if err != nil {
			t.Fatalf("ERROR-CODE %x read as %d: %v", v, code, err)
		}
		var again Message
		if err := again.Decode(out); err != nil {
			t.Fatal(err)
		}
		nv, _ := again.Get(AttrErrorCode)
		if nv[0] != 0 || nv[1] != 0 || nv[2] != v[2]&7 || !bytes.Equal(nv[3:], v[3:]) {
			t.Fatalf("ERROR-CODE %x built again as %x", v, nv)
		}
	}
	if list, err := m.UnknownAttributes(nil); err == nil {
		nb := NewBuilder(nil, BindingError, m.TransactionID())
		nb.AddUnknownAttributes(list)
		out, _ := nb.Finish()
		var again Message
		if err := again.Decode(out); err != nil {
			t.Fatal(err)
		}
		nv, _ := again.Get(AttrUnknownAttributes)
		if v, _ := m.Get(AttrUnknownAttributes); !bytes.Equal(nv, v) {
			t.Fatalf("UNKNOWN-ATTRIBUTES %x built again as %x", v, nv)
		}
	}
	for i := range m.Len() {
		if a := m.Attr(i); a.Type == AttrChangeRequest {
			if _, err := ParseChangeRequest(a.Value); (err == nil) != (len(a.Value) == 4) {
				t.Fatalf("CHANGE-REQUEST %x: %v", a.Value, err)
			}
		}
	}
}
