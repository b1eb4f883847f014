package server

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
