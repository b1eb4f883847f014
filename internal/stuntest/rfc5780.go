package stuntest

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/stun/v3"
)

// RFC5780 is a UDP STUN server on two IPs and two ports that honours
// CHANGE-REQUEST and sends RESPONSE-ORIGIN and OTHER-ADDRESS, for testing
// NAT behaviour discovery on loopback (127.0.0.1 and 127.0.0.2, say).
type RFC5780 struct {
	// DropChangedIP never answers from the other IP, as if a NAT filtered
	// by address.
	DropChangedIP bool
	// DropChangedPort never answers from the other port either, as if a
	// NAT filtered by address and port.
	DropChangedPort bool
	// PortPerDestination reports a mapped port that depends on the
	// destination address and port, as if a NAT mapped that way.
	PortPerDestination bool
	// Classic answers as an RFC 3489 server does: MAPPED-ADDRESS,
	// SOURCE-ADDRESS and CHANGED-ADDRESS instead of XOR-MAPPED-ADDRESS,
	// RESPONSE-ORIGIN and OTHER-ADDRESS, and no FINGERPRINT.
	Classic bool

	socks [2][2]*net.UDPConn // [ip][port]
	wg    sync.WaitGroup
}

// Start listens on ips[0] and ips[1] and returns the primary address
// (ips[0], first port).
func (s *RFC5780) Start(t testing.TB, a, b netip.Addr) netip.AddrPort {
	t.Helper()
	ips := [2]netip.Addr{a, b}
	p1 := FreePort(t, ips[:])
	p2 := FreePort(t, ips[:])
	for p2 == p1 {
		p2 = FreePort(t, ips[:])
	}
	ports := [2]uint16{p1, p2}
	for i := range 2 {
		for j := range 2 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[i], ports[j])))
			if err != nil {
				t.Fatal(err)
			}
			s.socks[i][j] = c
		}
	}
	for i := range 2 {
		for j := range 2 {
			s.wg.Add(1)
			go s.serve(i, j)
		}
	}
	t.Cleanup(func() {
		for i := range 2 {
			for j := range 2 {
				_ = s.socks[i][j].Close()
			}
		}
		s.wg.Wait()
	})

	return netip.AddrPortFrom(a, p1)
}

func (s *RFC5780) addr(i, j int) netip.AddrPort {
	return s.socks[i][j].LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *RFC5780) serve(i, j int) {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, src, err := s.socks[i][j].ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		req := stun.New()
		if err := stun.Decode(buf[:n], req); err != nil || req.Type != stun.BindingRequest {
			continue
		}
		oi, oj := i, j
		if v, err := req.Get(stun.AttrChangeRequest); err == nil && len(v) == 4 {
			if v[3]&0x04 != 0 {
				oi = 1 - i
			}
			if v[3]&0x02 != 0 {
				oj = 1 - j
			}
		}
		if (oi != i && s.DropChangedIP) || ((oi != i || oj != j) && s.DropChangedPort) {
			continue
		}
		mapped := netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if s.PortPerDestination {
			mapped = netip.AddrPortFrom(mapped.Addr(), mapped.Port()+uint16(1+2*i+j))
		}
		origin, other := s.addr(oi, oj), s.addr(1-i, 1-j)
		setters := []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())},
			&stun.ResponseOrigin{IP: origin.Addr().AsSlice(), Port: int(origin.Port())},
			&stun.OtherAddress{IP: other.Addr().AsSlice(), Port: int(other.Port())},
			stun.Fingerprint}
		if s.Classic {
			setters = []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.MappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())},
				classicAddr(stun.AttrSourceAddress, origin), classicAddr(stun.AttrChangedAddress, other)}
		}
		m, err := stun.Build(setters...)
		if err != nil {
			continue
		}
		_, _ = s.socks[oi][oj].WriteToUDPAddrPort(m.Raw, src)
	}
}

// classicAddr encodes an RFC 3489 address attribute (SOURCE-ADDRESS,
// CHANGED-ADDRESS): the MAPPED-ADDRESS format under another type.
func classicAddr(t stun.AttrType, a netip.AddrPort) stun.Setter {
	m := stun.New()
	_ = (&stun.MappedAddress{IP: a.Addr().AsSlice(), Port: int(a.Port())}).AddTo(m)

	return stun.RawAttribute{Type: t, Value: m.Attributes[0].Value}
}
