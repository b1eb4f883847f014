package check

import "errors"

// Errors returned by ParseTarget, New and Run. Each says which input was
// wrong; check them with errors.Is. Errors about one value are an
// *InputError that wraps one of them and carries the value.
var (
	// ErrNoTarget means Config.Targets is empty.
	ErrNoTarget = errors.New("no target given")
	// ErrBadTarget means a target does not parse (see ParseTarget).
	ErrBadTarget = errors.New("bad target")
	// ErrBadReference means an entry of Config.References does not parse
	// as a target.
	ErrBadReference = errors.New("bad reference server")
	// ErrBadTransport means a transport other than UDP and TCP.
	ErrBadTransport = errors.New("bad transport")
	// ErrBadTimeout means a negative Config.Timeout.
	ErrBadTimeout = errors.New("negative timeout")
	// ErrBadExpectIP means an entry of Config.ExpectIPs that is not a
	// unicast address.
	ErrBadExpectIP = errors.New("expected IP is not a unicast address")
	// ErrTwoExpectIPs means two entries of Config.ExpectIPs of one family.
	ErrTwoExpectIPs = errors.New("two expected IPs of one family")
	// ErrTURNCredentials means turn: or turns: targets without usable
	// credentials in Config.TURN: neither a username and password nor a
	// secret, or both a password and a secret.
	ErrTURNCredentials = errors.New("TURN credentials")
	// ErrResolve means a target's host name did not resolve (from Run).
	ErrResolve = errors.New("cannot resolve target")
)

// An InputError is one value that check refuses: a target, a reference
// server, a transport, a timeout or an expected IP.
type InputError struct {
	// Err is the sentinel above that says which input is wrong.
	Err error
	// Input is the refused value as text: a target or reference as it was
	// written, a transport, a timeout, an IP address.
	Input string
	// msg says what is wrong, for people.
	msg string
}

// Error says what is wrong with the input, and how to write it instead
// when there is a way.
func (e *InputError) Error() string { return e.msg }

// Unwrap returns the sentinel, for errors.Is.
func (e *InputError) Unwrap() error { return e.Err }
