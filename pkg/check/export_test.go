package check

import (
	"fmt"

	"github.com/stund/stund/internal/stuncheck/client"
)

var errNoResponseForTest = fmt.Errorf("udp [2001:db8::7]:3478: %w after 7 transmissions", client.ErrNoResponse)
