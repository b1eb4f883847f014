package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

// socketBuffer is the receive and send buffer asked for each UDP socket,
// so that a window of responses survives a scheduling delay.
const socketBuffer = 4 << 20

type udpWorker struct {
	*worker
	conn *net.UDPConn
	io   *udpIO
}

func dialUDP(ctx context.Context, r *runner, salt uint32, nslots int) (*udpWorker, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", r.target.String())
	if err != nil {
		return nil, fmt.Errorf("udp socket to %s: %w", r.target, err)
	}
	conn := c.(*net.UDPConn)
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	w := &udpWorker{worker: newWorker(r, salt, nslots, local, r.check), conn: conn}
	if w.io, err = newUDPIO(conn, r.cfg.batch, w.sendBuf, w.size, r.cfg.gso); err != nil {
		_ = conn.Close()

		return nil, err
	}
	w.flushFn = func(n int) {
		if failed := w.io.send(n); failed > 0 {
			w.c.sendErrors.Add(uint64(failed))
		}
	}

	return w, nil
}

func (w *udpWorker) close() error { return w.conn.Close() }

// receive runs the receive loop until the worker is done. In a closed loop
// it also sends: the first window, then one request per answer.
func (w *udpWorker) receive(closed bool) error {
	r := w.run
	now := r.now()
	deadline := w.begin(closed, now, w.conn.SetReadDeadline)
	for {
		n, err := w.io.recv()
		now = r.now()
		sending := closed && !r.stopping.Load()
		w.deliver(n, now, closed, sending)
		if err := w.recvError(err); err != nil {
			return err
		}
		var done bool
		if deadline, done = w.tick(closed, sending, err != nil, now, deadline, w.conn.SetReadDeadline); done {
			return nil
		}
	}
}

// deliver handles the n datagrams just received at now: each answer
// queues the next request while sending, and a closed loop then sends
// what it queued.
func (w *udpWorker) deliver(n int, now int64, closed, sending bool) {
	for i := range n {
		b := w.io.msg(i)
		if b == nil {
			w.c.invalid[ReasonMalformed].Add(1)

			continue
		}
		if idx := w.handle(b, now); idx >= 0 && sending {
			w.queue(uint32(idx), now)
		}
	}
	if closed {
		w.flush()
	}
}

// recvError returns the receive error that ends the worker, or nil for
// none, a deadline, or a socket error such as ICMP port unreachable (the
// requests it concerns will count as lost).
func (w *udpWorker) recvError(err error) error {
	var errno syscall.Errno
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &errno):
		return nil
	}

	return fmt.Errorf("receive on %s: %w", w.local, err)
}

// spin runs the closed loops of all ws from one goroutine locked to its
// thread: it polls the sockets in turn without ever waiting, handles what
// each has received and sends the requests that queued, and sweeps each
// worker every sweepEvery by the clock, until every worker is done. A
// server answering one datagram at a time then never costs the generator
// a wake-up per answer. errs[i] gets the error that ended ws[i].
func (r *runner) spin(ws []*udpWorker, errs []error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	now := r.now()
	deadlines := make([]int64, len(ws))
	finished := make([]bool, len(ws))
	for i, w := range ws {
		deadlines[i] = w.begin(true, now, noDeadline)
	}
	for left := len(ws); left > 0; {
		for i, w := range ws {
			if finished[i] {
				continue
			}
			n, err := w.io.poll()
			now = r.now()
			sending := !r.stopping.Load()
			w.deliver(n, now, true, sending)
			done := false
			if errs[i] = w.recvError(err); errs[i] != nil {
				done = true
			} else {
				deadlines[i], done = w.tick(true, sending, false, now, deadlines[i], noDeadline)
			}
			if done {
				finished[i] = true
				left--
			}
		}
	}
}

// noDeadline stands for a connection's SetReadDeadline where nothing
// waits: the spinning loop checks the clock instead.
func noDeadline(time.Time) error { return nil }
