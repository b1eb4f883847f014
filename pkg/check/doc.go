// Package check answers one question: does the path to a STUN server
// preserve the client's source IP address?
//
// It sends Binding requests to each target over UDP and TCP, compares the
// address the server saw (XOR-MAPPED-ADDRESS) with the client's public IP
// (given, or learned from reference STUN servers outside the load
// balancer), and returns a Report with a verdict per probe and overall:
// preserved, rewritten (with the kind of address the server saw, the usual
// cause and what to try), or inconclusive. Report renders itself as text
// (a small picture of the path per probe) or as JSON whose field names are
// a stable interface for scripts.
//
// cmd/stuncheck is a thin flag parser around this package; other Go code
// (the Helm test, a Kubernetes diagnosis) builds a Config and calls Run.
package check
