//go:build linux

package server

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatch is how many datagrams one recvmmsg or sendmmsg call moves.
const udpBatch = 64

// mmsgWorker serves one UDP socket with recvmmsg and sendmmsg. Everything
// a packet needs is allocated once here: buffers, message headers, source
// addresses, the response under construction. golang.org/x/net's
// ReadBatch would allocate a net.UDPAddr per datagram; these raw calls
// allocate nothing.
//
// Both calls are made as raw system calls, which keep the worker's P
// (the runtime's right to run Go code) for their duration. The socket is
// non-blocking, so neither call waits; but a sendmmsg of a full batch runs
// the whole loopback or device path for every datagram and can take 100
// µs. Made as ordinary system calls, the runtime's monitor takes the P
// away from such a long call and hands it to another thread, which finds
// nothing to do and sleeps, and the worker, back from the kernel, has to
// wait for a P and is run by yet another thread: tens of thousands of
// thread switches a second under load, a third of the CPU time of a
// request on one core. Waiting for datagrams still goes through the
// runtime's poller, as for any socket.
type mmsgWorker struct {
	s    *Server
	conn *net.UDPConn
	raw  syscall.RawConn

	rhdr  [udpBatch]unix.Mmsghdr
	riov  [udpBatch]unix.Iovec
	rname [udpBatch]unix.RawSockaddrInet6
	rbuf  [udpBatch][udpBufferSize]byte

	whdr [udpBatch]unix.Mmsghdr
	wiov [udpBatch]unix.Iovec
	wbuf [udpBatch][responseBufferSize]byte

	sc    *scratch
	tally tally

	// State of the call in progress, read by the bound functions below,
	// which are created once so that each call allocates no closure.
	n, nw   int
	errno   syscall.Errno
	recvFn  func(fd uintptr) bool
	sendFn  func(fd uintptr) bool
	pending []unix.Mmsghdr

	// yield: other UDP workers of this server may be waiting for this
	// worker's P (more sockets than the CPUs the process may use), so
	// the worker gives it up after each batch rather than keep it until
	// the runtime preempts it 10 ms later.
	yield bool
}

func (s *Server) serveUDP(conn *net.UDPConn, shared bool) {
	defer s.wg.Done()
	raw, err := conn.SyscallConn()
	if err != nil {
		s.log.Errorf("udp %s: %v", conn.LocalAddr(), err)

		return
	}
	w := &mmsgWorker{s: s, conn: conn, raw: raw, sc: newScratch(), yield: shared}
	w.recvFn = w.recv
	w.sendFn = w.send
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

func (w *mmsgWorker) recv(fd uintptr) bool {
	for i := range udpBatch {
		w.riov[i].SetLen(udpBufferSize)
		w.rhdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		w.rhdr[i].Hdr.Flags = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.rhdr[0])), udpBatch, 0, 0, 0)
	if e == unix.EAGAIN {
		return false // wait until readable
	}
	w.n, w.errno = int(n), e

	return true
}

func (w *mmsgWorker) send(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.pending[0])), uintptr(len(w.pending)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false // wait until writable
	}
	w.nw, w.errno = int(n), e

	return true
}

func (w *mmsgWorker) loop() {
	s := w.s
	for {
		w.errno = 0
		if err := w.raw.Read(w.recvFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warnf("read udp %s: %v", w.conn.LocalAddr(), err)

			continue
		}
		if w.errno != 0 {
			if w.errno != unix.EINTR {
				s.log.Warnf("read udp %s: %v", w.conn.LocalAddr(), w.errno)
			}

			continue
		}
		out := 0
		var now int64
		if s.limit != nil {
			now = s.limit.now()
		}
		for i := range w.n {
			src, ok := sockaddrToAddrPort(&w.rname[i], w.rhdr[i].Hdr.Namelen)
			n := int(w.rhdr[i].Len)
			if !ok {
				continue
			}
			if w.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				// Longer than any STUN message we take over UDP; the
				// length check would catch it, say so plainly.
				n = len(w.rbuf[i])
			}
			payload, client, pr := s.proxy.unwrapDatagram(w.rbuf[i][:n], src)
			if !s.admitProxied(transportUDP, &w.tally, src, client, pr, n) {
				continue
			}
			resp, _ := s.serve(transportUDP, w.sc, &w.tally, w.wbuf[out][:], payload, n, client, now)
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
		w.pending = batch
		w.errno = 0
		if err := w.raw.Write(w.sendFn); err != nil {
			return // closed
		}
		if w.errno != 0 {
			if w.s.debug {
				w.s.log.Debugf("write udp: %v", w.errno)
			}
			batch = batch[1:]

			continue
		}
		for i := range w.nw {
			w.tally.out += int(batch[i].Len)
		}
		batch = batch[w.nw:]
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
