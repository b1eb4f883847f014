//go:build linux

package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one recvmmsg or sendmmsg call moves.
const udpBatch = 64

// udpSocket is one UDP socket of a listen address, taken out of the Go
// runtime's poller: its worker owns the descriptor and waits for datagrams
// in the kernel. Left in the poller, the socket would carry an epoll entry
// on its wait queue, and the kernel would run that entry's callback for
// every datagram received and for every datagram sent (each freed send
// buffer wakes writers): under load about a tenth of the CPU time of a
// response on one CPU, for wake-ups that nothing waits for.
type udpSocket struct {
	fd   int
	addr string // for log lines
	// woken is set by wake once the socket is shut down: the worker may
	// then close it.
	woken atomic.Bool
}

// openUDPSocket takes conn's socket out of the runtime's poller: it
// duplicates the descriptor, closes conn (the runtime forgets its copy)
// and makes the socket blocking.
func openUDPSocket(conn *net.UDPConn) (*udpSocket, error) {
	u := &udpSocket{fd: -1, addr: conn.LocalAddr().String()}
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", u.addr, err)
	}
	var derr error
	if err := raw.Control(func(fd uintptr) { u.fd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		derr = err
	}
	if cerr := conn.Close(); derr == nil && cerr != nil {
		derr = cerr
	}
	if derr == nil {
		derr = unix.SetNonblock(u.fd, false)
	}
	if derr != nil {
		u.close()

		return nil, fmt.Errorf("udp %s: take the socket from the runtime's poller: %w", u.addr, derr)
	}

	return u, nil
}

// wake ends the worker's wait: shutting down the receive side of a UDP
// socket makes every receive on it return at once, with empty datagrams
// (the call reports ENOTCONN for an unconnected socket, and does it all
// the same). The worker then sees woken and closes the socket; woken is
// set only after the shutdown, so the descriptor is never shut down after
// it is closed.
func (u *udpSocket) wake() {
	_ = unix.Shutdown(u.fd, unix.SHUT_RD)
	u.woken.Store(true)
}

// close closes the socket of a worker that never started.
func (u *udpSocket) close() {
	if u.fd >= 0 {
		_ = unix.Close(u.fd)
		u.fd = -1
	}
}

// mmsgWorker serves one UDP socket with recvmmsg and sendmmsg. Everything
// a packet needs is allocated once here: buffers, message headers, source
// addresses, the response under construction. golang.org/x/net's
// ReadBatch would allocate a net.UDPAddr per datagram; these raw calls
// allocate nothing.
//
// Each call is first made as a raw, non-blocking system call, which keeps
// the worker's P (the runtime's right to run Go code) for its duration:
// a sendmmsg of a full batch runs the loopback or device path for every
// datagram and takes about 100 µs, and made as an ordinary system call
// the runtime's monitor would take the P away during it and hand it to
// another thread, which finds nothing to do and sleeps, while the worker,
// back from the kernel, waits for a P and goes on in yet another thread:
// tens of thousands of thread switches a second under load, a third of
// the CPU time of a response on one CPU. Only when there is nothing to
// receive (or no room to send) does the worker make the blocking call as
// an ordinary system call, which lets the runtime run other goroutines
// meanwhile.
type mmsgWorker struct {
	s    *Server
	sock *udpSocket

	rhdr  [udpBatch]unix.Mmsghdr
	riov  [udpBatch]unix.Iovec
	rname [udpBatch]unix.RawSockaddrInet6
	rbuf  [udpBatch][udpBufferSize]byte

	whdr [udpBatch]unix.Mmsghdr
	wiov [udpBatch]unix.Iovec
	wbuf [udpBatch][responseBufferSize]byte

	sc    *scratch
	tally tally

	// yield: other UDP workers of this server may be waiting for this
	// worker's P (more sockets than the CPUs the process may use), so
	// the worker gives it up after each batch rather than keep it until
	// the runtime preempts it 10 ms later.
	yield bool
}

// serveUDP answers the datagrams of one UDP socket until wake, then
// closes it.
func (s *Server) serveUDP(sock *udpSocket, shared bool) {
	defer s.wg.Done()
	defer sock.close()
	w := &mmsgWorker{s: s, sock: sock, sc: newScratch(), yield: shared}
	for i := range udpBatch {
		w.riov[i].Base = &w.rbuf[i][0]
		w.rhdr[i].Hdr.Iov = &w.riov[i]
		w.rhdr[i].Hdr.SetIovlen(1)
		w.rhdr[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.rname[i]))
		w.whdr[i].Hdr.Iov = &w.wiov[i]
		w.whdr[i].Hdr.SetIovlen(1)
	}
	w.loop()
}

// recv receives up to a batch, waiting for the first datagram, and
// returns how many arrived.
func (w *mmsgWorker) recv() (int, syscall.Errno) {
	for i := range udpBatch {
		w.riov[i].SetLen(udpBufferSize)
		w.rhdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		w.rhdr[i].Hdr.Flags = 0
	}
	fd, hdr := uintptr(w.sock.fd), uintptr(unsafe.Pointer(&w.rhdr[0]))
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, hdr, udpBatch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, hdr, udpBatch, unix.MSG_WAITFORONE, 0, 0)
	}

	return int(n), e
}

// send sends the prepared responses in batch, waiting for room in the
// socket's send buffer if it is full, and returns how many left.
func (w *mmsgWorker) send(batch []unix.Mmsghdr) (int, syscall.Errno) {
	fd, hdr := uintptr(w.sock.fd), uintptr(unsafe.Pointer(&batch[0]))
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, hdr, uintptr(len(batch)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		n, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, hdr, uintptr(len(batch)), 0, 0, 0)
	}

	return int(n), e
}

func (w *mmsgWorker) loop() {
	s := w.s
	for {
		n, errno := w.recv()
		switch {
		case w.sock.woken.Load():
			return
		case errno == unix.EINTR:
			continue
		case errno == unix.EBADF || errno == unix.ENOTSOCK:
			s.log.Errorf("read udp %s: %v", w.sock.addr, errno)

			return
		case errno != 0:
			s.log.Warnf("read udp %s: %v", w.sock.addr, errno)

			continue
		}
		out := 0
		var now int64
		if s.limit != nil {
			now = s.limit.now()
		}
		for i := range n {
			src, ok := sockaddrToAddrPort(&w.rname[i], w.rhdr[i].Hdr.Namelen)
			size := int(w.rhdr[i].Len)
			if !ok {
				continue
			}
			if w.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				// Longer than any STUN message we take over UDP; the
				// length check would catch it, say so plainly.
				size = len(w.rbuf[i])
			}
			payload, client, pr := s.proxy.unwrapDatagram(w.rbuf[i][:size], src)
			if !s.admitProxied(transportUDP, &w.tally, src, client, pr, size) {
				continue
			}
			resp, _ := s.serve(transportUDP, w.sc, &w.tally, w.wbuf[out][:], payload, size, client, now)
			if resp == nil {
				continue
			}
			w.wiov[out].Base = &resp[0]
			w.wiov[out].SetLen(len(resp))
			w.whdr[out].Hdr.Name = w.rhdr[i].Hdr.Name
			w.whdr[out].Hdr.Namelen = w.rhdr[i].Hdr.Namelen
			out++
		}
		w.flushSends(out)
		s.metrics.flush(transportUDP, &w.tally)
		if w.yield {
			runtime.Gosched()
		}
	}
}

// flushSends sends the first n prepared responses, skipping one that the
// kernel refuses (a firewall, an unreachable destination) so that it does
// not hold back the rest.
func (w *mmsgWorker) flushSends(n int) {
	batch := w.whdr[:n]
	for len(batch) > 0 {
		sent, errno := w.send(batch)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			if w.s.debug {
				w.s.log.Debugf("write udp: %v", errno)
			}
			batch = batch[1:]

			continue
		}
		for i := range sent {
			w.tally.out += int(batch[i].Len)
		}
		batch = batch[max(sent, 1):] // a call that sent nothing and said nothing skips one
	}
}

// sockaddrToAddrPort reads a source address the kernel wrote.
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6, n uint32) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])

		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])

		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}

	return netip.AddrPort{}, false
}
