package server

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// parker keeps the idle TCP connections of one listener without a
// goroutine each: a goroutine waiting to read costs a 2 KiB stack at the
// least, more than the rest of an idle connection together. Parked
// connections sit in an epoll set of their own; when bytes arrive (or the
// peer closes) a goroutine is started to serve them again, and when one
// completes no message within the idle timeout the parker closes it.
//
// A parked connection belongs to the parker alone: it leaves the parker
// either served again (taken out of the set, then handed to a new
// goroutine) or ended (expired, or the listener closed), never both.
type parker struct {
	s    *Server
	epfd int
	wake int // an eventfd that interrupts epoll_wait

	mu     sync.Mutex
	closed bool
	nextID uint32
	conns  map[uint32]*tcpConn
	// oldest and newest are the ends of the parked connections in the
	// order they were parked: with one idle timeout for all, that is the
	// order of their deadlines.
	oldest, newest *tcpConn
}

// parkLink is what a parked connection carries for its parker.
type parkLink struct {
	id         uint32
	deadline   time.Time
	prev, next *tcpConn
	// inSet: the connection's descriptor is in the epoll set (disarmed
	// since it was last woken, one-shot), so parking it again re-arms it.
	inSet bool
}

// wakeID is the epoll event data of the wake eventfd; connections get
// ids from 1.
const wakeID = 0

// newParker starts a parker for s, or returns nil when the system will
// not give it an epoll set: its connections then wait on goroutines.
func newParker(s *Server) *parker {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		s.log.Warnf("idle TCP connections will wait on goroutines: epoll: %v", err)

		return nil
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID})
	}
	if err != nil {
		_ = unix.Close(epfd)
		if wake >= 0 {
			_ = unix.Close(wake)
		}
		s.log.Warnf("idle TCP connections will wait on goroutines: eventfd: %v", err)

		return nil
	}
	p := &parker{s: s, epfd: epfd, wake: wake, conns: make(map[uint32]*tcpConn)}
	s.wg.Add(1)
	go p.run()

	return p
}

// park hands tc, idle with nothing buffered, to the parker until bytes
// arrive or the idle timeout passes. It reports false when it cannot (no
// parker, or closed): the caller keeps serving tc.
func (p *parker) park(tc *tcpConn) bool {
	if p == nil {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.nextID++
	for p.nextID == wakeID || p.conns[p.nextID] != nil {
		p.nextID++
	}
	id := p.nextID
	// Level-triggered and one-shot: bytes already there report at once,
	// and a connection is handed back once.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(id)} //nolint:gosec // an id, carried as is
	op := unix.EPOLL_CTL_ADD
	if tc.park.inSet {
		op = unix.EPOLL_CTL_MOD
	}
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	}); err != nil || cerr != nil {
		return false
	}
	// The loop needs no waking: it waits at most an idle timeout, and
	// this deadline is later than any it waits for.
	tc.park = parkLink{id: id, deadline: time.Now().Add(p.s.cfg.TCPIdleTimeout), prev: p.newest, inSet: true}
	p.conns[id] = tc
	if p.newest != nil {
		p.newest.park.next = tc
	} else {
		p.oldest = tc
	}
	p.newest = tc

	return true
}

// unlinkLocked takes tc out of the parked set.
func (p *parker) unlinkLocked(tc *tcpConn) {
	delete(p.conns, tc.park.id)
	if tc.park.prev != nil {
		tc.park.prev.park.next = tc.park.next
	} else {
		p.oldest = tc.park.next
	}
	if tc.park.next != nil {
		tc.park.next.park.prev = tc.park.prev
	} else {
		p.newest = tc.park.prev
	}
	tc.park = parkLink{inSet: tc.park.inSet}
}

// signal interrupts the loop's epoll_wait.
func (p *parker) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wake, one[:])
}

// close ends every parked connection and stops the loop; later parks
// are refused. The listener's accept loop calls it when the listener
// closes.
func (p *parker) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()

		return
	}
	p.closed = true
	var ended []*tcpConn
	for tc := p.oldest; tc != nil; tc = tc.park.next {
		ended = append(ended, tc)
	}
	for _, tc := range ended {
		p.unlinkLocked(tc)
	}
	p.signal()
	p.mu.Unlock()
	for _, tc := range ended {
		p.s.endConn(tc)
	}
}

// run waits for parked connections to become readable or to expire.
func (p *parker) run() {
	defer p.s.wg.Done()
	defer func() {
		_ = unix.Close(p.epfd)
		_ = unix.Close(p.wake)
	}()
	events := make([]unix.EpollEvent, 128)
	var woken, expired []*tcpConn
	for {
		n, err := unix.EpollWait(p.epfd, events, p.timeout())
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.s.log.Errorf("idle TCP connections: epoll_wait: %v", err)
			p.close()

			return
		}
		woken, expired = woken[:0], expired[:0]
		now := time.Now()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()

			return
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == wakeID {
				var b [8]byte
				_, _ = unix.Read(p.wake, b[:])

				continue
			}
			if tc := p.conns[uint32(ev.Fd)]; tc != nil { //nolint:gosec // the id park gave it
				p.unlinkLocked(tc)
				woken = append(woken, tc)
			}
		}
		for p.oldest != nil && !now.Before(p.oldest.park.deadline) {
			tc := p.oldest
			p.unlinkLocked(tc)
			expired = append(expired, tc)
		}
		p.mu.Unlock()
		for _, tc := range woken {
			tc.st.ready = true
			go p.s.serveConn(tc)
		}
		for _, tc := range expired {
			p.s.endConn(tc) // closing it leaves the epoll set too
		}
		clear(woken)
		clear(expired)
	}
}

// timeout is how long, in milliseconds, the loop may wait: until the
// oldest parked connection expires or, when none is parked, one idle
// timeout (no connection parked later can expire sooner).
func (p *parker) timeout() int {
	p.mu.Lock()
	d := p.s.cfg.TCPIdleTimeout
	if p.oldest != nil {
		d = time.Until(p.oldest.park.deadline)
	}
	p.mu.Unlock()
	if d <= 0 {
		return 0
	}

	return int(min((d+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
}
