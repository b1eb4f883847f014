// Package client is a STUN Binding client (RFC 8489) over UDP and TCP.
//
// It sends one Binding request and returns what the server saw: the mapped
// address (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from older servers), the
// RFC 5780 attributes RESPONSE-ORIGIN and OTHER-ADDRESS when present, and the
// round-trip time. Over UDP the request is retransmitted as RFC 8489 §6.2.1
// describes (RTO 500 ms, doubling, at most Rc=7 transmissions, then Rm=16
// RTOs of waiting), all of it bounded by the client's total timeout. Over TCP
// the request and response are framed back to back on one connection (§6.2.2).
//
// Every response is validated before it is believed: STUN header, transaction
// ID, method and class, and FINGERPRINT when the server sent one. UDP
// datagrams that fail validation are discarded and the client keeps waiting,
// as the RFC asks.
package client
