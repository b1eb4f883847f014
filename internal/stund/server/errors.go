package server

import (
	"errors"
	"fmt"
)

// Errors returned by New and Start; check them with errors.Is. New
// returns them inside a *ConfigError that names the refused field.
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
	// ErrProxyUnused is a trusted source or ProxyOptional without PROXY
	// protocol, where they would do nothing.
	ErrProxyUnused = errors.New("trusted PROXY sources and optional PROXY headers take effect only with PROXY protocol")
	// ErrMappedPrefix is an IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/n)
	// among trusted proxies, exempt sources or internal prefixes: sources
	// are compared as IPv4, so it would never match. Write it as IPv4.
	ErrMappedPrefix = errors.New("IPv4-mapped IPv6 prefix never matches; write it as IPv4")
	// ErrBadResponseOrigin is a ResponseOrigin address clients cannot
	// reach, or two of one family (ErrTwoResponseOrigins).
	ErrBadResponseOrigin = errors.New("bad response origin")
	// ErrTwoResponseOrigins is two ResponseOrigin addresses of one family.
	// It wraps ErrBadResponseOrigin.
	ErrTwoResponseOrigins = fmt.Errorf("%w: two of one family", ErrBadResponseOrigin)
	// ErrBadRateLimit is a negative rate, burst or TCP connection cap, a
	// burst under 1 with a per-source rate, or an IPv6 prefix length out
	// of range.
	ErrBadRateLimit = errors.New("bad rate limit")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("server already started")
)

// A ConfigError is a configuration that New refuses: which field, the
// value refused, and why. A command that set the field from a flag can
// name the flag in its own words; kubeclass.New returns them too, naming
// fields of its own Config.
type ConfigError struct {
	// Field is the refused field as Go code names it in the Config:
	// "Listen", "TCPIdleTimeout", "ProxyTrusted", "RateLimit.Burst",
	// "Classifier.Internal" (a StaticClassifier's), ...
	Field string
	// Value is the refused value; for a list, the refused element. For
	// two ResponseOrigin addresses of one family it is both, as a
	// []netip.AddrPort, the earlier first.
	Value any
	// Err is the sentinel that says what is wrong, for errors.Is.
	Err error
	// msg says it for people.
	msg string
}

// configError returns the error for field's value, worded by format and
// args.
func configError(field string, value any, err error, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Value: value, Err: err, msg: fmt.Sprintf(format, args...)}
}

// Error says what is refused and what would be accepted.
func (e *ConfigError) Error() string { return e.msg }

// Unwrap returns the sentinel.
func (e *ConfigError) Unwrap() error { return e.Err }

// NewConfigError returns a ConfigError for packages that build on this
// one and validate their own Config, such as kubeclass.
func NewConfigError(field string, value any, err error, msg string) *ConfigError {
	return &ConfigError{Field: field, Value: value, Err: err, msg: msg}
}
