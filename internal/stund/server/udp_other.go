//go:build !linux

package server

import (
	"errors"
	"net"
)

// serveUDP answers the datagrams of one UDP socket until it is closed.
func (s *Server) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, udpBufferSize)
	sc := newScratch()
	var t tally
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warnf("read udp %s: %v", conn.LocalAddr(), err)

			continue
		}
		payload, client, pr := s.proxy.unwrapDatagram(buf[:n], src)
		if pr != proxyNone {
			t.proxy[pr]++
			if pr.refused() {
				t.in += n
				s.metrics.flush(transportUDP, &t)

				continue
			}
		}
		resp, res := s.h.handle(sc, payload, client)
		if resp != nil && s.limit != nil && s.limited(client, s.limit.now(), &res) {
			resp = nil
		}
		sent := 0
		if resp != nil {
			if sent, err = conn.WriteToUDPAddrPort(resp, src); err != nil {
				s.log.Debugf("write udp to %s: %v", src, err)
			}
		}
		class := s.observeRequest(client.Addr(), res)
		t.add(familyOf(client.Addr()), class, res, n)
		t.out += sent
		s.metrics.flush(transportUDP, &t)
		if s.debug {
			s.logRequest("udp", src.String(), class, res)
		}
	}
}
