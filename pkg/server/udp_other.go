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
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warnf("read udp %s: %v", conn.LocalAddr(), err)

			continue
		}
		resp, res := s.h.handle(sc, buf[:n], src)
		sent := 0
		if resp != nil {
			if sent, err = conn.WriteToUDPAddrPort(resp, src); err != nil {
				s.log.Debugf("write udp to %s: %v", src, err)
			}
		}
		class := s.classify.Classify(src.Addr())
		s.metrics.count(transportUDP, familyOf(src.Addr()), class, res, n, sent)
		if s.debug {
			s.logRequest("udp", src.String(), class, res)
		}
	}
}

func (s *Server) logRequest(network, src string, class SourceClass, res result) {
	switch res.outcome {
	case outcomeSuccess:
		s.log.Debugf("%s binding from %s (%s): success", network, src, class)
	case outcomeError420:
		s.log.Debugf("%s binding from %s (%s): 420 unknown attribute", network, src, class)
	case outcomeDiscard:
		s.log.Debugf("%s message from %s discarded: %s", network, src, res.reason)
	}
}
