package server

import "errors"

// Errors returned by New and Start; check them with errors.Is.
var (
	// ErrBadAddress is a listen address that is not host:port.
	ErrBadAddress = errors.New("bad address")
	// ErrSoftwareTooLong is a SOFTWARE value over MaxSoftwareLength bytes.
	ErrSoftwareTooLong = errors.New("software value too long")
	// ErrBadMaxMessageSize is a MaxMessageSize out of range.
	ErrBadMaxMessageSize = errors.New("max message size out of range")
	// ErrBadTimeout is a negative timeout.
	ErrBadTimeout = errors.New("timeout must not be negative")
	// ErrBadUDPSockets is a UDPSockets value out of range.
	ErrBadUDPSockets = errors.New("bad number of UDP sockets")
	// ErrProxyNoTrusted is PROXY protocol turned on with no trusted source.
	ErrProxyNoTrusted = errors.New("PROXY protocol needs at least one trusted CIDR: otherwise anyone could claim any source")
	// ErrBadRateLimit is a negative rate or burst.
	ErrBadRateLimit = errors.New("bad rate limit")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("server already started")
)
