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
		tc := &tcpConn{TCPConn: c}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()

			return
		}
		if r := s.admitLocked(tc, src); r != rejectNone {
			s.mu.Unlock()
			s.metrics.tcpRejected[r].Inc()
			_ = c.SetLinger(0) // a reset: no TIME_WAIT left behind for a flood
			_ = c.Close()

			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.tcpTotal.Inc()
		s.metrics.tcpOpen.Inc()
		go s.serveConn(tc)
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

// tcpConn is an accepted connection and the source whose per-source cap
// it counts against.
type tcpConn struct {
	*net.TCPConn
	// source is the connection's key in Server.perSrc; invalid while it
	// counts against no source (exempt, no cap, or a trusted proxy's
	// connection before its header names the client).
	source netip.Addr
}

// admitLocked decides whether a new connection from src may stay open,
// and counts it against src's per-source cap. A trusted PROXY protocol
// sender is never capped as a source: its connections count against the
// clients their headers name, once read (see admitClient). The caller
// holds s.mu.
func (s *Server) admitLocked(tc *tcpConn, src netip.Addr) tcpReject {
	if s.cfg.MaxTCPConns > 0 && len(s.conns) >= s.cfg.MaxTCPConns {
		return rejectMaxConns
	}
	if s.proxy.enabled && s.proxy.isTrusted(src) {
		return rejectNone
	}

	return s.countSourceLocked(tc, src)
}

// countSourceLocked counts tc against the per-source cap of client (its
// IPv6 prefix, see RateLimit.IPv6Prefix), or refuses it when that source
// already holds as many connections as the cap allows. Exempt sources
// are never capped, whatever the rate limits. The caller holds s.mu.
func (s *Server) countSourceLocked(tc *tcpConn, client netip.Addr) tcpReject {
	if s.cfg.MaxTCPConnsPerSource == 0 || s.cfg.RateLimit.exempt(client) {
		return rejectNone
	}
	key := s.cfg.RateLimit.sourceKey(client)
	if s.perSrc[key] >= s.cfg.MaxTCPConnsPerSource {
		return rejectPerSource
	}
	s.perSrc[key]++
	tc.source = key

	return rejectNone
}

// admitClient counts a connection whose PROXY header named client
// against client's per-source cap; when client is at its cap it reports
// false, and the connection is to be reset. A stream that is not an
// accepted connection (a test's) counts against nothing.
func (s *Server) admitClient(c stream, client netip.Addr) bool {
	tc, ok := c.(*tcpConn)
	if !ok {
		return true
	}
	s.mu.Lock()
	r := s.countSourceLocked(tc, client)
	s.mu.Unlock()
	if r == rejectNone {
		return true
	}
	s.metrics.tcpRejected[r].Inc()
	_ = tc.SetLinger(0)

	return false
}

// serveConn serves one accepted connection and keeps the books on it.
func (s *Server) serveConn(c *tcpConn) {
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c.TCPConn)
		if src := c.source; src.IsValid() {
			if s.perSrc[src]--; s.perSrc[src] <= 0 {
				delete(s.perSrc, src)
			}
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
		if !s.armRead(c) {
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
		if pr == proxyAccepted && !s.admitClient(c, client.Addr()) {
			return
		}
	}
	fam := familyOf(peer.Addr())
	var msg []byte
	var sc *scratch
	var t tally
	// count tallies one message, classifying the source of each Binding
	// request on its own, and writes its debug line.
	count := func(res result, n, sent int) {
		class := s.observeRequest(peer.Addr(), res)
		t.add(fam, class, res, n)
		t.out += sent
		s.metrics.flush(transportTCP, &t)
		if s.debug {
			s.logRequest("tcp", peer.String(), class, res)
		}
	}
	for {
		// A fresh deadline per message, but never one that undoes Close's.
		if !s.armRead(c) {
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
