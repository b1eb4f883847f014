package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/stund/stund/internal/wire"
)

// tcpReadSize is the read buffer of a TCP connection: room for a few
// hundred responses.
const tcpReadSize = 64 << 10

type tcpWorker struct {
	*worker
	conn *net.TCPConn
}

func dialTCP(ctx context.Context, r *runner, salt uint32, nslots int) (*tcpWorker, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.target.String())
	if err != nil {
		return nil, fmt.Errorf("tcp connection to %s: %w", r.target, err)
	}
	conn := c.(*net.TCPConn)
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	w := &tcpWorker{worker: newWorker(r, salt, nslots, local, r.check), conn: conn}
	w.flushFn = func(n int) {
		if _, err := conn.Write(w.sendBuf[:n*w.size]); err != nil {
			w.c.sendErrors.Add(uint64(n))
		}
	}

	return w, nil
}

func (w *tcpWorker) close() error { return w.conn.Close() }

// receive reads responses back to back from the stream until the worker
// is done; in a closed loop it also sends, like the UDP worker.
func (w *tcpWorker) receive(closed bool) error {
	r := w.run
	now := r.now()
	deadline := w.begin(closed, now, w.conn.SetReadDeadline)
	buf := make([]byte, tcpReadSize)
	have := 0
	for {
		n, err := w.conn.Read(buf[have:])
		now = r.now()
		have += n
		sending := closed && !r.stopping.Load()
		off := 0
		for have-off >= wire.HeaderSize {
			b := buf[off:have]
			// A length that is not a multiple of 4 still frames the
			// message, which is then counted malformed.
			h, herr := wire.ParseHeader(b)
			if errors.Is(herr, wire.ErrNotSTUN) || h.Classic() {
				// The stream is out of step; nothing after this can be
				// trusted. The requests in flight will count as lost.
				w.c.invalid[ReasonMalformed].Add(1)

				return fmt.Errorf("tcp %s: not a STUN message in the stream: closing the connection", w.local)
			}
			size := h.Size()
			if size > len(buf) {
				w.c.invalid[ReasonMalformed].Add(1)

				return fmt.Errorf("tcp %s: a %d-byte response does not fit the %d-byte buffer: closing the connection", w.local, size, len(buf))
			}
			if size > len(b) {
				break
			}
			if idx := w.handle(b[:size], now); idx >= 0 && sending {
				w.queue(uint32(idx), now)
			}
			off += size
		}
		have = copy(buf, buf[off:have])
		if closed {
			w.flush()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if w.done(now) {
				return nil
			}

			return fmt.Errorf("tcp %s: %w", w.local, err)
		}
		var done bool
		if deadline, done = w.tick(closed, sending, err != nil, now, deadline, w.conn.SetReadDeadline); done {
			return nil
		}
	}
}
