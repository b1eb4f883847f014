package admin

import (
	"net"
	"net/http"
	"sync"
)

// capListener keeps at most max connections open. A connection accepted
// at the cap makes room by closing the one idle the longest: one between
// keep-alive requests, or one that has not sent a whole request yet (a
// slow or silent client). A crowd of idle connections therefore cannot
// lock out the kubelet's probes, as a plain limit (netutil.LimitListener)
// would until the idle timeout: a newcomer only waits, in the kernel's
// backlog, while every open connection is in a handler, which the
// server's write timeout bounds.
type capListener struct {
	net.Listener
	max int

	mu     sync.Mutex
	cond   *sync.Cond
	conns  map[net.Conn]connState
	seq    uint64 // orders the moments connections went idle
	closed bool
}

// connState is what capListener knows of an open connection.
type connState struct {
	busy bool   // a request is being answered
	seq  uint64 // when it went idle; the smallest is evicted first
}

func newCapListener(l net.Listener, limit int) *capListener {
	c := &capListener{Listener: l, max: limit, conns: make(map[net.Conn]connState)}
	c.cond = sync.NewCond(&c.mu)

	return c
}

// Accept waits for a connection and, at the cap, for room for it.
func (l *capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.conns) >= l.max {
		if l.closed {
			_ = c.Close()

			return nil, net.ErrClosed
		}
		if victim, ok := l.idlest(); ok {
			// Forgotten now, closed now: its server goroutine sees
			// the read fail and ends.
			delete(l.conns, victim)
			_ = victim.Close()

			continue
		}
		l.cond.Wait()
	}
	l.seq++
	l.conns[c] = connState{seq: l.seq}

	return c, nil
}

// idlest returns the connection idle the longest, if any is idle.
func (l *capListener) idlest() (net.Conn, bool) {
	var victim net.Conn
	var oldest connState
	for c, st := range l.conns {
		if !st.busy && (victim == nil || st.seq < oldest.seq) {
			victim, oldest = c, st
		}
	}

	return victim, victim != nil
}

// track follows the server's connection states (http.Server.ConnState):
// StateActive marks a connection busy from a whole request read until
// its answer is written; StateIdle frees it; StateClosed and
// StateHijacked forget it.
func (l *capListener) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.conns[c]
	if !ok {
		return // evicted already
	}
	switch state {
	case http.StateActive:
		st.busy = true
		l.conns[c] = st
	case http.StateIdle:
		l.seq++
		l.conns[c] = connState{seq: l.seq}
		l.cond.Broadcast()
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		l.cond.Broadcast()
	case http.StateNew:
	}
}

// Close stops accepting and wakes an Accept waiting for room.
func (l *capListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()

	return l.Listener.Close()
}

// open returns the number of open connections.
func (l *capListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()

	return len(l.conns)
}
