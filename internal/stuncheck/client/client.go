package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/wire"
)

// Defaults from RFC 8489 §6.2.1, except the total timeout, which is much
// shorter than the RFC's 39.5 s because a diagnosis should not hang.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultRTO              = 500 * time.Millisecond
	DefaultMaxTransmissions = 7  // Rc
	DefaultLastWait         = 16 // Rm, in multiples of the initial RTO
)

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each Binding transaction, retransmissions included.
// A deadline on the context, if earlier, wins.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// WithRTO sets the initial retransmission timeout for UDP.
func WithRTO(d time.Duration) Option {
	return func(c *Client) { c.rto = d }
}

// WithMaxTransmissions sets Rc, the number of UDP transmissions of a request.
func WithMaxTransmissions(n int) Option {
	return func(c *Client) { c.rc = n }
}

// WithLocalAddr binds the client's sockets to addr (port 0 picks one).
func WithLocalAddr(addr netip.AddrPort) Option {
	return func(c *Client) { c.local = addr }
}

// WithSoftware makes requests carry a SOFTWARE attribute.
func WithSoftware(name string) Option {
	return func(c *Client) { c.software = name }
}

// WithLoggerFactory sets where the client logs (discarded packets, retransmissions).
func WithLoggerFactory(f logging.LoggerFactory) Option {
	return func(c *Client) { c.loggerFactory = f }
}

// Client sends STUN Binding requests. It is safe for concurrent use; every
// Binding call uses its own socket.
type Client struct {
	timeout       time.Duration
	rto           time.Duration
	rc            int
	local         netip.AddrPort
	software      string
	loggerFactory logging.LoggerFactory
	log           logging.LeveledLogger
}

// New returns a Client with RFC 8489 defaults changed by opts.
func New(opts ...Option) *Client {
	c := &Client{timeout: DefaultTimeout, rto: DefaultRTO, rc: DefaultMaxTransmissions}
	for _, o := range opts {
		o(c)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.rto <= 0 {
		c.rto = DefaultRTO
	}
	if c.rc <= 0 {
		c.rc = DefaultMaxTransmissions
	}
	if c.loggerFactory == nil {
		c.loggerFactory = logging.NewDefaultLoggerFactory()
	}
	c.log = c.loggerFactory.NewLogger("stun-client")

	return c
}

// Timeout returns the total time a Binding transaction may take.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Response is the outcome of one Binding transaction.
type Response struct {
	Answer
	// Network is "udp" or "tcp".
	Network string
	// Server is where the request was sent.
	Server netip.AddrPort
	// From is where the response came from (differs from Server after a
	// CHANGE-REQUEST).
	From netip.AddrPort
	// Local is the client's own address for the transaction.
	Local netip.AddrPort
	// RTT is the time from the last transmission to the response.
	RTT time.Duration
	// Transmissions counts how often the request was sent (1 over TCP).
	Transmissions int
}

// Binding sends one Binding request to server over network ("udp" or "tcp")
// and returns the validated response.
func (c *Client) Binding(ctx context.Context, network string, server netip.AddrPort, opts ...RequestOption) (*Response, error) {
	switch network {
	case "udp":
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		var local *net.UDPAddr
		if c.local.IsValid() {
			local = net.UDPAddrFromAddrPort(c.local)
		}
		conn, err := net.DialUDP("udp", local, net.UDPAddrFromAddrPort(server))
		if err != nil {
			return nil, fmt.Errorf("udp %s: %w", server, err)
		}
		defer conn.Close()
		res, err := c.udpTransaction(ctx, conn, server, true, opts)
		if err != nil {
			return nil, fmt.Errorf("udp %s: %w", server, err)
		}

		return res, nil
	case "tcp":
		res, err := c.tcpTransaction(ctx, server, opts)
		if err != nil {
			return nil, fmt.Errorf("tcp %s: %w", server, err)
		}

		return res, nil
	default:
		return nil, fmt.Errorf("%w %q (want udp or tcp)", ErrNetwork, network)
	}
}

// UDPConn is one UDP socket that sends several Binding requests, to one or
// more servers, from the same local port: what RFC 5780 behaviour discovery
// needs. Responses are accepted from any address and matched by
// transaction ID. Use one transaction at a time.
type UDPConn struct {
	c    *Client
	conn *net.UDPConn
}

// ListenUDP opens a UDPConn on the client's local address (any address if
// none was set) for the given family: "udp4", "udp6" or "udp".
func (c *Client) ListenUDP(network string) (*UDPConn, error) {
	var local *net.UDPAddr
	if c.local.IsValid() {
		local = net.UDPAddrFromAddrPort(c.local)
	}
	conn, err := net.ListenUDP(network, local)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", network, err)
	}

	return &UDPConn{c: c, conn: conn}, nil
}

// ListenUDPFor opens a UDPConn bound to the local address this host sends
// from to reach server: the client's local IP when one was set, otherwise
// the source address the kernel picks for server's route. A socket bound to
// the wildcard address may leave from another address for another
// destination on a host with several, which RFC 5780's tests would take
// for a NAT; one bound to a concrete address also knows the local address
// that RFC 5780 §4.3 compares the mapped address with.
func (c *Client) ListenUDPFor(server netip.AddrPort) (*UDPConn, error) {
	network := "udp4"
	if server.Addr().Unmap().Is6() {
		network = "udp6"
	}
	local := c.local
	if !local.IsValid() || local.Addr().IsUnspecified() {
		var bind *net.UDPAddr
		if local.IsValid() {
			bind = net.UDPAddrFromAddrPort(local)
		}
		// Connecting a UDP socket sends nothing; it only asks the
		// kernel for the route and its source address.
		probe, err := net.DialUDP(network, bind, net.UDPAddrFromAddrPort(server))
		if err != nil {
			return nil, fmt.Errorf("route to %s: %w", server, err)
		}
		src := probe.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
		_ = probe.Close()
		local = netip.AddrPortFrom(src, local.Port())
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", local, err)
	}

	return &UDPConn{c: c, conn: conn}, nil
}

// LocalAddr returns the socket's local address.
func (u *UDPConn) LocalAddr() netip.AddrPort {
	return u.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket.
func (u *UDPConn) Close() error { return u.conn.Close() }

// Binding sends a Binding request to server and waits for its response,
// retransmitting as the Client does.
func (u *UDPConn) Binding(ctx context.Context, server netip.AddrPort, opts ...RequestOption) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, u.c.timeout)
	defer cancel()
	res, err := u.c.udpTransaction(ctx, u.conn, server, false, opts)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", server, err)
	}

	return res, nil
}

func (c *Client) request(opts []RequestOption) (*Request, error) {
	if c.software != "" {
		opts = append([]RequestOption{WithRequestSoftware(c.software)}, opts...)
	}

	var tid wire.TransactionID
	_, _ = rand.Read(tid[:]) // never fails: crypto/rand.Read crashes instead

	return NewRequest(tid, opts...)
}

// udpTransaction runs the RFC 8489 §6.2.1 retransmission schedule on conn
// until a valid response arrives, the schedule ends or ctx is done.
func (c *Client) udpTransaction(ctx context.Context, conn *net.UDPConn, server netip.AddrPort, connected bool, opts []RequestOption) (*Response, error) {
	req, err := c.request(opts)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	res := &Response{Network: "udp", Server: server, Local: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	buf := make([]byte, 1500)
	rto := c.rto
	for n := 1; n <= c.rc; n++ {
		sent := time.Now()
		if connected {
			_, err = conn.Write(req.Raw)
		} else {
			_, err = conn.WriteToUDPAddrPort(req.Raw, server)
		}
		if err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		res.Transmissions = n
		wait := rto
		if n == c.rc {
			wait = c.rto * DefaultLastWait
		}
		if err := conn.SetReadDeadline(sent.Add(wait)); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w after %d transmissions: %w", ErrNoResponse, n, ctx.Err())
		}
		for {
			nr, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, fmt.Errorf("%w after %d transmissions: %w", ErrNoResponse, n, ctx.Err())
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // retransmit
				}

				return nil, fmt.Errorf("receive: %w", err)
			}
			ans, err := ParseResponse(buf[:nr], req.TransactionID)
			var er *ErrorResponse
			switch {
			case err == nil:
				res.Answer = ans
				res.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
				res.RTT = time.Since(sent)

				return res, nil
			case errors.As(err, &er), errors.Is(err, ErrNoMappedAddress), errors.Is(err, ErrInvalidAttribute):
				// The server's own answer to this request: waiting
				// for another would only repeat it.
				return nil, err
			default:
				c.log.Debugf("discarding datagram from %s: %v", from, err)
			}
		}
		c.log.Debugf("no response from %s after transmission %d", server, n)
		rto *= 2
	}

	return nil, fmt.Errorf("%w after %d transmissions", ErrNoResponse, c.rc)
}

// tcpTransaction sends one request on a fresh connection and reads
// back-to-back framed messages until the response arrives.
func (c *Client) tcpTransaction(ctx context.Context, server netip.AddrPort, opts []RequestOption) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	d := net.Dialer{}
	if c.local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(c.local)
	}
	conn, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		// The dial's own deadline can fire just before the context
		// reports it: both mean nothing answered in time.
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, fmt.Errorf("%w: connect: %w", ErrNoResponse, err)
		}

		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	req, err := c.request(opts)
	if err != nil {
		return nil, err
	}
	res := &Response{
		Network:       "tcp",
		Server:        server,
		From:          server,
		Local:         conn.LocalAddr().(*net.TCPAddr).AddrPort(),
		Transmissions: 1,
	}
	res.Local = netip.AddrPortFrom(res.Local.Addr().Unmap(), res.Local.Port())
	sent := time.Now()
	if _, err := conn.Write(req.Raw); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	for {
		raw, err := ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %w", ErrNoResponse, ctx.Err())
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: server closed the connection", ErrNoResponse)
			}

			return nil, err
		}
		ans, err := ParseResponse(raw, req.TransactionID)
		if errors.Is(err, ErrTransactionMismatch) || errors.Is(err, ErrUnexpectedType) {
			c.log.Debugf("skipping message from %s: %v", server, err)

			continue
		}
		if err != nil {
			return nil, err
		}
		res.Answer = ans
		res.RTT = time.Since(sent)

		return res, nil
	}
}

// ReadFrame reads one STUN message from a stream where messages follow
// each other with no extra framing (RFC 8489 §6.2.2).
func ReadFrame(r io.Reader) ([]byte, error) {
	hdr := make([]byte, wire.HeaderSize, wire.HeaderSize+128)
	if _, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: stream ended inside a header", ErrMalformed)
		}

		return nil, err
	}
	h, err := parseHeader(hdr)
	if err != nil {
		return nil, err
	}
	msg := append(hdr, make([]byte, h.Length)...)
	if _, err := io.ReadFull(r, msg[wire.HeaderSize:]); err != nil {
		return nil, fmt.Errorf("%w: stream ended inside a message: %w", ErrMalformed, err)
	}

	return msg, nil
}
