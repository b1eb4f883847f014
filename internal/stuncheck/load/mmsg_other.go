//go:build !linux

package load

import (
	"errors"
	"net"
)

const recvSize = 1536

// udpIO is the portable fallback: one datagram per system call.
type udpIO struct {
	conn    *net.UDPConn
	rbuf    []byte
	n       int
	sendBuf []byte
	size    int
}

func newUDPIO(conn *net.UDPConn, _ int, sendBuf []byte, size int, _ bool) (*udpIO, error) {
	return &udpIO{conn: conn, rbuf: make([]byte, recvSize), sendBuf: sendBuf, size: size}, nil
}

func (u *udpIO) recv() (int, error) {
	n, err := u.conn.Read(u.rbuf)
	if err != nil {
		return 0, err
	}
	u.n = n

	return 1, nil
}

// poll is not available here: WithSpin is refused (spinSupported).
func (u *udpIO) poll() (int, error) { return 0, errors.ErrUnsupported }

func (u *udpIO) msg(int) []byte { return u.rbuf[:u.n] }

func (u *udpIO) send(n int) (failed int) {
	for i := range n {
		if _, err := u.conn.Write(u.sendBuf[i*u.size : (i+1)*u.size]); err != nil {
			failed++
		}
	}

	return failed
}

// spinSupported: WithSpin needs recvmmsg, which this system lacks.
const spinSupported = false
