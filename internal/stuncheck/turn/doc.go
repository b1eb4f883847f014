// Package turn is the TURN client (RFC 8656) behind stuncheck's turn: and
// turns: targets. It does what a WebRTC client does with a TURN server,
// once, and reports each step: it allocates a relay with long-term
// credentials (RFC 8489 §9.2, 401 and 438 Stale Nonce handled), reads
// the mapped and relayed addresses from the Allocate response, proves
// that the relay carries traffic with a second local socket acting as
// the peer, and releases the allocation (Refresh with lifetime 0).
//
// Messages are built and checked with pion/stun (MESSAGE-INTEGRITY,
// FINGERPRINT, the TURN attributes); TCP and TLS framing of STUN and
// ChannelData on a stream comes from pion/turn's STUNConn. The
// transactions themselves are this package's: pion/turn's Client hides
// what a diagnosis needs (the XOR-MAPPED-ADDRESS of the Allocate
// response, the error code of a refused request, a Stale Nonce during
// Allocate).
package turn
