package server

import "net/netip"

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
