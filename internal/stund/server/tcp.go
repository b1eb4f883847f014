package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/stund/stund/internal/wire"
)

// tcpReadBuffer is the read buffer a connection borrows while bytes are
// waiting in it: several small messages fit.
const tcpReadBuffer = 512

// serveTCP accepts connections on l until it is closed.
func (s *Server) serveTCP(l *net.TCPListener) {
	defer s.wg.Done()
	pk := newParker(s)
	defer pk.close() // the listener is closed: so are its idle connections
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
		tc := &tcpConn{TCPConn: c, parker: pk}
		tc.st = streamState{peer: c.RemoteAddr().(*net.TCPAddr).AddrPort(), header: s.proxy.enabled} //nolint:forcetypeassert // a TCPConn's address
		tc.st.in.c = c
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
		if !pk.park(tc) { // until its first bytes arrive
			go s.serveConn(tc)
		}
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

// tcpConn is an accepted connection, the source whose per-source cap it
// counts against, and where serving it stands.
type tcpConn struct {
	*net.TCPConn
	// source is the connection's key in Server.perSrc; invalid while it
	// counts against no source (exempt, no cap, or a trusted proxy's
	// connection before its header names the client).
	source netip.Addr
	// parker keeps the connection while it is idle; park is its place
	// there.
	parker *parker
	park   parkLink
	st     streamState
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

// serveConn serves an accepted connection from where it stands, on the
// calling goroutine, until it is parked or ends.
func (s *Server) serveConn(c *tcpConn) {
	if !s.serveStream(c, c.st.peer) {
		s.endConn(c)
	}
}

// endConn closes an accepted connection and the books on it.
func (s *Server) endConn(c *tcpConn) {
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
}

// stream is what serveStream needs of a connection.
type stream interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// serveStream reads STUN messages sent back to back on c (RFC 8489
// §6.2.2) and answers each one on the same stream, until the peer closes
// it, it idles too long, its framing breaks or the server closes. An
// accepted connection that is idle, with nothing buffered, is parked
// instead (see parker): serveStream then returns true, and is called
// again from where it stood once bytes arrive. Idle, a connection holds
// no buffer and no goroutine.
func (s *Server) serveStream(c stream, peer netip.AddrPort) (parked bool) {
	st := &streamState{peer: peer, header: s.proxy.enabled}
	st.in.c = c
	tc, _ := c.(*tcpConn)
	if tc != nil {
		st = &tc.st
	}
	defer func() {
		if !parked {
			st.in.release()
		}
	}()
	if st.header {
		if !s.armRead(c) {
			return
		}
		if st.in.wait(st.ready) != nil {
			return false // closed or idle before a byte
		}
		st.ready = false
		var ok bool
		if st.peer, ok = s.streamHeader(c, st.in.r, st.peer); !ok {
			return false
		}
		st.header = false
		if tc != nil && tc.parker != nil {
			if r := s.linger(tc); r != lingerRead {
				return r == lingerParked
			}
		}
	}
	for {
		// A fresh deadline per message, but never one that undoes Close's.
		if !s.armRead(c) {
			return
		}
		if st.in.wait(st.ready) != nil {
			return false // closed, idle or the server is stopping
		}
		st.ready = false
		if !s.serveMessage(c, st.in.r, st.peer) {
			return false
		}
		if tc != nil && tc.parker != nil {
			if r := s.linger(tc); r != lingerRead {
				return r == lingerParked
			}
		}
	}
}

// parkAfter is how long an idle connection's goroutine waits for the
// next message before parking it: a client that waits for each answer
// sends its next request within a round trip, and is served without a
// trip through the parker.
const parkAfter = 100 * time.Millisecond

// lingerResult is what became of a connection that went idle.
type lingerResult uint8

const (
	lingerRead   lingerResult = iota // bytes are buffered, or tc could not be parked: read on
	lingerParked                     // parked: it belongs to its parker now
	lingerEnded                      // closed by the peer, timed out, or the server is closing
)

// linger follows an answer on tc: unless more bytes are buffered, it
// waits up to parkAfter for them, then parks tc for an idle timeout
// (which so counts from at most parkAfter after the last message). Like
// armRead, it never undoes the deadline Close sets; bytes that arrive
// get the whole idle timeout from the caller's next armRead.
func (s *Server) linger(tc *tcpConn) lingerResult {
	in := &tc.st.in
	if in.r != nil && in.r.Buffered() > 0 {
		return lingerRead
	}
	if err := tc.SetReadDeadline(time.Now().Add(min(parkAfter, s.cfg.TCPIdleTimeout))); err != nil || s.stopping.Load() {
		return lingerEnded
	}
	err := in.fill()
	if err == nil {
		return lingerRead
	}
	in.release()
	if !errors.Is(err, os.ErrDeadlineExceeded) || s.stopping.Load() || parkAfter >= s.cfg.TCPIdleTimeout {
		return lingerEnded
	}
	if tc.parker.park(tc) {
		return lingerParked
	}

	return lingerRead
}

// streamState is where serving a stream stands between messages: all
// that a parked connection keeps.
type streamState struct {
	in     streamReader
	peer   netip.AddrPort // the client answered about
	header bool           // a PROXY header is still to be read
	ready  bool           // woken: bytes, or the peer's close, are waiting
}

// streamHeader reads the PROXY protocol header at the start of a
// connection from peer and counts it. It returns the client every request
// on the connection is answered about, and false when the connection is
// to be closed: a refused header, or a client already at its per-source
// cap.
func (s *Server) streamHeader(c stream, r *bufio.Reader, peer netip.AddrPort) (netip.AddrPort, bool) {
	client, pr := s.proxy.readStreamHeader(r, peer)
	var t tally
	ok := s.admitProxied(transportTCP, &t, peer, client, pr, 0)
	s.metrics.flush(transportTCP, &t)
	if !ok {
		return peer, false
	}
	if pr == proxyAccepted && !s.admitClient(c, client.Addr()) {
		return peer, false
	}

	return client, true
}

// serveMessage reads one message from r, answers it on c and counts it.
// It reports whether the connection goes on. The message and the answer
// live in pooled buffers, put back before it returns.
func (s *Server) serveMessage(c stream, r *bufio.Reader, peer netip.AddrPort) bool {
	var t tally
	defer s.metrics.flush(transportTCP, &t)
	msg, n, res := s.readMessage(r)
	if res.reason == reasonNone && msg == nil {
		return false // closed, idle or the server is stopping
	}
	if res.outcome == outcomeDiscard {
		// The framing is broken: nothing after it can be trusted.
		s.record(transportTCP, &t, peer, res, n)

		return false
	}
	defer messages.Put(msg)
	sc := scratches.Get().(*scratch) //nolint:forcetypeassert // the pool holds only these
	defer scratches.Put(sc)
	var now int64
	if s.limit != nil {
		now = s.limit.now()
	}
	resp, res := s.serve(transportTCP, sc, &t, sc.out.Raw, msg.b, n, peer, now)
	if resp != nil {
		_ = c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
		sent, err := c.Write(resp)
		t.out += sent
		if err != nil {
			s.log.Debugf("write tcp to %s: %v", peer, err)

			return false
		}
	}

	return res.reason != reasonBadCookie // not STUN after all: stop reading
}

// Pools of what a TCP connection needs only while it reads and answers a
// message: its read buffer, the message, and the handler's scratch space.
var (
	readers   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, tcpReadBuffer) }}
	messages  = sync.Pool{New: func() any { return new(message) }}
	scratches = sync.Pool{New: func() any { return newScratch() }}
)

// message is a pooled buffer holding one message read from a stream.
type message struct{ b []byte }

// streamReader reads a connection through a pooled buffer that it holds
// only while bytes are waiting in it: an idle connection holds none.
type streamReader struct {
	c     io.Reader
	r     *bufio.Reader // the borrowed buffer; nil while idle
	first [1]byte       // the byte that ended the wait
	ahead bool          // first is still to be read through r
}

// wait returns once a message has started, with r ready to read it: at
// once when bytes are already buffered or known to be waiting (ready:
// the parker saw them), else once a byte arrives. It fails when the
// connection ends or its read deadline passes.
func (sr *streamReader) wait(ready bool) error {
	if sr.r != nil && (ready || sr.ahead || sr.r.Buffered() > 0) {
		return nil
	}
	if !ready {
		sr.release() // nothing in it: wait holding none
		if _, err := io.ReadFull(sr.c, sr.first[:]); err != nil {
			return err
		}
		sr.ahead = true
	}
	sr.r = readers.Get().(*bufio.Reader) //nolint:forcetypeassert // the pool holds only these
	sr.r.Reset(sr)

	return nil
}

// Read is what the borrowed buffer reads from: the byte that ended the
// wait, then the connection.
func (sr *streamReader) Read(p []byte) (int, error) {
	if sr.ahead && len(p) > 0 {
		p[0], sr.ahead = sr.first[0], false

		return 1, nil
	}

	return sr.c.Read(p)
}

// fill waits for bytes in a borrowed buffer: the next message is
// expected soon.
func (sr *streamReader) fill() error {
	if sr.r == nil {
		sr.r = readers.Get().(*bufio.Reader) //nolint:forcetypeassert // the pool holds only these
		sr.r.Reset(sr)
	}
	_, err := sr.r.Peek(1)

	return err
}

// release puts the borrowed buffer back, with whatever it still holds.
func (sr *streamReader) release() {
	if sr.r != nil {
		sr.r.Reset(nil)
		readers.Put(sr.r)
		sr.r, sr.ahead = nil, false
	}
}

// readMessage reads one whole message from r into a pooled buffer, to be
// put back in messages once answered, and returns its length. It returns
// no message and reasonNone when the stream ends, and a discard result,
// with the bytes it took, when the header cannot start a STUN message,
// announces more than the maximum size or is cut short.
func (s *Server) readMessage(r *bufio.Reader) (*message, int, result) {
	// Peek first: the header is judged before any buffer is taken.
	hdr, err := r.Peek(headerSize)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, len(hdr), discard(reasonShort)
		}

		return nil, 0, result{}
	}
	h, err := wire.ParseHeader(hdr)
	switch {
	case errors.Is(err, wire.ErrNotSTUN):
		return nil, len(hdr), discard(reasonNotSTUN)
	case err != nil:
		return nil, len(hdr), discard(reasonBadLength)
	}
	total := h.Size()
	if total > s.cfg.MaxMessageSize {
		return nil, len(hdr), discard(reasonTooLarge)
	}
	m := messages.Get().(*message) //nolint:forcetypeassert // the pool holds only these
	if cap(m.b) < total {
		m.b = make([]byte, 0, min(max(total, tcpReadBuffer), s.cfg.MaxMessageSize))
	}
	m.b = m.b[:total]
	if _, err := io.ReadFull(r, m.b); err != nil {
		messages.Put(m)

		return nil, 0, discard(reasonShort)
	}

	return m, total, result{}
}
