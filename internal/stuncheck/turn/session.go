package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"
)

// conn moves whole messages: a connected UDP socket, or a TCP or TLS
// stream framed by pion/turn's STUNConn.
type conn interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Close() error
	LocalAddr() net.Addr
}

// streamConn reads and writes one STUN message or ChannelData frame at a
// time over a stream.
type streamConn struct{ *pionturn.STUNConn }

func (s streamConn) Read(b []byte) (int, error) {
	n, _, err := s.ReadFrom(b)

	return n, err
}

func (s streamConn) Write(b []byte) (int, error) { return s.WriteTo(b, nil) }

// dataIndication is a Data indication from the server: what a peer sent
// to the relayed address.
type dataIndication struct {
	peer stun.XORMappedAddress
	data []byte
}

// session is one client transport address talking to one TURN server:
// requests matched to responses by transaction ID, Data indications
// handed to whoever waits for them.
type session struct {
	c        conn
	reliable bool
	rto      time.Duration
	timeout  time.Duration
	log      logging.LeveledLogger

	creds     Credentials
	realm     stun.Realm
	nonce     stun.Nonce
	integrity stun.MessageIntegrity
	// staleNonce counts 438 answers that a retry with the new nonce
	// recovered from.
	staleNonce int

	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]chan *stun.Message
	data    chan dataIndication
	done    chan struct{}
	readErr error
}

func newSession(c conn, reliable bool, rto, timeout time.Duration, creds Credentials, log logging.LeveledLogger) *session {
	s := &session{
		c: c, reliable: reliable, rto: rto, timeout: timeout, log: log, creds: creds,
		pending: map[[stun.TransactionIDSize]byte]chan *stun.Message{},
		data:    make(chan dataIndication, 8),
		done:    make(chan struct{}),
	}
	go s.read()

	return s
}

// read dispatches everything the server sends until the connection fails
// or is closed.
func (s *session) read() {
	buf := make([]byte, 64*1024)
	for {
		n, err := s.c.Read(buf)
		if err != nil {
			s.mu.Lock()
			s.readErr = err
			s.mu.Unlock()
			close(s.done)

			return
		}
		if !stun.IsMessage(buf[:n]) {
			s.log.Debugf("discarded %d bytes that are not STUN (ChannelData is not used)", n)

			continue
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := m.Decode(); err != nil {
			s.log.Debugf("discarded a malformed message: %v", err)

			continue
		}
		switch m.Type.Class {
		case stun.ClassSuccessResponse, stun.ClassErrorResponse:
			s.mu.Lock()
			ch, ok := s.pending[m.TransactionID]
			delete(s.pending, m.TransactionID)
			s.mu.Unlock()
			if !ok {
				s.log.Debugf("discarded %s for an unknown transaction", m.Type)

				continue
			}
			ch <- m
		case stun.ClassIndication:
			if m.Type.Method != stun.MethodData {
				continue
			}
			var d dataIndication
			if err := d.peer.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
				s.log.Debugf("discarded a Data indication without XOR-PEER-ADDRESS: %v", err)

				continue
			}
			v, err := m.Get(stun.AttrData)
			if err != nil {
				continue
			}
			d.data = append([]byte(nil), v...)
			select {
			case s.data <- d:
			default:
			}
		}
	}
}

// closed returns the error that ended the read loop.
func (s *session) closed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return s.readErr
	}

	return net.ErrClosed
}

// transaction sends m and waits for its response, retransmitting over UDP
// (RFC 8489 §6.2.1: RTO doubling) until the session's timeout.
func (s *session) transaction(ctx context.Context, m *stun.Message) (*stun.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ch := make(chan *stun.Message, 1)
	s.mu.Lock()
	s.pending[m.TransactionID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, m.TransactionID)
		s.mu.Unlock()
	}()
	rto := s.rto
	for {
		if _, err := s.c.Write(m.Raw); err != nil {
			return nil, fmt.Errorf("send %s: %w", m.Type, err)
		}
		var retransmit <-chan time.Time
		if !s.reliable {
			t := time.NewTimer(rto)
			defer t.Stop()
			retransmit = t.C
			rto *= 2
		}
		select {
		case res := <-ch:
			return res, nil
		case <-retransmit:
			s.log.Debugf("retransmitting %s", m.Type)
		case <-s.done:
			return nil, fmt.Errorf("%s: %w", m.Type, s.closed())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%s: %w within %s", m.Type, ErrNoResponse, s.timeout)
			}

			return nil, ctx.Err()
		}
	}
}

// request builds and runs one unauthenticated transaction.
func (s *session) request(ctx context.Context, t stun.MessageType, setters ...stun.Setter) (*stun.Message, error) {
	m, err := stun.Build(append(append([]stun.Setter{stun.TransactionID, t}, setters...), stun.Fingerprint)...)
	if err != nil {
		return nil, err
	}

	return s.transaction(ctx, m)
}

// learnRealm takes REALM and NONCE from a 401 or 438 answer and derives
// the long-term key (RFC 8489 §9.2.2).
func (s *session) learnRealm(res *stun.Message) error {
	var realm stun.Realm
	var nonce stun.Nonce
	if err := nonce.GetFrom(res); err != nil {
		return fmt.Errorf("%w: %s without NONCE", ErrMalformed, errorText(res))
	}
	if err := realm.GetFrom(res); err != nil {
		return fmt.Errorf("%w: %s without REALM", ErrMalformed, errorText(res))
	}
	s.realm, s.nonce = append(stun.Realm(nil), realm...), append(stun.Nonce(nil), nonce...)
	s.integrity = stun.NewLongTermIntegrity(s.creds.Username, string(s.realm), s.creds.Password)

	return nil
}

// authenticated runs a transaction with USERNAME, REALM, NONCE and
// MESSAGE-INTEGRITY. A 438 Stale Nonce answer is retried once with the
// new nonce (RFC 8489 §9.2.4). It returns the last response, success or
// error; a success response must carry valid MESSAGE-INTEGRITY.
func (s *session) authenticated(ctx context.Context, t stun.MessageType, setters ...stun.Setter) (*stun.Message, error) {
	for attempt := 0; ; attempt++ {
		all := append([]stun.Setter{stun.TransactionID, t}, setters...)
		all = append(all, stun.NewUsername(s.creds.Username), s.realm, s.nonce, s.integrity, stun.Fingerprint)
		m, err := stun.Build(all...)
		if err != nil {
			return nil, err
		}
		res, err := s.transaction(ctx, m)
		if err != nil {
			return nil, err
		}
		if code := errorCode(res); code == stun.CodeStaleNonce && attempt == 0 {
			if err := s.learnRealm(res); err != nil {
				return nil, err
			}
			s.staleNonce++
			s.log.Debugf("%s: 438 Stale Nonce, retrying with the new nonce", t)

			continue
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			if err := s.integrity.Check(res); err != nil {
				return nil, fmt.Errorf("%s: %w", res.Type, ErrIntegrity)
			}
		}

		return res, nil
	}
}

// errorCode returns the ERROR-CODE of an error response, 0 otherwise.
func errorCode(m *stun.Message) stun.ErrorCode {
	if m.Type.Class != stun.ClassErrorResponse {
		return 0
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		return 0
	}

	return ec.Code
}

// errorText describes an error response: "error 401 (Unauthorized)".
func errorText(m *stun.Message) string {
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		return m.Type.String()
	}
	if len(ec.Reason) == 0 {
		return fmt.Sprintf("error %d", ec.Code)
	}

	return fmt.Sprintf("error %d (%s)", ec.Code, ec.Reason)
}

// ResponseError is an error response from the server to a request other
// than the Allocate that Auth reports.
type ResponseError struct {
	Method string
	Code   int
	Reason string
}

func (e *ResponseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("%s: error %d", e.Method, e.Code)
	}

	return fmt.Sprintf("%s: error %d (%s)", e.Method, e.Code, e.Reason)
}

func responseError(m *stun.Message) *ResponseError {
	var ec stun.ErrorCodeAttribute
	_ = ec.GetFrom(m)

	return &ResponseError{Method: m.Type.Method.String(), Code: int(ec.Code), Reason: string(ec.Reason)}
}

// rawAttr adds an attribute with a ready value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (a rawAttr) AddTo(m *stun.Message) error {
	m.Add(a.t, a.v)

	return nil
}

// xorAddr adds an XOR-encoded address attribute of type t.
type xorAddr struct {
	t    stun.AttrType
	addr stun.XORMappedAddress
}

func (a xorAddr) AddTo(m *stun.Message) error { return a.addr.AddToAs(m, a.t) }
