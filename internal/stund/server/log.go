package server

import "net/netip"

// logRequest writes the debug line of one message.
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

// logProxy writes the debug line of a PROXY protocol decision.
func (s *Server) logProxy(network string, src, client netip.AddrPort, r proxyResult) {
	switch r {
	case proxyAccepted:
		s.log.Debugf("%s PROXY header from %s: client %s", network, src, client)
	case proxyLocal:
		s.log.Debugf("%s PROXY LOCAL header from %s: answering about the sender", network, src)
	default:
		s.log.Debugf("%s from %s refused: PROXY header %s", network, src, r)
	}
}
