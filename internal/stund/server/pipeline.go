package server

import "net/netip"

// classifyRequest returns the class of the source of a message whose
// handling gave res. Only a well-formed Binding request is classified:
// junk, a bare connection or anything else that is not a request says
// nothing about the path, and a Kubernetes-aware Classifier warns and
// records Events for what it classifies. Other messages get ClassClient,
// which they are never counted under.
func (s *Server) classifyRequest(src netip.Addr, res result) SourceClass {
	if !res.binding {
		return ClassClient
	}

	return s.classify.Classify(src.Unmap())
}
