package load

import (
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/wire"
)

// Defaults for the options.
const (
	DefaultConnections = 4
	DefaultWindow      = 16
	DefaultDuration    = 10 * time.Second
	DefaultTimeout     = time.Second
	DefaultBatch       = 64
)

// MappedCheck says what XOR-MAPPED-ADDRESS every success response must
// carry.
type MappedCheck int

const (
	// MappedAuto is MappedLocal when the target is a loopback address and
	// MappedStable otherwise.
	MappedAuto MappedCheck = iota
	// MappedLocal: the socket's own local address (no NAT on the path).
	MappedLocal
	// MappedStable: the same address for every response on a socket (the
	// first one seen): a NAT or load balancer may rewrite the source but
	// must keep one mapping per socket.
	MappedStable
	// MappedOff checks only that a valid XOR-MAPPED-ADDRESS is present.
	MappedOff
)

var mappedNames = [...]string{"auto", "local", "stable", "off"}

// String returns the check's name: auto, local, stable or off.
func (m MappedCheck) String() string {
	if m < 0 || int(m) >= len(mappedNames) {
		return "unknown"
	}

	return mappedNames[m]
}

// ParseMappedCheck parses auto, local, stable or off.
func ParseMappedCheck(s string) (MappedCheck, error) {
	for i, n := range mappedNames {
		if s == n {
			return MappedCheck(i), nil
		}
	}

	return 0, configError("mapped", s, "mapped-address check %q: want auto, local, stable or off", s)
}

// RequestShape is what every request of a run looks like.
type RequestShape int

const (
	// RequestBare is a Binding request with no attributes (20 bytes), as
	// Chromium sends to gather server-reflexive candidates.
	RequestBare RequestShape = iota
	// RequestFingerprint is a Binding request carrying FINGERPRINT (28
	// bytes), as clients that add FINGERPRINT send; the server has to
	// check a CRC-32 per request.
	RequestFingerprint
)

var requestNames = [...]string{"bare", "fingerprint"}

// String returns the shape's name: bare or fingerprint.
func (q RequestShape) String() string {
	if q < 0 || int(q) >= len(requestNames) {
		return "unknown"
	}

	return requestNames[q]
}

// size is the length of a request of this shape in bytes.
func (q RequestShape) size() int {
	if q == RequestFingerprint {
		return wire.HeaderSize + wire.FingerprintSize
	}

	return wire.HeaderSize
}

// ParseRequestShape parses bare or fingerprint.
func ParseRequestShape(s string) (RequestShape, error) {
	for i, n := range requestNames {
		if s == n {
			return RequestShape(i), nil
		}
	}

	return 0, configError("request", s, "request shape %q: want bare or fingerprint", s)
}

// Progress is a snapshot of a running load, passed to the WithProgress
// callback.
type Progress struct {
	// Elapsed is the time since the first request.
	Elapsed time.Duration
	// Sent, Responses, Invalid, Lost and Late are totals so far (see
	// Result).
	Sent, Responses, Invalid, Lost, Late uint64
	// Rate is the valid responses per second since the previous snapshot.
	Rate float64
	// Draining is true once sending has stopped.
	Draining bool
}

// Option configures Run.
type Option func(*config)

type config struct {
	network     string
	connections int
	window      int
	rate        float64
	duration    time.Duration
	timeout     time.Duration
	batch       int
	gso         bool
	mapped      MappedCheck
	request     RequestShape
	spin        bool
	progress    func(Progress)
	progressInt time.Duration
	logger      logging.LoggerFactory
}

// WithNetwork selects "udp" (the default) or "tcp".
func WithNetwork(network string) Option { return func(c *config) { c.network = network } }

// WithConnections sets the number of UDP sockets (source ports) or TCP
// connections (default DefaultConnections).
func WithConnections(n int) Option { return func(c *config) { c.connections = n } }

// WithWindow sets the requests in flight per connection in a closed loop
// (default DefaultWindow). It is ignored with WithRate.
func WithWindow(w int) Option { return func(c *config) { c.window = w } }

// WithRate switches to an open loop: requests per second in total, spread
// evenly over the connections, sent whatever the server answers.
func WithRate(r float64) Option { return func(c *config) { c.rate = r } }

// WithDuration sets how long requests are sent (default DefaultDuration).
func WithDuration(d time.Duration) Option { return func(c *config) { c.duration = d } }

// WithTimeout sets how long a request may stay unanswered before it counts
// as lost, and how long Run waits for answers after sending stops (default
// DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithBatch sets the most datagrams sent or received per system call
// (default DefaultBatch).
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithGSO sets whether a UDP batch leaves in one UDP GSO write (Linux
// UDP_SEGMENT; the default where available) rather than one datagram per
// request. The server receives the same separate datagrams either way;
// GSO only makes sending cheaper for the generator.
func WithGSO(on bool) Option { return func(c *config) { c.gso = on } }

// WithMappedCheck sets the XOR-MAPPED-ADDRESS check (default MappedAuto).
func WithMappedCheck(m MappedCheck) Option { return func(c *config) { c.mapped = m } }

// WithRequest sets the shape of the requests (default RequestBare).
func WithRequest(q RequestShape) Option { return func(c *config) { c.request = q } }

// WithSpin sets whether a closed loop over UDP polls all its sockets from
// one goroutine, locked to its thread, that never sleeps (Linux only). A
// server that answers one datagram at a time otherwise wakes the generator
// once per answer, which then costs more than the server and shows the
// server tiny batches. Spinning uses a whole core however light the load:
// give the generator its own core, and the figure is the server's, not the
// generator's wake-ups.
func WithSpin(on bool) Option { return func(c *config) { c.spin = on } }

// WithProgress calls fn every interval while the load runs, from another
// goroutine.
func WithProgress(interval time.Duration, fn func(Progress)) Option {
	return func(c *config) {
		c.progressInt = interval
		c.progress = fn
	}
}

// WithLoggerFactory sets where the generator logs (connection failures).
func WithLoggerFactory(f logging.LoggerFactory) Option { return func(c *config) { c.logger = f } }

func newConfig(opts []Option) (config, error) {
	c := config{
		network:     "udp",
		connections: DefaultConnections,
		window:      DefaultWindow,
		duration:    DefaultDuration,
		timeout:     DefaultTimeout,
		batch:       DefaultBatch,
		gso:         true,
	}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.network != "udp" && c.network != "tcp":
		return c, configError("network", c.network, "network %q: want udp or tcp", c.network)
	case c.connections < 1 || c.connections > 65536:
		return c, configError("connections", c.connections, "connections %d: want 1 to 65536", c.connections)
	case c.rate == 0 && (c.window < 1 || c.window > 1<<16):
		return c, configError("window", c.window, "window %d: want 1 to 65536", c.window)
	case c.rate < 0:
		return c, configError("rate", c.rate, "rate %g: must be positive", c.rate)
	case c.duration <= 0:
		return c, configError("duration", c.duration, "duration %s: must be positive", c.duration)
	case c.timeout <= 0:
		return c, configError("timeout", c.timeout, "timeout %s: must be positive", c.timeout)
	case c.batch < 1 || c.batch > 1024:
		return c, configError("batch", c.batch, "batch %d: want 1 to 1024", c.batch)
	case c.mapped < MappedAuto || c.mapped > MappedOff:
		return c, configError("mapped", c.mapped, "unknown mapped-address check %d", int(c.mapped))
	case c.request < RequestBare || c.request > RequestFingerprint:
		return c, configError("request", c.request, "unknown request shape %d", int(c.request))
	case c.spin && c.network != "udp":
		return c, configError("spin", c.spin, "spin polls UDP sockets: it does not work over %s", c.network)
	case c.spin && c.rate != 0:
		return c, configError("spin", c.spin, "spin is a closed loop: it excludes a rate (open loop)")
	case c.spin && !spinSupported:
		return c, configError("spin", c.spin, "spin needs Linux (non-blocking recvmmsg)")
	case c.progress != nil && c.progressInt <= 0:
		return c, configError("progress", c.progressInt, "progress interval %s: must be positive", c.progressInt)
	}
	if c.logger == nil {
		c.logger = logging.NewDefaultLoggerFactory()
	}

	return c, nil
}
