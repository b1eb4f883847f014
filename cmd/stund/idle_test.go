package main

import (
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var tcpOpenRE = regexp.MustCompile(`(?m)^stund_tcp_connections_open (\d+)`)

// TestIdleTCPConnections holds 10,000 idle TCP connections open against the
// real binary and checks they cost under 100 MiB of resident memory.
func TestIdleTCPConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	const conns = 10000
	p := startStund(t, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--max-tcp-conns-per-source", "0", "--max-tcp-conns", strconv.Itoa(conns), "--tcp-idle-timeout", "5m")
	stunAddr := p.waitLog(t, stunAddrRE)
	base := "http://" + p.waitLog(t, httpAddrRE)
	before := currentRSS(t, p.cmd.Process.Pid)
	for i := range conns {
		// Spread over source addresses so the client side has ports.
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i%200))}
		c, err := (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).Dial("tcp", stunAddr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, m := get(t, base+"/metrics")
		if g := tcpOpenRE.FindStringSubmatch(m); g != nil && g[1] == strconv.Itoa(conns) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stund does not report %d open connections", conns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := currentRSS(t, p.cmd.Process.Pid)
	perConn := float64(after-before) / conns
	t.Logf("RSS %.1f MiB with %d idle connections (%.1f MiB before; %.0f bytes each)",
		float64(after)/(1<<20), conns, float64(before)/(1<<20), perConn)
	if after > 100<<20 {
		t.Errorf("RSS %d MiB with %d idle TCP connections, want under 100 MiB", after>>20, conns)
	}
}

// currentRSS reads the process's resident set size, in bytes.
func currentRSS(t *testing.T, pid int) int64 {
	t.Helper()
	return readStatusKB(t, pid, "VmRSS:")
}
