package server

import "net/netip"

// responseBufferSize holds any response: they stay under 548 bytes.
const responseBufferSize = 576

// The steps every message takes, whatever carried it. Transports only move
// bytes: a UDP worker hands each datagram to admitProxied and serve, a TCP
// connection its PROXY header to admitProxied and each message to serve
// (or, when its framing breaks, to record), and each sends what serve
// returns and flushes its tally.

// admitProxied records what PROXY protocol made of a datagram or a
// connection's header of n bytes from src, naming client, and reports
// whether it may go on. A refused one is counted as received and dropped.
func (s *Server) admitProxied(tr transport, t *tally, src, client netip.AddrPort, pr proxyResult, n int) bool {
	if pr == proxyNone {
		return true
	}
	t.proxy[pr]++
	if s.debug {
		s.logProxy(transportNames[tr], src, client, pr)
	}
	if pr.refused() {
		t.in += n

		return false
	}

	return true
}

// serve runs one message of n received bytes (msg, after any PROXY
// header) from client through the receive rules, the rate limits at time
// now and the books, and returns the answer to send (nil for none) and
// what became of the message. The answer is built in dst when it fits
// and aliases sc until sc's next use.
func (s *Server) serve(tr transport, sc *scratch, t *tally, dst, msg []byte, n int, client netip.AddrPort, now int64) ([]byte, result) {
	sc.out.Raw = dst[:0]
	resp, res := s.h.handle(sc, msg, client)
	if resp != nil && s.limit != nil && s.limited(client, now, &res) {
		resp = nil
	}
	s.record(tr, t, client, res, n)

	return resp, res
}

// record tallies one message of n bytes from client that res says what
// became of, and writes its debug line.
func (s *Server) record(tr transport, t *tally, client netip.AddrPort, res result, n int) {
	class := s.observeRequest(client.Addr(), res)
	t.add(familyOf(client.Addr()), class, res, n)
	if s.debug {
		s.logRequest(transportNames[tr], client.String(), class, res)
	}
}

// observeRequest hands the source of a message whose handling gave res
// to the Classifier and returns its class. Only a well-formed Binding
// request is observed: junk, a bare connection or anything else that is
// not a request says nothing about the path, and a Kubernetes-aware
// Classifier warns and records Events for what it observes. Other
// messages get ClassClient, which they are never counted under.
func (s *Server) observeRequest(src netip.Addr, res result) SourceClass {
	if !res.binding {
		return ClassClient
	}

	return s.classifier.Observe(src.Unmap())
}
