package turn

import (
	"errors"
	"fmt"

	"github.com/stund/stund/internal/stuncheck/client"
)

var (
	// ErrNoResponse means no response arrived within the timeout. It is
	// the STUN client's, so that callers tell silence apart the same way
	// for both.
	ErrNoResponse = client.ErrNoResponse
	// ErrMalformed means the server sent something that is not the
	// expected STUN message.
	ErrMalformed = errors.New("malformed TURN response")
	// ErrIntegrity means a response's MESSAGE-INTEGRITY did not verify
	// with the credentials used.
	ErrIntegrity = errors.New("response MESSAGE-INTEGRITY does not verify")
	// ErrNetwork means Config.Network is not udp, tcp or tls.
	ErrNetwork = errors.New("unsupported network")
)

// TLSError is a failed TLS handshake with a turns: server. Err is the
// crypto/tls or crypto/x509 error; Certificate says whether verifying the
// server's certificate is what failed.
type TLSError struct {
	Err         error
	Certificate bool
}

func (e *TLSError) Error() string { return fmt.Sprintf("TLS handshake: %v", e.Err) }

// Unwrap returns the underlying TLS error.
func (e *TLSError) Unwrap() error { return e.Err }
