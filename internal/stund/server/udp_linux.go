//go:build linux

package server

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
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
}

// responseBufferSize holds any response: they stay under 548 bytes.
const responseBufferSize = 576

func (s *Server) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	raw, err := conn.SyscallConn()
	if err != nil {
		s.log.Errorf("udp %s: %v", conn.LocalAddr(), err)

		return
	}
	w := &mmsgWorker{s: s, conn: conn, raw: raw, sc: newScratch()}
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
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&w.rhdr[0])), udpBatch, 0, 0, 0)
	if e == unix.EAGAIN {
		return false // wait until readable
	}
	w.n, w.errno = int(n), e

	return true
}

func (w *mmsgWorker) send(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.pending[0])), uintptr(len(w.pending)), 0, 0, 0)
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
			if pr != proxyNone {
				w.tally.proxy[pr]++
				if s.debug {
					s.logProxy("udp", src, client, pr)
				}
				if pr.refused() {
					w.tally.in += n
					continue
				}
			}
			w.sc.out.Raw = w.wbuf[out][:0]
			resp, res := s.h.handle(w.sc, payload, client)
			if resp != nil && s.limit != nil && s.limited(client, now, &res) {
				resp = nil
			}
			class := s.observeRequest(client.Addr(), res)
			fam := familyOf(client.Addr())
			w.tally.add(fam, class, res, n)
			if s.debug {
				s.logRequest("udp", client.String(), class, res)
			}
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
