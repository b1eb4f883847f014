package check

import "errors"

var (
	// ErrUsage marks configuration mistakes: a bad target, flag value or
	// combination. stuncheck exits 2 on these.
	ErrUsage = errors.New("usage")
	// ErrResolve means a target's host name did not resolve. It wraps
	// ErrUsage: the name is part of the configuration.
	ErrResolve = errors.New("cannot resolve target")
)
