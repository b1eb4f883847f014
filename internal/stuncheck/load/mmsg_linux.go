package load

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvSize is the room for one received datagram; a Binding response is
// about 50 to 100 bytes, anything that does not fit is counted malformed.
const recvSize = 1536

// udpIO batches datagrams on a connected UDP socket with recvmmsg and
// sendmmsg. The message headers are built once and point at fixed
// buffers, so a call allocates nothing. (golang.org/x/net/ipv4's ReadBatch
// would allocate a net.UDPAddr for every datagram it receives.)
type udpIO struct {
	rc   syscall.RawConn
	rhdr []unix.Mmsghdr
	riov []unix.Iovec
	rbuf []byte
	shdr []unix.Mmsghdr
	siov []unix.Iovec

	// Arguments and results of the calls in progress: receiving and
	// sending may run at once in different goroutines (open loop).
	rn, off, cnt, sn int
	rerrno, serrno   syscall.Errno
	recvF            func(uintptr) bool
	pollF            func(uintptr) bool
	sendF            func(uintptr) bool

	// size is the length of one request in sendBuf.
	size int
	// gso: the socket has UDP_SEGMENT set to size, so one write of
	// several requests back to back leaves as that many datagrams. The
	// server still receives separate datagrams (the kernel splits them
	// before they reach its socket), but the generator pays for one trip
	// through the stack per batch instead of one per request.
	gso     bool
	sendBuf []byte
	writeF  func(uintptr) bool
}

// maxGSOSegments is the most datagrams one UDP GSO write may carry
// (UDP_MAX_SEGMENTS in older kernels).
const maxGSOSegments = 64

// newUDPIO prepares batch receive buffers and send headers pointing at the
// requests in sendBuf (size bytes each).
func newUDPIO(conn *net.UDPConn, batch int, sendBuf []byte, size int, gso bool) (*udpIO, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	u := &udpIO{
		rc:      rc,
		sendBuf: sendBuf,
		size:    size,
		rhdr:    make([]unix.Mmsghdr, batch),
		riov:    make([]unix.Iovec, batch),
		rbuf:    make([]byte, batch*recvSize),
		shdr:    make([]unix.Mmsghdr, batch),
		siov:    make([]unix.Iovec, batch),
	}
	for i := range batch {
		u.riov[i].Base = &u.rbuf[i*recvSize]
		u.riov[i].SetLen(recvSize)
		u.rhdr[i].Hdr.Iov = &u.riov[i]
		u.rhdr[i].Hdr.SetIovlen(1)
		u.siov[i].Base = &sendBuf[i*size]
		u.siov[i].SetLen(size)
		u.shdr[i].Hdr.Iov = &u.siov[i]
		u.shdr[i].Hdr.SetIovlen(1)
	}
	u.recvF = u.recvmmsg
	u.pollF = u.recvmmsgNow
	u.sendF = u.sendmmsg
	u.writeF = u.write
	if gso {
		u.setGSO(size)
	}

	return u, nil
}

// setGSO sets UDP_SEGMENT (0 turns it off) and records whether it took.
func (u *udpIO) setGSO(size int) {
	var serr error
	err := u.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, size)
	})
	u.gso = size > 0 && err == nil && serr == nil
}

func (u *udpIO) write(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&u.sendBuf[u.off*u.size])),
			uintptr(u.cnt*u.size))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			u.sn, u.serrno = int(r)/u.size, 0
		default:
			u.sn, u.serrno = 0, e
		}

		return true
	}
}

func (u *udpIO) recvmmsg(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&u.rhdr[0])),
			uintptr(len(u.rhdr)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			u.rn, u.rerrno = int(r), 0
		default:
			u.rn, u.rerrno = 0, e
		}

		return true
	}
}

// recvmmsgNow is recvmmsg that never waits: an empty socket is 0
// datagrams.
func (u *udpIO) recvmmsgNow(fd uintptr) bool {
	if !u.recvmmsg(fd) {
		u.rn, u.rerrno = 0, 0
	}

	return true
}

func (u *udpIO) sendmmsg(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&u.shdr[u.off])),
			uintptr(u.cnt), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			u.sn, u.serrno = int(r), 0
		default:
			u.sn, u.serrno = 0, e
		}

		return true
	}
}

// recv waits for datagrams and returns how many arrived. A socket error
// (such as ICMP port unreachable) is returned as a syscall.Errno with n 0;
// a deadline as the net package's error.
func (u *udpIO) recv() (int, error) {
	if err := u.rc.Read(u.recvF); err != nil {
		return 0, err
	}
	if u.rerrno != 0 {
		return 0, u.rerrno
	}

	return u.rn, nil
}

// poll returns how many datagrams are waiting, 0 if none, without
// waiting; errors as recv.
func (u *udpIO) poll() (int, error) {
	if err := u.rc.Read(u.pollF); err != nil {
		return 0, err
	}
	if u.rerrno != 0 {
		return 0, u.rerrno
	}

	return u.rn, nil
}

// msg returns received datagram i, or nil if it was truncated.
func (u *udpIO) msg(i int) []byte {
	h := &u.rhdr[i]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil
	}
	h.Hdr.Flags = 0

	return u.rbuf[i*recvSize : i*recvSize+int(h.Len)]
}

// send sends the first n requests of the send buffer and returns how many
// the kernel refused (each refusal skips one datagram).
func (u *udpIO) send(n int) (failed int) {
	for off := 0; u.gso && off < n; {
		u.off, u.cnt = off, min(n-off, maxGSOSegments)
		if err := u.rc.Write(u.writeF); err != nil {
			return failed + n - off
		}
		switch u.serrno {
		case 0:
			off += u.cnt
		case unix.EIO, unix.EINVAL, unix.EOPNOTSUPP:
			// The path cannot segment (no checksum offload, say): send
			// this and every later batch one datagram at a time.
			u.setGSO(0)

			return failed + u.sendEach(off, n)
		default:
			failed += u.cnt
			off += u.cnt
		}
	}
	if u.gso {
		return failed
	}

	return u.sendEach(0, n)
}

// sendEach sends requests off to n of the send buffer with sendmmsg.
func (u *udpIO) sendEach(off, n int) (failed int) {
	for off < n {
		u.off, u.cnt = off, n-off
		if err := u.rc.Write(u.sendF); err != nil {
			return failed + n - off
		}
		if u.serrno != 0 {
			failed++
			off++

			continue
		}
		off += u.sn
	}

	return failed
}

// spinSupported: WithSpin works here.
const spinSupported = true
