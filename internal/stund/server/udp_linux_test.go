//go:build linux

package server

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// epollInodes returns the inodes of the files registered in any epoll
// instance of this process, from /proc/self/fdinfo: a socket is found
// there whichever of its descriptors was registered.
func epollInodes(t *testing.T) map[uint64]bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for _, e := range fds {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			_, ino, ok := strings.Cut(line, " ino:")
			if !strings.HasPrefix(line, "tfd:") || !ok {
				continue
			}
			if n, err := strconv.ParseUint(strings.Fields(ino)[0], 16, 64); err == nil {
				inodes[n] = true
			}
		}
	}

	return inodes
}

// socketInode returns the inode of the socket behind descriptor fd.
func socketInode(t *testing.T, fd int) uint64 {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	var ino uint64
	if _, err := fmt.Sscanf(link, "socket:[%d]", &ino); err != nil {
		t.Fatalf("descriptor %d is %s, not a socket", fd, link)
	}

	return ino
}

// TestUDPSocketsLeaveThePoller checks that the UDP workers' sockets are in
// no epoll set (the kernel would otherwise run a wake-up callback for
// every datagram in and out) and that they still answer.
func TestUDPSocketsLeaveThePoller(t *testing.T) {
	s, _ := startServer(t, Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 2})
	req := build(t, stun.BindingRequest, stun.Fingerprint)
	if resp, _ := exchangeUDP(t, s.Addrs()[0], req, 2*time.Second); resp == nil {
		t.Fatal("no response")
	}
	polled := epollInodes(t)
	raw, err := s.tcp[0].SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tcpFD int
	_ = raw.Control(func(fd uintptr) { tcpFD = int(fd) })
	if !polled[socketInode(t, tcpFD)] {
		t.Fatal("the TCP listener is in no epoll set: the check cannot see the runtime's poller")
	}
	for _, u := range s.udp {
		if polled[socketInode(t, u.fd)] {
			t.Errorf("UDP socket %d (%s) is in an epoll set", u.fd, u.addr)
		}
	}
}

// TestCloseReleasesUDPSockets checks that Close closes every UDP socket,
// busy or idle: afterwards the port can be bound again by a socket that
// does not share it.
func TestCloseReleasesUDPSockets(t *testing.T) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, UDPSockets: 4, Software: "stund-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0]
	req := build(t, stun.BindingRequest, stun.Fingerprint)
	for range 8 {
		if resp, _ := exchangeUDP(t, addr, req, 2*time.Second); resp == nil {
			t.Fatal("no response")
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: a UDP worker still waits")
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("bind %s after Close: %v (a UDP socket was left open)", addr, err)
	}
	_ = c.Close()
}
