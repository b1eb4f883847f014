// Package stuntest provides STUN servers for tests: coturn run as a child
// process, and a scripted responder that claims to see whatever address a
// test needs (a private address, a CGNAT address, the load balancer's own).
// Everything listens on loopback only.
package stuntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// Coturn is a running `turnserver --stun-only`.
type Coturn struct {
	// Port is the UDP and TCP port on every listening IP.
	Port uint16
	// IPs are the listening IPs.
	IPs []netip.Addr
	cmd *exec.Cmd
	log string
}

// Addr returns ip:port for one of the listening IPs.
func (c *Coturn) Addr(ip netip.Addr) netip.AddrPort { return netip.AddrPortFrom(ip, c.Port) }

// StartCoturn runs coturn on ips (loopback addresses), skipping the test if
// the turnserver binary is not installed. extra flags are appended (for
// example "--no-rfc5780"). The server is stopped when the test ends.
func StartCoturn(t testing.TB, ips []netip.Addr, extra ...string) *Coturn {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("turnserver (Debian package coturn) is not installed; .ci/run installs it")
		}
		t.Skip("turnserver (Debian package coturn) is not installed")
	}
	var lastErr error
	for range 5 {
		port := FreePort(t, ips)
		dir := t.TempDir()
		c := &Coturn{Port: port, IPs: ips, log: filepath.Join(dir, "turnserver.log")}
		args := []string{
			"-n", // no configuration file: Debian's turns RFC 5780 off, among others
			"--stun-only", "--listening-port", strconv.Itoa(int(port)),
			"--no-cli", "--no-tls", "--no-dtls", "--simple-log", "--no-stdout-log",
			"--log-file", c.log, "--pidfile", filepath.Join(dir, "turnserver.pid"),
			"--userdb", filepath.Join(dir, "turndb"),
		}
		for _, ip := range ips {
			args = append(args, "--listening-ip", ip.String())
		}
		args = append(args, extra...)
		c.cmd = exec.Command(bin, args...)
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("start turnserver: %v", err)
		}
		if lastErr = waitReady(c.Addr(ips[0]), 5*time.Second); lastErr == nil {
			t.Cleanup(func() {
				_ = c.cmd.Process.Kill()
				_ = c.cmd.Wait()
				if t.Failed() {
					if b, err := os.ReadFile(c.log); err == nil {
						t.Logf("turnserver log:\n%s", b)
					}
				}
			})

			return c
		}
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	}
	t.Fatalf("turnserver did not answer: %v", lastErr)

	return nil
}

// waitReady sends Binding requests over UDP until one is answered, then
// checks that TCP accepts connections.
func waitReady(addr netip.AddrPort, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if err := ping(addr); err == nil {
			c, err := net.DialTimeout("tcp", addr.String(), time.Second)
			if err == nil {
				_ = c.Close()

				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}

	return fmt.Errorf("%s: no answer within %s", addr, within)
}

func ping(addr netip.AddrPort) error {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	defer conn.Close()
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := conn.Write(m.Raw); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !stun.IsMessage(buf[:n]) {
		return errors.New("not a STUN answer")
	}

	return nil
}

// FreePort returns a port that is free for both UDP and TCP on every ip.
func FreePort(t testing.TB, ips []netip.Addr) uint16 {
	t.Helper()
	for range 50 {
		l, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0], 0)))
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := l.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		_ = l.Close()
		ok := true
		for _, ip := range ips {
			a := netip.AddrPortFrom(ip, port)
			u, err1 := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
			tl, err2 := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(a))
			if u != nil {
				_ = u.Close()
			}
			if tl != nil {
				_ = tl.Close()
			}
			if err1 != nil || err2 != nil {
				ok = false
			}
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free port for UDP and TCP")

	return 0
}

// Responder is a scripted STUN server on loopback, UDP and TCP on one port.
type Responder struct {
	// Mapped decides the address the responder claims to have seen; nil
	// reports the real source.
	Mapped func(src netip.AddrPort) netip.AddrPort
	// MappedTCP, when set, replaces Mapped for TCP (a path that rewrites
	// one transport only).
	MappedTCP func(src netip.AddrPort) netip.AddrPort
	// ResponseOrigin and OtherAddress, when valid, are added to answers.
	ResponseOrigin, OtherAddress netip.AddrPort
	// Drop makes the responder ignore the first Drop UDP requests.
	Drop int
	// ErrorCode, when set, answers with a Binding error response.
	ErrorCode int
	// Garbage makes the responder send, before the real answer, a response
	// with a wrong transaction ID and one with a broken FINGERPRINT.
	Garbage bool
	// UseMappedAddress answers with MAPPED-ADDRESS instead of XOR-MAPPED-ADDRESS.
	UseMappedAddress bool
	// XORMappedRaw, when set, is sent verbatim as the XOR-MAPPED-ADDRESS
	// value, for tests of malformed answers.
	XORMappedRaw []byte
	// Software is the SOFTWARE value sent; empty means "clienttest".
	Software string

	udp      *net.UDPConn
	tcp      *net.TCPListener
	requests atomic.Int64
	wg       sync.WaitGroup
}

// Start listens on ip (port 0: any free port) and serves until the test ends.
func (r *Responder) Start(t testing.TB, ip netip.Addr) netip.AddrPort {
	t.Helper()
	port := FreePort(t, []netip.Addr{ip})
	addr := netip.AddrPortFrom(ip, port)
	var err error
	if r.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr)); err != nil {
		t.Fatal(err)
	}
	if r.tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr)); err != nil {
		t.Fatal(err)
	}
	r.wg.Add(2)
	go r.serveUDP()
	go r.serveTCP()
	t.Cleanup(func() {
		_ = r.udp.Close()
		_ = r.tcp.Close()
		r.wg.Wait()
	})

	return addr
}

// Requests counts the Binding requests received.
func (r *Responder) Requests() int { return int(r.requests.Load()) }

func (r *Responder) serveUDP() {
	defer r.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, src, err := r.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		seen := r.requests.Add(1)
		if int(seen) <= r.Drop {
			continue
		}
		for _, out := range r.answers(buf[:n], src, r.Mapped) {
			_, _ = r.udp.WriteToUDPAddrPort(out, src)
		}
	}
}

func (r *Responder) serveTCP() {
	defer r.wg.Done()
	for {
		c, err := r.tcp.AcceptTCP()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
			m := stun.New()
			for {
				if _, err := m.ReadFrom(c); err != nil {
					return
				}
				r.requests.Add(1)
				var out bytes.Buffer
				mapped := r.Mapped
				if r.MappedTCP != nil {
					mapped = r.MappedTCP
				}
				for _, a := range r.answers(m.Raw, src, mapped) {
					out.Write(a)
				}
				if _, err := c.Write(out.Bytes()); err != nil {
					return
				}
			}
		}()
	}
}

func (r *Responder) answers(raw []byte, src netip.AddrPort, mapFn func(netip.AddrPort) netip.AddrPort) [][]byte {
	req := stun.New()
	if err := stun.Decode(raw, req); err != nil || req.Type != stun.BindingRequest {
		return nil
	}
	mapped := src
	if mapFn != nil {
		mapped = mapFn(src)
	}
	var out [][]byte
	if r.Garbage {
		other := stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
			&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 66), Port: 1}, stun.Fingerprint)
		out = append(out, other.Raw)
		bad := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 67), Port: 1}, stun.Fingerprint)
		bad.Raw[len(bad.Raw)-1] ^= 0xFF
		out = append(out, bad.Raw)
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID)}
	if r.ErrorCode != 0 {
		setters = append(setters, stun.BindingError, stun.ErrorCode(r.ErrorCode))
	} else {
		setters = append(setters, stun.BindingSuccess)
		switch {
		case r.XORMappedRaw != nil:
			setters = append(setters, stun.RawAttribute{Type: stun.AttrXORMappedAddress, Value: r.XORMappedRaw})
		case r.UseMappedAddress:
			setters = append(setters, &stun.MappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())})
		default:
			setters = append(setters, &stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())})
		}
		if r.ResponseOrigin.IsValid() {
			setters = append(setters, &stun.ResponseOrigin{IP: r.ResponseOrigin.Addr().AsSlice(), Port: int(r.ResponseOrigin.Port())})
		}
		if r.OtherAddress.IsValid() {
			setters = append(setters, &stun.OtherAddress{IP: r.OtherAddress.Addr().AsSlice(), Port: int(r.OtherAddress.Port())})
		}
	}
	software := r.Software
	if software == "" {
		software = "clienttest"
	}
	setters = append(setters, stun.RawAttribute{Type: stun.AttrSoftware, Value: []byte(software)}, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil
	}

	return append(out, m.Raw)
}

// Silent returns a loopback UDP and TCP address where nothing answers:
// UDP datagrams are read and dropped, TCP connections are accepted and
// left idle. Use it to test timeouts.
func Silent(t testing.TB, ip netip.Addr) netip.AddrPort {
	t.Helper()
	port := FreePort(t, []netip.Addr{ip})
	addr := netip.AddrPortFrom(ip, port)
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := u.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			if ctx.Err() != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = u.Close()
		_ = l.Close()
		wg.Wait()
	})

	return addr
}
