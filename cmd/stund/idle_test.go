package main

import (
	endian "encoding/binary" // binary names the stund command here
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var (
	tcpOpenRE  = regexp.MustCompile(`(?m)^stund_tcp_connections_open (\d+)`)
	tcpBytesRE = regexp.MustCompile(`(?m)^stund_received_bytes_total\{transport="tcp"\} (\S+)`)
)

// TestIdleTCPConnections holds 10,000 TCP connections open against the
// real binary, idle or after each completed one 2 KB message, and checks
// they cost under 64 MiB of resident memory in all: after its answer a
// connection holds no message buffer, and a stack no bigger than an idle
// one's.
func TestIdleTCPConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const (
		conns = 10000
		limit = 64 << 20
	)
	// A Binding request of 2,048 bytes, stund's largest: a 2,024-byte
	// comprehension-optional attribute (ignored) after the header.
	msg := make([]byte, 2048)
	endian.BigEndian.PutUint16(msg[0:2], 0x0001)
	endian.BigEndian.PutUint16(msg[2:4], 2048-20)
	endian.BigEndian.PutUint32(msg[4:8], 0x2112A442)
	endian.BigEndian.PutUint16(msg[20:22], 0x8FFF)
	endian.BigEndian.PutUint16(msg[22:24], 2048-24)
	for _, tc := range []struct {
		name    string
		message bool
	}{
		{"idle", false},
		{"after one 2 KB message", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
				"--max-tcp-conns-per-source", "0", "--max-tcp-conns", strconv.Itoa(conns), "--tcp-idle-timeout", "5m")
			stunAddr := p.waitLog(t, stunAddrRE)
			base := "http://" + p.waitLog(t, httpAddrRE)
			before := currentRSS(t, p.cmd.Process.Pid)
			answer := make([]byte, 512)
			for i := range conns {
				// Spread over source addresses so the client side has ports.
				local := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i%200))}
				c, err := (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).Dial("tcp", stunAddr)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				defer c.Close()
				if !tc.message {
					continue
				}
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadAtLeast(c, answer, 20); err != nil || endian.BigEndian.Uint16(answer) != 0x0101 {
					t.Fatalf("connection %d: no Binding success (% x, %v)", i, answer[:20], err)
				}
			}
			// Every connection open, every message counted: whatever a
			// connection does after its answer is done.
			wantBytes := 0.0
			if tc.message {
				wantBytes = float64(conns * len(msg))
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, m := get(t, base+"/metrics")
				o, b := tcpOpenRE.FindStringSubmatch(m), tcpBytesRE.FindStringSubmatch(m)
				got := 0.0
				if b != nil {
					got, _ = strconv.ParseFloat(b[1], 64)
				}
				if o != nil && o[1] == strconv.Itoa(conns) && got == wantBytes {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stund reports %q open connections and %g bytes received over TCP, want %d and %g", o, got, conns, wantBytes)
				}
				time.Sleep(100 * time.Millisecond)
			}
			after := currentRSS(t, p.cmd.Process.Pid)
			t.Logf("RSS %.1f MiB with %d connections (%.1f MiB before; %.0f bytes each)",
				float64(after)/(1<<20), conns, float64(before)/(1<<20), float64(after-before)/conns)
			if after > limit {
				t.Errorf("RSS %.1f MiB with %d TCP connections, want under %d MiB", float64(after)/(1<<20), conns, limit>>20)
			}
		})
	}
}

// currentRSS reads the process's resident set size, in bytes.
func currentRSS(t *testing.T, pid int) int64 {
	t.Helper()
	return readStatusKB(t, pid, "VmRSS:")
}
