//go:build linux

package server

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort sets SO_REUSEPORT, so that several sockets of this process
// share one UDP port and the kernel spreads sources across them.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}

	return serr
}

// growReadBuffer asks for a receive buffer of n bytes, so that a burst or
// a flood queues instead of dropping honest datagrams. With CAP_NET_ADMIN
// SO_RCVBUFFORCE passes net.core.rmem_max; without it the kernel caps the
// ordinary request at rmem_max.
func growReadBuffer(u *net.UDPConn, n int) {
	raw, err := u.SyscallConn()
	if err == nil {
		var serr error
		_ = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		})
		if serr == nil {
			return
		}
	}
	_ = u.SetReadBuffer(n)
}
