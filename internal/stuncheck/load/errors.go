package load

import (
	"errors"
	"fmt"
)

// ErrConfig is wrapped by every error about invalid options or target.
var ErrConfig = errors.New("invalid load configuration")

// A ConfigError is an option or target that Run refuses. It wraps
// ErrConfig.
type ConfigError struct {
	// Option names what is refused: the option as its With function
	// names it, lower case ("connections", "window", "rate", "duration",
	// "timeout", "batch", "network", "mapped", "request", "spin", "progress"),
	// or "target".
	Option string
	// Value is the refused value.
	Value any
	// msg says what is wrong, for people.
	msg string
}

// configError returns the error for option's value, with the message
// format and args.
func configError(option string, value any, format string, args ...any) *ConfigError {
	return &ConfigError{Option: option, Value: value, msg: fmt.Sprintf(format, args...)}
}

// Error says what is refused and what is wanted instead.
func (e *ConfigError) Error() string { return e.msg }

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }
