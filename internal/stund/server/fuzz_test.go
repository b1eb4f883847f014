package server

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/stund/stund/internal/wire"
)

// FuzzHandle feeds arbitrary datagrams to the request path. Whatever comes
// in, the server must not panic, and any answer must be a well-formed
// STUN response to that very request, small, with nothing left over from
// earlier messages.
func FuzzHandle(f *testing.F) {
	f.Add(build(f, stun.BindingRequest, stun.Fingerprint))
	f.Add(mustHex(f, rfc5769Request))
	f.Add(mustHex(f, rfc5769LongTerm))
	h := handler{software: []byte("stund"), rfc3489: true}
	shared := newScratch()
	src4 := netip.MustParseAddrPort("203.0.113.10:40000")
	src6 := netip.MustParseAddrPort("[2001:db8::7]:1")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, src := range []netip.AddrPort{src4, src6} {
			in := bytes.Clone(b)
			resp, res := h.handle(shared, in, src)
			if !bytes.Equal(in, b) {
				t.Fatal("handle modified its input")
			}
			if resp == nil {
				if res.outcome != outcomeDiscard {
					t.Fatalf("no response but outcome %d", res.outcome)
				}

				continue
			}
			fresh, _ := h.handle(newScratch(), bytes.Clone(b), src)
			if !bytes.Equal(resp, fresh) {
				t.Fatalf("response depends on earlier messages:\n%x\n%x", resp, fresh)
			}
			if len(resp) >= 548 {
				t.Fatalf("response of %d bytes", len(resp))
			}
			if !bytes.Equal(resp[4:20], b[4:20]) {
				t.Fatal("transaction ID not echoed")
			}
			if binary.BigEndian.Uint32(b[4:8]) != wire.MagicCookie {
				continue // a classic RFC 3489 answer
			}
			m := &stun.Message{Raw: bytes.Clone(resp)}
			if err := m.Decode(); err != nil {
				t.Fatalf("response does not decode: %v", err)
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Fatalf("response fingerprint: %v", err)
			}
		}
	})
}

// pipeStream is an in-memory stream for serveStream.
type pipeStream struct {
	r io.Reader
	w bytes.Buffer
}

func (p *pipeStream) Read(b []byte) (int, error)       { return p.r.Read(b) }
func (p *pipeStream) Write(b []byte) (int, error)      { return p.w.Write(b) }
func (p *pipeStream) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeStream) SetWriteDeadline(time.Time) error { return nil }

// FuzzTCPStream feeds an arbitrary byte stream to the TCP path, read in
// small pieces. The server must not panic or hang, and what it writes back
// must be a sequence of whole STUN responses.
func FuzzTCPStream(f *testing.F) {
	a := build(f, stun.BindingRequest)
	b := build(f, stun.BindingRequest, stun.Fingerprint)
	f.Add(append(bytes.Clone(a), b...), uint8(3))
	f.Add(mustHex(f, rfc5769Request), uint8(1))
	s, err := New(Config{Software: "stund", MaxMessageSize: 600})
	if err != nil {
		f.Fatal(err)
	}
	peer := netip.MustParseAddrPort("[2001:db8::7]:1")
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		p := &pipeStream{r: &chunkReader{data: data, n: int(chunk)%64 + 1}}
		s.serveStream(p, peer)
		out := p.w.Bytes()
		for len(out) > 0 {
			if len(out) < 20 {
				t.Fatalf("trailing %d bytes", len(out))
			}
			n := 20 + int(binary.BigEndian.Uint16(out[2:4]))
			if n > len(out) {
				t.Fatalf("response of %d bytes cut at %d", n, len(out))
			}
			if binary.BigEndian.Uint32(out[4:8]) == wire.MagicCookie {
				m := &stun.Message{Raw: bytes.Clone(out[:n])}
				if err := m.Decode(); err != nil {
					t.Fatalf("response does not decode: %v", err)
				}
			}
			out = out[n:]
		}
	})
}

// chunkReader returns data n bytes at a time: TCP segments of any size.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.n)], c.data)
	c.data = c.data[n:]

	return n, nil
}
