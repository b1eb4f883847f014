package wire_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/stund/stund/internal/wire"
)

// discardReason names why a server drops a message, from Decode's error.
func discardReason(err error) string {
	switch {
	case errors.Is(err, wire.ErrShort):
		return "short"
	case errors.Is(err, wire.ErrNotSTUN):
		return "not_stun"
	case errors.Is(err, wire.ErrBadLength):
		return "bad_length"
	case errors.Is(err, wire.ErrBadCookie):
		return "bad_cookie"
	case errors.Is(err, wire.ErrBadFingerprint):
		return "bad_fingerprint"
	default:
		return "malformed"
	}
}

// A server answers a Binding request; the client reads the answer.
func Example() {
	client := netip.MustParseAddrPort("192.0.2.1:32853")

	// The client's request.
	req := wire.NewBuilder(make([]byte, 0, 64), wire.BindingRequest, wire.TransactionID{1, 2, 3})
	req.AddString(wire.AttrSoftware, "example client")
	req.AddFingerprint()
	raw, err := req.Finish()
	if err != nil {
		panic(err)
	}

	// The server: receive rules, then the response.
	var in wire.Message
	if err := in.Decode(raw); err != nil {
		fmt.Println("discard:", discardReason(err))

		return
	}
	if in.Type() != wire.BindingRequest {
		fmt.Println("discard: not a Binding request")

		return
	}
	if err := in.CheckFingerprint(); err != nil {
		fmt.Println("discard:", discardReason(err))

		return
	}
	out := wire.NewBuilder(make([]byte, 0, 576), wire.BindingSuccess, in.TransactionID())
	out.AddXORAddress(wire.AttrXORMappedAddress, client)
	out.AddString(wire.AttrSoftware, "stund")
	out.AddFingerprint()
	resp, err := out.Finish()
	if err != nil {
		panic(err)
	}

	// The client.
	var m wire.Message
	if err := m.Decode(resp); err != nil {
		panic(err)
	}
	mapped, err := m.XORAddress(wire.AttrXORMappedAddress)
	software, _ := m.Get(wire.AttrSoftware)
	fmt.Println(m.Type(), len(resp), "bytes, fingerprint:", m.CheckFingerprint())
	fmt.Println("mapped:", mapped, err, "software:", string(software))

	// A damaged copy is discarded with its reason.
	resp[len(resp)-1] ^= 1
	_ = m.Decode(resp)
	fmt.Println("damaged:", discardReason(m.CheckFingerprint()))
	fmt.Println("truncated:", discardReason(m.Decode(resp[:len(resp)-4])))

	// Output:
	// Binding success response 52 bytes, fingerprint: <nil>
	// mapped: 192.0.2.1:32853 <nil> software: stund
	// damaged: bad_fingerprint
	// truncated: bad_length
}
