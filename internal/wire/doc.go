// Package wire encodes and decodes STUN messages (RFC 8489, with the
// RFC 3489 and RFC 5780 attributes a Binding server and its clients use)
// without allocating.
//
// Decoding is a view: a [Message] indexes the attributes of the caller's
// buffer in a fixed array and copies nothing, so one Message can be reused
// for every datagram a worker reads. The header checks follow the order of
// RFC 8489 §6.3 and each failure has its own error, so that a server can
// count why it discarded a message and a client can say what was wrong.
// FINGERPRINT is checked on request ([Message.CheckFingerprint]), because a
// server applies the method and class rules before it.
//
// Encoding appends: a [Builder] writes a message at the end of a byte
// slice, keeps the header length up to date as attributes are added, pads
// every value with zeros and ends with FINGERPRINT when asked. Given a
// slice with enough capacity it does not allocate.
//
// The package knows the wire format only; which attributes a server
// understands, which responses a client accepts and how errors are counted
// or worded belong to them.
package wire
