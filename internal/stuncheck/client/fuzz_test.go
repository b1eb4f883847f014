package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/stun/v3"
)

// FuzzParseResponse feeds arbitrary bytes to the response parser and the
// TCP framer: neither may panic, and an accepted response must carry a
// mapped address and only address attributes of the exact length for their
// family. testdata/fuzz holds every input that was once misparsed.
func FuzzParseResponse(f *testing.F) {
	f.Add(mustHexF(rfc5769IPv4))
	f.Add(mustHexF(rfc5769IPv6))
	f.Add(mustHexF(rfc5769Req))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tid [12]byte
		if len(raw) >= 20 {
			copy(tid[:], raw[8:20])
		}
		ans, err := ParseResponse(raw, tid)
		if err == nil && !ans.Mapped.IsValid() {
			t.Fatalf("accepted a response without a mapped address: %x", raw)
		}
		if err == nil {
			checkAddressLengths(t, raw)
		}
		var er *ErrorResponse
		if err != nil && !errors.As(err, &er) && !errors.Is(err, ErrMalformed) &&
			!errors.Is(err, ErrUnexpectedType) && !errors.Is(err, ErrFingerprint) &&
			!errors.Is(err, ErrNoMappedAddress) && !errors.Is(err, ErrTransactionMismatch) {
			t.Fatalf("unclassified error %v", err)
		}
		frame, err := ReadFrame(bytes.NewReader(raw))
		if err == nil && !bytes.HasPrefix(raw, frame) {
			t.Fatalf("frame is not a prefix of the stream")
		}
	})
}

// checkAddressLengths fails when an accepted response holds an address
// attribute whose value is not 8 bytes for IPv4 or 20 for IPv6.
func checkAddressLengths(t *testing.T, raw []byte) {
	t.Helper()
	m := stun.New()
	if err := stun.Decode(raw, m); err != nil {
		t.Fatalf("accepted a response that does not decode: %v", err)
	}
	for _, a := range m.Attributes {
		switch a.Type {
		case stun.AttrXORMappedAddress, stun.AttrMappedAddress, stun.AttrResponseOrigin,
			stun.AttrOtherAddress, stun.AttrChangedAddress:
		default:
			continue
		}
		if len(a.Value) < 2 || !(a.Value[1] == 1 && len(a.Value) == 8 || a.Value[1] == 2 && len(a.Value) == 20) {
			t.Fatalf("accepted %s with a %d-byte value %x", a.Type, len(a.Value), a.Value)
		}
	}
}

func mustHexF(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		b[i] = v
	}

	return b
}
