package client_test

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stund/stund/internal/stuncheck/client"
	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/internal/stuntest"
)

var (
	v4 = netip.MustParseAddr("127.0.0.1")
	v6 = netip.MustParseAddr("::1")
)

func TestBindingCoturn(t *testing.T) {
	srv := stuntest.StartCoturn(t, []netip.Addr{v4, v6}, "--no-rfc5780")
	c := client.New(client.WithTimeout(3 * time.Second))
	for _, ip := range []netip.Addr{v4, v6} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+ip.String(), func(t *testing.T) {
				res, err := c.Binding(context.Background(), network, srv.Addr(ip))
				if err != nil {
					t.Fatal(err)
				}
				if res.Mapped != res.Local {
					t.Errorf("mapped %s, want the local address %s", res.Mapped, res.Local)
				}
				if res.Network != network || res.Server != srv.Addr(ip) || res.RTT <= 0 || res.Transmissions != 1 {
					t.Errorf("unexpected response %+v", res)
				}
			})
		}
	}
}

// shortXORMapped is an XOR-MAPPED-ADDRESS value with family IPv6 and a
// 4-byte address: what a lenient parser reads as [2010:a746::]:8467.
var shortXORMapped = []byte{0x00, 0x02, 0x00, 0x01, 0x20, 0x10, 0xa7, 0x46}

func TestBindingResponder(t *testing.T) {
	lb := netip.MustParseAddrPort("10.0.0.1:39807")
	tests := []struct {
		name      string
		resp      *stuntest.Responder
		network   string
		ip        netip.Addr
		opts      []client.Option
		want      netip.AddrPort // zero: the local address
		wantTx    int
		wantErr   error
		wantCode  int
		wantOther netip.AddrPort
	}{
		{name: "udp rewritten v4", resp: &stuntest.Responder{Mapped: func(netip.AddrPort) netip.AddrPort { return lb }}, network: "udp", ip: v4, want: lb, wantTx: 1},
		{name: "tcp rewritten v6", resp: &stuntest.Responder{Mapped: func(netip.AddrPort) netip.AddrPort { return lb }}, network: "tcp", ip: v6, want: lb, wantTx: 1},
		{
			name: "udp retransmits after drops", resp: &stuntest.Responder{Drop: 2}, network: "udp", ip: v4,
			opts: []client.Option{client.WithRTO(20 * time.Millisecond)}, wantTx: 3,
		},
		{name: "udp discards garbage", resp: &stuntest.Responder{Garbage: true}, network: "udp", ip: v4, wantTx: 1},
		{name: "tcp skips foreign transaction then rejects bad fingerprint", resp: &stuntest.Responder{Garbage: true}, network: "tcp", ip: v4, wantErr: client.ErrFingerprint},
		// Issue 13 item 14: family IPv6 with a 4-byte address. The
		// server's own answer ends the transaction at once, over UDP too.
		{name: "udp short xor-mapped-address", resp: &stuntest.Responder{XORMappedRaw: shortXORMapped}, network: "udp", ip: v4, wantErr: client.ErrInvalidAttribute},
		{name: "tcp short xor-mapped-address", resp: &stuntest.Responder{XORMappedRaw: shortXORMapped}, network: "tcp", ip: v4, wantErr: client.ErrInvalidAttribute},
		{name: "udp mapped-address", resp: &stuntest.Responder{UseMappedAddress: true}, network: "udp", ip: v6, wantTx: 1},
		{name: "udp error response", resp: &stuntest.Responder{ErrorCode: 420}, network: "udp", ip: v4, wantCode: 420},
		{name: "tcp error response", resp: &stuntest.Responder{ErrorCode: 400}, network: "tcp", ip: v6, wantCode: 400},
		{
			name: "other address", network: "udp", ip: v4, wantTx: 1,
			resp:      &stuntest.Responder{OtherAddress: netip.MustParseAddrPort("127.0.0.2:3479")},
			wantOther: netip.MustParseAddrPort("127.0.0.2:3479"),
		},
		{
			name: "udp gives up after rc transmissions", resp: &stuntest.Responder{Drop: 100}, network: "udp", ip: v4,
			opts:    []client.Option{client.WithRTO(5 * time.Millisecond), client.WithMaxTransmissions(3)},
			wantErr: client.ErrNoResponse,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.resp.Start(t, tc.ip)
			c := client.New(append([]client.Option{client.WithTimeout(3 * time.Second)}, tc.opts...)...)
			res, err := c.Binding(context.Background(), tc.network, addr)
			if tc.wantCode != 0 {
				var er *client.ErrorResponse
				if !errors.As(err, &er) || er.Code != tc.wantCode {
					t.Fatalf("err = %v, want error response %d", err, tc.wantCode)
				}

				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}

				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if !want.IsValid() {
				want = res.Local
			}
			if res.Mapped != want {
				t.Errorf("mapped %s, want %s", res.Mapped, want)
			}
			if res.Transmissions != tc.wantTx {
				t.Errorf("transmissions %d, want %d", res.Transmissions, tc.wantTx)
			}
			if res.OtherAddress != tc.wantOther {
				t.Errorf("other address %s, want %s", res.OtherAddress, tc.wantOther)
			}
			if res.Software != "clienttest" {
				t.Errorf("software %q", res.Software)
			}
		})
	}
}

func TestBindingTimeout(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			addr := stuntest.Silent(t, v4)
			c := client.New(client.WithTimeout(300*time.Millisecond), client.WithRTO(50*time.Millisecond))
			start := time.Now()
			_, err := c.Binding(context.Background(), network, addr)
			if !errors.Is(err, client.ErrNoResponse) {
				t.Fatalf("err = %v, want ErrNoResponse", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %s, the timeout is 300ms", d)
			}
		})
	}
}

func TestBindingContextCancel(t *testing.T) {
	addr := stuntest.Silent(t, v4)
	c := client.New(client.WithTimeout(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.Binding(ctx, "udp", addr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBindingRefused(t *testing.T) {
	port := stuntest.FreePort(t, []netip.Addr{v4})
	addr := netip.AddrPortFrom(v4, port)
	c := client.New(client.WithTimeout(2 * time.Second))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			_, err := c.Binding(context.Background(), network, addr)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("err = %v, want connection refused", err)
			}
		})
	}
}

func TestBindingBadNetwork(t *testing.T) {
	_, err := client.New().Binding(context.Background(), "sctp", netip.MustParseAddrPort("127.0.0.1:1"))
	if !errors.Is(err, client.ErrNetwork) {
		t.Fatalf("err = %v", err)
	}
}

// TestBindingStund runs the client against this project's server, both
// transports and families.
func TestBindingStund(t *testing.T) {
	c := client.New(client.WithTimeout(3 * time.Second))
	for _, addr := range servertest.Start(t, server.Config{Software: "stund-test"}) {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+addr.String(), func(t *testing.T) {
				res, err := c.Binding(context.Background(), network, addr)
				if err != nil {
					t.Fatal(err)
				}
				if res.Mapped != res.Local {
					t.Errorf("mapped %s, want the local address %s", res.Mapped, res.Local)
				}
				if res.Software != "stund-test" {
					t.Errorf("software %q", res.Software)
				}
			})
		}
	}
}

// TestBindingSoftwareText sends SOFTWARE values with a trailing NUL and a
// bidi override over the wire: the first is trimmed, the second cannot
// reorder the terminal line (issue 13 item 16).
func TestBindingSoftwareText(t *testing.T) {
	c := client.New(client.WithTimeout(3 * time.Second))
	for _, tc := range []struct{ sent, want string }{
		{"stund 1.0\x00", "stund 1.0"},
		{"evil\u202Egnp.exe", "evil?gnp.exe"},
		{"\u2067isolate\u2069", "?isolate?"},
	} {
		addr := (&stuntest.Responder{Software: tc.sent}).Start(t, v4)
		res, err := c.Binding(context.Background(), "udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if res.Software != tc.want {
			t.Errorf("SOFTWARE %q shown as %q, want %q", tc.sent, res.Software, tc.want)
		}
	}
}

// TestListenUDPFor checks that the RFC 5780 socket is bound to the address
// that reaches the server, never the wildcard: on a host with several
// addresses a wildcard socket may leave from another one per destination.
func TestListenUDPFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []client.Option
		server netip.AddrPort
		want   netip.Addr
	}{
		{name: "ipv4", server: netip.AddrPortFrom(v4, 3478), want: v4},
		{name: "ipv6", server: netip.AddrPortFrom(v6, 3478), want: v6},
		{name: "wildcard with a port", opts: []client.Option{client.WithLocalAddr(netip.MustParseAddrPort("0.0.0.0:0"))}, server: netip.AddrPortFrom(v4, 3478), want: v4},
		{name: "local address given", opts: []client.Option{client.WithLocalAddr(netip.MustParseAddrPort("127.0.0.3:0"))}, server: netip.AddrPortFrom(v4, 3478), want: netip.MustParseAddr("127.0.0.3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := client.New(tc.opts...).ListenUDPFor(tc.server)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.LocalAddr(); got.Addr().Unmap() != tc.want || got.Port() == 0 {
				t.Errorf("bound to %s, want %s:<port>", got, tc.want)
			}
		})
	}
}
