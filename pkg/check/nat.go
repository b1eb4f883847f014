package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/stund/stund/pkg/client"
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
	// Detail explains an unknown result.
	Detail string
}

// natProbe runs the plain Binding request from a socket it keeps, then, if
// the server offers OTHER-ADDRESS, the mapping and filtering tests from the
// same socket.
func (c *Checker) natProbe(ctx context.Context, server netip.AddrPort) (*client.Response, *NATBehavior, error) {
	network := "udp4"
	if FamilyOf(server.Addr()) == IPv6 {
		network = "udp6"
	}
	conn, err := c.client.ListenUDP(network)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	first, err := conn.Binding(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	nat := &NATBehavior{Mapping: BehaviorUnknown, Filtering: BehaviorUnknown}
	other := first.OtherAddress
	if !other.IsValid() {
		nat.Detail = "The server sent no OTHER-ADDRESS, so it cannot run the RFC 5780 tests."

		return first, nat, nil
	}
	if other.Addr() == server.Addr() || other.Port() == server.Port() {
		nat.Detail = fmt.Sprintf("The server's OTHER-ADDRESS %s does not differ from %s in both IP and port, so the tests would mislead.", other, server)

		return first, nat, nil
	}

	// Mapping: does the mapped address change with the destination?
	var notes []string
	if r2, err := conn.Binding(ctx, netip.AddrPortFrom(other.Addr(), server.Port())); err != nil {
		notes = append(notes, "mapping test II: "+unwrapAll(err).Error())
	} else if r2.Mapped == first.Mapped {
		nat.Mapping = EndpointIndependent
	} else if r3, err := conn.Binding(ctx, other); err != nil {
		notes = append(notes, "mapping test III: "+unwrapAll(err).Error())
	} else if r3.Mapped == r2.Mapped {
		nat.Mapping = AddressDependent
	} else {
		nat.Mapping = AddressAndPortDependent
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
			notes = append(notes, "filtering test III: "+unwrapAll(err).Error())
		}
	default:
		notes = append(notes, "filtering test II: "+unwrapAll(err).Error())
	}
	if len(notes) > 0 {
		nat.Detail = fmt.Sprintf("Some tests failed: %v.", notes)
	}

	return first, nat, nil
}
