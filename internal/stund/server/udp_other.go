//go:build !linux

package server

import (
	"errors"
	"net"
)

// udpSocket is one UDP socket of a listen address.
type udpSocket struct{ conn *net.UDPConn }

func openUDPSocket(conn *net.UDPConn) (*udpSocket, error) { return &udpSocket{conn: conn}, nil }

// wake ends the worker's wait by closing the socket.
func (u *udpSocket) wake() { _ = u.conn.Close() }

// close closes the socket of a worker that never started.
func (u *udpSocket) close() { _ = u.conn.Close() }

// serveUDP answers the datagrams of one UDP socket until it is closed.
func (s *Server) serveUDP(sock *udpSocket, _ bool) {
	defer s.wg.Done()
	conn := sock.conn
	buf := make([]byte, udpBufferSize)
	out := make([]byte, responseBufferSize)
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
		if !s.admitProxied(transportUDP, &t, src, client, pr, n) {
			s.metrics.flush(transportUDP, &t)

			continue
		}
		var now int64
		if s.limit != nil {
			now = s.limit.now()
		}
		if resp, _ := s.serve(transportUDP, sc, &t, out, payload, n, client, now); resp != nil {
			sent, err := conn.WriteToUDPAddrPort(resp, src)
			if err != nil {
				s.log.Debugf("write udp to %s: %v", src, err)
			}
			t.out += sent
		}
		s.metrics.flush(transportUDP, &t)
	}
}
