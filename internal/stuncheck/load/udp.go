package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
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
		if err != nil {
			var errno syscall.Errno
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
			case errors.As(err, &errno):
				// ICMP errors (port unreachable) surface here; the
				// requests they concern will count as lost.
			default:
				return fmt.Errorf("receive on %s: %w", w.local, err)
			}
		}
		var done bool
		if deadline, done = w.tick(closed, sending, err != nil, now, deadline, w.conn.SetReadDeadline); done {
			return nil
		}
	}
}
