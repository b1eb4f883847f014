package check

import (
	"fmt"
	"time"

	"github.com/stund/stund/internal/stuncheck/client"
)

var errNoResponseForTest = fmt.Errorf("udp [2001:db8::7]:3478: %w after 7 transmissions", client.ErrNoResponse)

// WithRTO returns cfg with the STUN client's first retransmission timeout
// set to rto, so that tests of unanswered probes see several
// retransmissions within a short timeout.
func WithRTO(cfg Config, rto time.Duration) Config {
	cfg.clientOptions = append(cfg.clientOptions, client.WithRTO(rto))
	cfg.turnRTO = rto

	return cfg
}
