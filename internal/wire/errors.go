package wire

import (
	"errors"
	"fmt"
)

// Errors from decoding a message header, in the order RFC 8489 §6.3 checks
// them. A server discards the message silently on any of them.
var (
	// ErrShort means fewer bytes than the 20-byte header.
	ErrShort = errors.New("stun: shorter than a message header")
	// ErrNotSTUN means the first two bits of the message are not zero.
	ErrNotSTUN = errors.New("stun: first two bits are not zero")
	// ErrBadLength means the header's length is not a multiple of 4 or
	// does not match the bytes given.
	ErrBadLength = errors.New("stun: length not a multiple of 4 or not matching the message")
	// ErrBadCookie means the magic cookie is missing: an RFC 3489 message
	// or no STUN at all. [Message.DecodeAllowClassic] accepts it.
	ErrBadCookie = errors.New("stun: wrong magic cookie")
)

// Errors from decoding the attributes of a message.
var (
	// ErrMalformed means an attribute runs past the end of the message.
	ErrMalformed = errors.New("stun: attribute runs past the end of the message")
	// ErrTooManyAttributes means more than MaxAttributes attributes.
	ErrTooManyAttributes = fmt.Errorf("stun: more than %d attributes", MaxAttributes)
	// ErrBadFingerprint means FINGERPRINT does not match the message.
	ErrBadFingerprint = errors.New("stun: FINGERPRINT does not match")
	// ErrFingerprintMalformed means FINGERPRINT is not the last attribute
	// or not 4 bytes long. It wraps ErrBadFingerprint, so a caller that
	// does not care which is wrong checks for that one alone.
	ErrFingerprintMalformed = fmt.Errorf("%w: not the last attribute or not 4 bytes", ErrBadFingerprint)
)

// Errors from reading one attribute's value.
var (
	// ErrNoAttribute means the message does not carry the attribute asked for.
	ErrNoAttribute = errors.New("stun: attribute not present")
	// ErrBadAttribute means an attribute's value does not have the layout
	// its type requires. The errors below wrap it.
	ErrBadAttribute = errors.New("stun: invalid attribute value")
	// ErrAddressFamily means an address attribute names a family other
	// than IPv4 (1) or IPv6 (2).
	ErrAddressFamily = fmt.Errorf("%w: unknown address family", ErrBadAttribute)
	// ErrAddressLength means an address attribute is not exactly 8 bytes
	// for IPv4 or 20 bytes for IPv6.
	ErrAddressLength = fmt.Errorf("%w: address of the wrong length for its family", ErrBadAttribute)
)

// Errors from building a message. A [Builder] keeps the first one and
// reports it from [Builder.Finish].
var (
	// ErrTooLong means an attribute value or the whole message would not
	// fit its 16-bit length field.
	ErrTooLong = errors.New("stun: attribute or message longer than 65535 bytes")
	// ErrInvalidAddress means an address attribute was asked for with an
	// address that is not a valid IP.
	ErrInvalidAddress = errors.New("stun: address to encode is not a valid IP")
	// ErrBadErrorCode means an ERROR-CODE outside 300-699.
	ErrBadErrorCode = errors.New("stun: error code outside 300-699")
	// ErrBadType means a message type with either of its top two bits set.
	ErrBadType = errors.New("stun: message type over 14 bits")
	// ErrAfterFingerprint means an attribute was added after FINGERPRINT,
	// which must come last.
	ErrAfterFingerprint = errors.New("stun: attribute added after FINGERPRINT")
)
