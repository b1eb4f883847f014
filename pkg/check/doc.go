// Package check answers one question: does the path to a STUN server
// preserve the client's source IP address? A load balancer in front of
// STUN servers that rewrites it makes every client learn a wrong public
// address.
//
// It is the checker behind the stuncheck command, for Go programs that
// want the answer without running the command: a readiness probe, a test
// of a load balancer's configuration, a monitoring job.
//
// Build a Config with the targets (ParseTarget reads host, host:port,
// [ipv6]:port and stun: URIs) and, when you know it, your public IP;
// New validates it and Run probes every target address over UDP and TCP.
// Run compares the address each server saw (XOR-MAPPED-ADDRESS) with the
// public IP, given in Config.ExpectIPs or learned from reference STUN
// servers outside the load balancer, and returns a Report: a Verdict per
// probe and overall (Preserved, Rewritten or Inconclusive), a Reason word
// scripts can match, and for people a Detail sentence and a Hint with the
// usual cause and what to try. Config.NATBehavior adds the RFC 5780 NAT
// mapping and filtering tests.
//
// A Report renders itself as text (a small picture of the path per
// probe) or as JSON (MarshalJSON, WriteJSON), stuncheck's -o json: field
// names and Reason words are a stable interface, new fields may appear.
//
// Errors are values: New and ParseTarget return an *InputError naming the
// refused input and wrapping a sentinel (ErrBadTarget, ErrBadExpectIP,
// ...), and Run fails only when a target does not resolve (ErrResolve).
// An unanswered probe is an Inconclusive verdict, not an error. Exit
// codes and the wording of usage errors are stuncheck's, not this
// package's. Some words of a Report are stuncheck's too: hints and
// public-IP details say --expect-ip and --reference where a Go program
// sets Config.ExpectIPs and Config.References.
package check
