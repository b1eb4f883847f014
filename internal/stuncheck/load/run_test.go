package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/internal/stuntest"
)

var (
	v4 = netip.MustParseAddr("127.0.0.1")
	v6 = netip.MustParseAddr("::1")
)

// short runs are enough: the tests check what is counted, never how fast.
const short = 200 * time.Millisecond

func startServer(t *testing.T) []netip.AddrPort {
	t.Helper()
	return servertest.Start(t, server.Config{Software: "stund"})
}

// balanced checks the accounting: every request sent is answered, lost or
// answered wrongly, exactly once.
func balanced(t *testing.T, r *Result) {
	t.Helper()
	answeredWrong := r.InvalidReasons[ReasonErrorResponse] + r.InvalidReasons[ReasonNoMappedAddress] + r.InvalidReasons[ReasonWrongMappedAddress]
	if r.Sent != r.Responses+r.Lost+answeredWrong {
		t.Errorf("sent %d != responses %d + lost %d + answered wrongly %d", r.Sent, r.Responses, r.Lost, answeredWrong)
	}
}

func TestRunStund(t *testing.T) {
	addrs := startServer(t)
	tests := []struct {
		name   string
		target netip.AddrPort
		opts   []Option
	}{
		{"udp4 closed", addrs[0], nil},
		{"udp6 closed", addrs[1], []Option{WithConnections(2), WithWindow(3)}},
		{"tcp4 closed", addrs[0], []Option{WithNetwork("tcp")}},
		{"tcp6 closed", addrs[1], []Option{WithNetwork("tcp"), WithConnections(3)}},
		{"udp4 open", addrs[0], []Option{WithRate(2000)}},
		{"tcp6 open", addrs[1], []Option{WithNetwork("tcp"), WithRate(2000), WithConnections(2)}},
		{"small batches", addrs[0], []Option{WithBatch(1), WithWindow(5)}},
		{"udp4 spin", addrs[0], []Option{WithSpin(true), WithConnections(3)}},
		{"udp6 spin, fingerprint", addrs[1], []Option{WithSpin(true), WithRequest(RequestFingerprint), WithBatch(4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A long loss timeout: on a loaded machine (CI runs packages
			// side by side) an answer can take a while; it is not lost.
			r, err := Run(context.Background(), tc.target, append([]Option{WithDuration(short), WithTimeout(5 * time.Second)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Responses == 0 || r.Invalid != 0 || r.MappedCheck != MappedLocal || len(r.Errors) != 0 {
				t.Errorf("responses %d, invalid %d (%v), check %s, errors %v: want some responses, none invalid, local check",
					r.Responses, r.Invalid, r.InvalidReasons, r.MappedCheck, r.Errors)
			}
			// A closed loop on loopback holds a few dozen requests at most:
			// nothing can be dropped. An open loop may lose some when
			// the machine is busy.
			if r.Rate == 0 && r.Lost != 0 {
				t.Errorf("closed loop lost %d of %d", r.Lost, r.Sent)
			}
			balanced(t, r)
			if r.RTT.P50 <= 0 || r.RTT.P50 > r.RTT.P99 || r.RTT.P99 > r.RTT.P999 || r.RTT.P999 > r.RTT.Max {
				t.Errorf("percentiles out of order: %+v", r.RTT)
			}
			if r.Verdict(0.5) != VerdictOK {
				t.Errorf("verdict %s", r.Verdict(0.5))
			}
			if want := slices.ContainsFunc(tc.opts, isSpin); r.Spin != want {
				t.Errorf("result says spin %v, want %v", r.Spin, want)
			}
		})
	}
}

// isSpin tells WithSpin(true) from the other options by what it sets.
func isSpin(o Option) bool {
	var c config
	o(&c)

	return c.spin
}

func TestRunMisbehaving(t *testing.T) {
	tests := []struct {
		name      string
		responder func() *stuntest.Responder
		opts      []Option
		reasons   map[Reason]bool // the reasons that must be counted, and no others
		verdict   Verdict
	}{
		{"wrong mapped address", func() *stuntest.Responder {
			return &stuntest.Responder{Mapped: func(netip.AddrPort) netip.AddrPort {
				return netip.MustParseAddrPort("192.0.2.1:1000")
			}}
		}, nil, map[Reason]bool{ReasonWrongMappedAddress: true}, VerdictInvalid},
		{"wrong mapped port, stable check", func() *stuntest.Responder {
			return &stuntest.Responder{Mapped: func(a netip.AddrPort) netip.AddrPort {
				return netip.AddrPortFrom(a.Addr(), uint16(time.Now().UnixNano()))
			}}
		}, []Option{WithMappedCheck(MappedStable)}, map[Reason]bool{ReasonWrongMappedAddress: true}, VerdictInvalid},
		{"mapped address not checked", func() *stuntest.Responder {
			return &stuntest.Responder{Mapped: func(netip.AddrPort) netip.AddrPort {
				return netip.MustParseAddrPort("192.0.2.1:1000")
			}}
		}, []Option{WithMappedCheck(MappedOff)}, nil, VerdictOK},
		{"foreign transaction and bad fingerprint", func() *stuntest.Responder { return &stuntest.Responder{Garbage: true} }, nil,
			map[Reason]bool{ReasonUnknownTransaction: true, ReasonBadFingerprint: true}, VerdictInvalid},
		{"error responses", func() *stuntest.Responder { return &stuntest.Responder{ErrorCode: 400} }, nil, map[Reason]bool{ReasonErrorResponse: true}, VerdictInvalid},
		{"MAPPED-ADDRESS only", func() *stuntest.Responder { return &stuntest.Responder{UseMappedAddress: true} }, nil, map[Reason]bool{ReasonNoMappedAddress: true}, VerdictInvalid},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tc.name+" "+network, func(t *testing.T) {
				t.Parallel()
				addr := tc.responder().Start(t, v4)
				// The responder reads one request per TCP read, so over TCP
				// only one may be in flight.
				window := 2
				if network == "tcp" {
					window = 1
				}
				opts := append([]Option{WithDuration(short), WithTimeout(5 * time.Second), WithNetwork(network), WithConnections(2), WithWindow(window)}, tc.opts...)
				r, err := Run(context.Background(), addr, opts...)
				if err != nil {
					t.Fatal(err)
				}
				for i, n := range r.InvalidReasons {
					if (n > 0) != tc.reasons[Reason(i)] {
						t.Errorf("%d %s responses, want them: %v", n, Reason(i), tc.reasons[Reason(i)])
					}
				}
				if r.Lost != 0 {
					t.Errorf("lost %d", r.Lost)
				}
				balanced(t, r)
				if v := r.Verdict(0.01); v != tc.verdict {
					t.Errorf("verdict %s, want %s", v, tc.verdict)
				}
			})
		}
	}
}

// TestRunLoss: requests the server ignores are lost, exactly those, and
// in a closed loop their window slots are reused, whether each socket
// waits for its answers or one thread spins over them. The timeout is
// long enough that no answer, however loaded the machine, comes after it
// (a 100 ms one made answers late under -race on two busy cores), and the
// run outlasts it, so the dropped requests' slots serve again.
func TestRunLoss(t *testing.T) {
	for _, spin := range []bool{false, true} {
		t.Run(fmt.Sprintf("spin %v", spin), func(t *testing.T) {
			t.Parallel()
			resp := &stuntest.Responder{Drop: 5}
			addr := resp.Start(t, v4)
			r, err := Run(context.Background(), addr, WithDuration(3*time.Second), WithTimeout(2*time.Second),
				WithConnections(1), WithWindow(8), WithSpin(spin))
			if err != nil {
				t.Fatal(err)
			}
			if r.Lost != 5 || r.Responses == 0 || r.Late != 0 {
				t.Errorf("lost %d, responses %d, late %d: want 5 lost and the rest answered", r.Lost, r.Responses, r.Late)
			}
			balanced(t, r)
			if r.Verdict(0) != VerdictLoss || r.Verdict(1) != VerdictOK {
				t.Errorf("verdicts %s and %s, want loss with no loss allowed and ok with all allowed", r.Verdict(0), r.Verdict(1))
			}
		})
	}
}

func TestRunNoServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"udp", nil},
		{"tcp", []Option{WithNetwork("tcp")}},
		{"udp spin", []Option{WithSpin(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := stuntest.Silent(t, v4)
			r, err := Run(context.Background(), addr, append([]Option{WithDuration(100 * time.Millisecond),
				WithTimeout(50 * time.Millisecond), WithConnections(2), WithWindow(4)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if r.Responses != 0 || r.Sent == 0 || r.Lost != r.Sent {
				t.Errorf("responses %d, sent %d, lost %d: want everything lost", r.Responses, r.Sent, r.Lost)
			}
			if r.Verdict(1) != VerdictNoResponse {
				t.Errorf("verdict %s", r.Verdict(1))
			}
		})
	}
}

// TestRunGarbage: a server answering noise is counted malformed.
func TestRunGarbage(t *testing.T) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v4, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, src, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			buf[0] ^= 0x40 // not a STUN message any more
			_, _ = pc.WriteToUDPAddrPort(buf[:n], src)
		}
	}()
	r, err := Run(context.Background(), pc.LocalAddr().(*net.UDPAddr).AddrPort(), WithDuration(100*time.Millisecond),
		WithTimeout(50*time.Millisecond), WithConnections(1), WithWindow(2))
	if err != nil {
		t.Fatal(err)
	}
	if r.InvalidReasons[ReasonMalformed] == 0 || r.Invalid != r.InvalidReasons[ReasonMalformed] || r.Responses != 0 {
		t.Errorf("invalid %v, responses %d: want only malformed", r.InvalidReasons, r.Responses)
	}
	if r.Verdict(1) != VerdictInvalid {
		t.Errorf("verdict %s", r.Verdict(1))
	}
}

func TestRunCancel(t *testing.T) {
	addrs := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r, err := Run(ctx, addrs[0], WithDuration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration > time.Minute || r.Lost != 0 {
		t.Errorf("ran %s and lost %d after cancel", r.Duration, r.Lost)
	}
}

func TestRunConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target netip.AddrPort
		opts   []Option
		option string // the ConfigError's Option
	}{
		{"no port", netip.AddrPortFrom(v4, 0), nil, "target"},
		{"unspecified", netip.MustParseAddrPort("0.0.0.0:3478"), nil, "target"},
		{"network", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithNetwork("sctp")}, "network"},
		{"connections", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithConnections(0)}, "connections"},
		{"window", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithWindow(0)}, "window"},
		{"rate", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithRate(-1)}, "rate"},
		{"rate too high for timeout", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithRate(1e9), WithConnections(1), WithTimeout(time.Minute)}, "rate"},
		{"duration", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithDuration(0)}, "duration"},
		{"batch", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithBatch(5000)}, "batch"},
		{"mapped", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithMappedCheck(MappedOff + 1)}, "mapped"},
		{"request", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithRequest(RequestFingerprint + 1)}, "request"},
		{"spin over tcp", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithSpin(true), WithNetwork("tcp")}, "spin"},
		{"spin open loop", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithSpin(true), WithRate(1000)}, "spin"},
		{"progress", netip.MustParseAddrPort("127.0.0.1:3478"), []Option{WithProgress(0, func(Progress) {})}, "progress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.target, tc.opts...)
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || ce.Option != tc.option {
				t.Fatalf("error %#v, want a ConfigError for %s wrapping ErrConfig", err, tc.option)
			}
			// The message is the command's to print as it is, without
			// the sentinel's words in front.
			if strings.Contains(err.Error(), ErrConfig.Error()) {
				t.Errorf("message %q", err)
			}
		})
	}
	if _, err := ParseMappedCheck("nat"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseMappedCheck(nat): %v, want ErrConfig", err)
	}
	for _, s := range []string{"bare", "fingerprint"} {
		if q, err := ParseRequestShape(s); err != nil || q.String() != s {
			t.Errorf("ParseRequestShape(%s) = %s, %v", s, q, err)
		}
	}
	if _, err := ParseRequestShape("integrity"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseRequestShape(integrity): %v, want ErrConfig", err)
	}
}

func TestProgress(t *testing.T) {
	addrs := startServer(t)
	var last Progress
	calls := 0
	r, err := Run(context.Background(), addrs[0], WithDuration(short), WithProgress(20*time.Millisecond, func(p Progress) {
		calls++
		last = p
	}))
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last.Responses == 0 || last.Responses > r.Responses || last.Sent > r.Sent {
		t.Errorf("%d progress calls, last %+v, result %d responses", calls, last, r.Responses)
	}
}

// TestRunRequestShape: what reaches the server is the shape asked for, in
// every request: a raw listener checks each one's size, attributes and
// FINGERPRINT, and answers it.
func TestRunRequestShape(t *testing.T) {
	for _, tc := range []struct {
		shape RequestShape
		size  int
	}{
		{RequestBare, 20},
		{RequestFingerprint, 28},
	} {
		t.Run(tc.shape.String(), func(t *testing.T) {
			t.Parallel()
			pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v4, 0)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pc.Close() })
			var received, wrong atomic.Int64
			var firstWrong atomic.Value
			go func() {
				buf := make([]byte, 1500)
				for {
					n, src, err := pc.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					received.Add(1)
					m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
					err = m.Decode()
					if err == nil && (n != tc.size || m.Type != stun.BindingRequest) {
						err = errors.New("not a Binding request of the size wanted")
					}
					if err == nil && tc.shape == RequestBare && len(m.Attributes) != 0 {
						err = errors.New("attributes in a bare request")
					}
					if err == nil && tc.shape == RequestFingerprint {
						if len(m.Attributes) != 1 || m.Attributes[0].Type != stun.AttrFingerprint {
							err = errors.New("not FINGERPRINT alone")
						} else {
							err = stun.Fingerprint.Check(m)
						}
					}
					if err != nil {
						if wrong.Add(1) == 1 {
							firstWrong.Store(fmt.Sprintf("%x: %v", buf[:n], err))
						}

						continue
					}
					resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
						&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())})
					if err != nil {
						panic(err)
					}
					_, _ = pc.WriteToUDPAddrPort(resp.Raw, src)
				}
			}()
			r, err := Run(context.Background(), pc.LocalAddr().(*net.UDPAddr).AddrPort(), WithRequest(tc.shape),
				WithDuration(short), WithTimeout(5*time.Second), WithConnections(2), WithWindow(4))
			if err != nil {
				t.Fatal(err)
			}
			if n := wrong.Load(); n != 0 {
				t.Errorf("%d of %d requests not %s (%d bytes); the first: %s", n, received.Load(), tc.shape, tc.size, firstWrong.Load())
			}
			if received.Load() == 0 || r.Responses == 0 || r.Invalid != 0 || r.Lost != 0 || r.Request != tc.shape {
				t.Errorf("received %d, responses %d, invalid %d, lost %d, request %s: want answers, none invalid or lost",
					received.Load(), r.Responses, r.Invalid, r.Lost, r.Request)
			}
			balanced(t, r)
		})
	}
}
