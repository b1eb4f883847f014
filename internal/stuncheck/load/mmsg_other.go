//go:build !linux

package load

import (
	"net"
)

const recvSize = 1536

// udpIO is the portable fallback: one datagram per system call.
type udpIO struct {
	conn    *net.UDPConn
	rbuf    []byte
	n       int
	sendBuf []byte
}

func newUDPIO(conn *net.UDPConn, _ int, sendBuf []byte, _ bool) (*udpIO, error) {
	return &udpIO{conn: conn, rbuf: make([]byte, recvSize), sendBuf: sendBuf}, nil
}

func (u *udpIO) recv() (int, error) {
	n, err := u.conn.Read(u.rbuf)
	if err != nil {
		return 0, err
	}
	u.n = n

	return 1, nil
}

func (u *udpIO) msg(int) []byte { return u.rbuf[:u.n] }

func (u *udpIO) send(n int) (failed int) {
	for i := range n {
		if _, err := u.conn.Write(u.sendBuf[i*requestSize : (i+1)*requestSize]); err != nil {
			failed++
		}
	}

	return failed
}
