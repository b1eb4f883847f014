package load

import "errors"

// ErrConfig is wrapped by every error about invalid options or target.
var ErrConfig = errors.New("invalid load configuration")
