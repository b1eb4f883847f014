package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/stund/stund/internal/stuncheck/client"
)

// Behavior is an RFC 4787 NAT mapping or filtering behaviour.
type Behavior string

// Behaviours, as RFC 5780 names them.
const (
	EndpointIndependent     Behavior = "endpoint-independent"
	AddressDependent        Behavior = "address-dependent"
	AddressAndPortDependent Behavior = "address-and-port-dependent"
	BehaviorUnknown         Behavior = "unknown"
)

// NATBehavior is the outcome of the RFC 5780 §4.3 and §4.4 tests over one
// path. It describes every NAT on the path together: the client's own and
// the load balancer's.
type NATBehavior struct {
	Mapping   Behavior
	Filtering Behavior
	// NoNAT is true when the server saw the client's own local address
	// and port: no NAT on the path (RFC 5780 §4.3, first step). Mapping is
	// then endpoint-independent without further tests.
	NoNAT bool
	// Detail explains an unknown result, the absence of a NAT, or that a
	// classic RFC 3489 server's CHANGED-ADDRESS stood in for OTHER-ADDRESS.
	Detail string
}

// natProbe runs the plain Binding request from a socket bound to the local
// address that reaches the server, then, if the server offers another
// address (RFC 5780 OTHER-ADDRESS, or a classic server's RFC 3489
// CHANGED-ADDRESS), the mapping and filtering tests from the same socket.
func (c *Checker) natProbe(ctx context.Context, server netip.AddrPort) (*client.Response, *NATBehavior, error) {
	conn, err := c.client.ListenUDPFor(server)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	first, err := conn.Binding(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	nat := &NATBehavior{Mapping: BehaviorUnknown, Filtering: BehaviorUnknown}
	var notes []string
	defer func() { nat.Detail = strings.Join(notes, " ") }()

	// RFC 5780 §4.3: a mapped address equal to the local address means
	// no NAT, and no mapping test is needed.
	local := unmapPort(conn.LocalAddr())
	if unmapPort(first.Mapped) == local {
		nat.NoNAT = true
		nat.Mapping = EndpointIndependent
		notes = append(notes, fmt.Sprintf("No NAT on this path: the server saw your local address %s (RFC 5780 §4.3).", local))
	}

	other := first.OtherAddress
	if !other.IsValid() && first.ChangedAddress.IsValid() {
		other = first.ChangedAddress
		notes = append(notes, fmt.Sprintf("The server is a classic RFC 3489 server: the tests used its CHANGED-ADDRESS %s as OTHER-ADDRESS.", other))
	}
	if !other.IsValid() {
		notes = append(notes, "The server sent no OTHER-ADDRESS (nor a classic CHANGED-ADDRESS), so it cannot run the other RFC 5780 tests.")

		return first, nat, nil
	}
	if other.Addr() == server.Addr() || other.Port() == server.Port() {
		notes = append(notes, fmt.Sprintf("The server's other address %s does not differ from %s in both IP and port, so the tests would mislead.", other, server))

		return first, nat, nil
	}

	// Mapping: does the mapped address change with the destination?
	var failed []string
	if !nat.NoNAT {
		if r2, err := conn.Binding(ctx, netip.AddrPortFrom(other.Addr(), server.Port())); err != nil {
			failed = append(failed, "mapping test II: "+unwrapAll(err).Error())
		} else if r2.Mapped == first.Mapped {
			nat.Mapping = EndpointIndependent
		} else if r3, err := conn.Binding(ctx, other); err != nil {
			failed = append(failed, "mapping test III: "+unwrapAll(err).Error())
		} else if r3.Mapped == r2.Mapped {
			nat.Mapping = AddressDependent
		} else {
			nat.Mapping = AddressAndPortDependent
		}
	}

	// Filtering: which answers from other addresses come through?
	_, err = conn.Binding(ctx, server, client.WithChangeRequest(true, true))
	switch {
	case err == nil:
		nat.Filtering = EndpointIndependent
	case errors.Is(err, client.ErrNoResponse):
		_, err = conn.Binding(ctx, server, client.WithChangeRequest(false, true))
		switch {
		case err == nil:
			nat.Filtering = AddressDependent
		case errors.Is(err, client.ErrNoResponse):
			nat.Filtering = AddressAndPortDependent
		default:
			failed = append(failed, "filtering test III: "+unwrapAll(err).Error())
		}
	default:
		failed = append(failed, "filtering test II: "+unwrapAll(err).Error())
	}
	if len(failed) > 0 {
		notes = append(notes, fmt.Sprintf("Some tests failed: %v.", failed))
	}

	return first, nat, nil
}

// unmapPort drops what makes equal addresses compare unequal: an
// IPv4-mapped form and an IPv6 zone.
func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}
