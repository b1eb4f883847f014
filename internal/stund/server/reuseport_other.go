//go:build !linux

package server

import (
	"errors"
	"net"
	"syscall"
)

// reusePort is Linux-only here; elsewhere run one UDP socket per address.
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("several UDP sockets per address need SO_REUSEPORT (Linux); use one")
}

// growReadBuffer asks for a receive buffer of n bytes.
func growReadBuffer(u *net.UDPConn, n int) { _ = u.SetReadBuffer(n) }
