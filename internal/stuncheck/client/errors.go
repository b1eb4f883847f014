package client

import (
	"errors"
	"fmt"
)

var (
	// ErrNoResponse means no valid response arrived before the timeout or
	// after the last retransmission.
	ErrNoResponse = errors.New("no response")
	// ErrMalformed means the bytes received are not a well-formed STUN message.
	ErrMalformed = errors.New("malformed STUN message")
	// ErrInvalidAttribute means a response to this client's request (its
	// transaction ID, with a valid FINGERPRINT if any) carried an attribute
	// it cannot use, such as an address attribute of the wrong length. It
	// wraps ErrMalformed.
	ErrInvalidAttribute = fmt.Errorf("%w: invalid attribute", ErrMalformed)
	// ErrTransactionMismatch means a response carried a transaction ID that
	// this client did not send.
	ErrTransactionMismatch = errors.New("transaction ID mismatch")
	// ErrUnexpectedType means a message was not a Binding success or error
	// response.
	ErrUnexpectedType = errors.New("unexpected message type")
	// ErrFingerprint means a FINGERPRINT attribute was present but wrong or
	// not the last attribute.
	ErrFingerprint = errors.New("invalid FINGERPRINT")
	// ErrNoMappedAddress means a success response carried neither
	// XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS.
	ErrNoMappedAddress = errors.New("success response without a mapped address")
	// ErrNetwork means the network argument is neither "udp" nor "tcp".
	ErrNetwork = errors.New("unsupported network")
)

// ErrorResponse is returned when the server answered with a Binding error
// response. Check for it with errors.As.
type ErrorResponse struct {
	Code   int
	Reason string
}

func (e *ErrorResponse) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("error response %d", e.Code)
	}

	return fmt.Sprintf("error response %d (%s)", e.Code, e.Reason)
}
