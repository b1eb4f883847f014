package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"
)

// tcpReadBuffer is each connection's read buffer: several small messages
// fit, and an idle connection costs little.
const tcpReadBuffer = 512

// serveTCP accepts connections on l until it is closed.
func (s *Server) serveTCP(l *net.TCPListener) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or similar: back off instead of
			// spinning, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warnf("accept tcp %s: %v; retrying in %s", l.Addr(), err, delay)
			time.Sleep(delay)

			continue
		}
		delay = 0
		src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap() //nolint:forcetypeassert // a TCPConn's address
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()

			return
		}
		if r := s.admitLocked(src); r != rejectNone {
			s.mu.Unlock()
			s.metrics.tcpRejected[r].Inc()
			_ = c.SetLinger(0) // a reset: no TIME_WAIT left behind for a flood
			_ = c.Close()

			continue
		}
		s.conns[c] = struct{}{}
		s.perSrc[src]++
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.tcpTotal.Inc()
		s.metrics.tcpOpen.Inc()
		go s.serveConn(c)
	}
}

// tcpReject names why a connection was refused; a metric label value.
type tcpReject uint8

const (
	rejectNone tcpReject = iota
	rejectMaxConns
	rejectPerSource
	rejectCount
)

var rejectNames = [rejectCount]string{"none", "max_conns", "per_source"}

// admitLocked decides whether a new connection from src may stay open.
func (s *Server) admitLocked(src netip.Addr) tcpReject {
	if s.cfg.MaxTCPConns > 0 && len(s.conns) >= s.cfg.MaxTCPConns {
		return rejectMaxConns
	}
	if s.cfg.MaxTCPConnsPerSource > 0 && s.perSrc[src] >= s.cfg.MaxTCPConnsPerSource &&
		(s.limit == nil || !s.limit.exempt(src)) {
		return rejectPerSource
	}

	return rejectNone
}

// serveConn serves one accepted connection and keeps the books on it.
func (s *Server) serveConn(c *net.TCPConn) {
	defer func() {
		_ = c.Close()
		src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap() //nolint:forcetypeassert // a TCPConn's address
		s.mu.Lock()
		delete(s.conns, c)
		if s.perSrc[src]--; s.perSrc[src] <= 0 {
			delete(s.perSrc, src)
		}
		s.mu.Unlock()
		s.metrics.tcpOpen.Dec()
		s.wg.Done()
	}()
	s.serveStream(c, c.RemoteAddr().(*net.TCPAddr).AddrPort()) //nolint:forcetypeassert // a TCPConn's address
}

// stream is what serveStream needs of a connection.
type stream interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// serveStream reads STUN messages sent back to back on c (RFC 8489
// §6.2.2) and answers each one on the same stream, until the peer closes
// it, it idles too long, its framing breaks or the server closes.
func (s *Server) serveStream(c stream, peer netip.AddrPort) {
	r := bufio.NewReaderSize(c, tcpReadBuffer)
	if s.proxy.enabled {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		client, pr := s.proxy.readStreamHeader(r, peer)
		if pr != proxyNone {
			var t tally
			t.proxy[pr]++
			s.metrics.flush(transportTCP, &t)
			if s.debug {
				s.logProxy("tcp", peer, client, pr)
			}
			if pr.refused() {
				return
			}
		}
		peer = client
	}
	fam := familyOf(peer.Addr())
	var msg []byte
	var sc *scratch
	var t tally
	// count tallies one message, classifying the source of each Binding
	// request on its own, and writes its debug line.
	count := func(res result, n, sent int) {
		class := s.classifyRequest(peer.Addr(), res)
		t.add(fam, class, res, n)
		t.out += sent
		s.metrics.flush(transportTCP, &t)
		if s.debug {
			s.logRequest("tcp", peer.String(), class, res)
		}
	}
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		var res result
		msg, res = s.readMessage(r, msg)
		if res.reason == reasonNone && len(msg) == 0 {
			return // closed, idle or the server is stopping
		}
		if res.outcome == outcomeDiscard {
			// The framing is broken: nothing after it can be trusted.
			count(res, len(msg), 0)

			return
		}
		if sc == nil {
			sc = newScratch()
		}
		resp, res := s.h.handle(sc, msg, peer)
		if resp != nil && s.limit != nil && s.limited(peer, s.limit.now(), &res) {
			resp = nil
		}
		sent := 0
		var werr error
		if resp != nil {
			_ = c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
			sent, werr = c.Write(resp)
		}
		count(res, len(msg), sent)
		if werr != nil {
			s.log.Debugf("write tcp to %s: %v", peer, werr)

			return
		}
		if res.reason == reasonBadCookie {
			return // not STUN after all: stop reading
		}
	}
}

// readMessage reads one whole message into buf. It returns an empty
// message and reasonNone when the stream ends, and a discard result when
// the header cannot start a STUN message or announces more than the
// maximum size.
func (s *Server) readMessage(r *bufio.Reader, buf []byte) ([]byte, result) {
	// Peek first: an idle connection waits here holding no message
	// buffer, which is allocated only once a message starts.
	hdr, err := r.Peek(headerSize)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return hdr, discard(reasonShort)
		}

		return buf[:0], result{}
	}
	if hdr[0]&0xC0 != 0 {
		return hdr, discard(reasonNotSTUN)
	}
	length := int(binary.BigEndian.Uint16(hdr[2:4]))
	if length%4 != 0 {
		return hdr, discard(reasonBadLength)
	}
	total := headerSize + length
	if total > s.cfg.MaxMessageSize {
		return hdr, discard(reasonTooLarge)
	}
	if cap(buf) < total {
		buf = make([]byte, 0, min(max(total, tcpReadBuffer), s.cfg.MaxMessageSize))
	}
	buf = buf[:total]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf[:0], discard(reasonShort)
	}

	return buf, result{}
}
