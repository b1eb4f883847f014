//go:build e2e

package e2e

import (
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestBrowserBindingRequestShape pins what bench/run.sh calls a "bare"
// request: the Binding request Chromium sends to a STUN server while it
// gathers server-reflexive candidates is a 20-byte header with the magic
// cookie and no attributes. A listener of the test's own records every
// request and answers it; should Chromium start adding attributes
// (FINGERPRINT, SOFTWARE), this fails and the benchmark's request shapes
// need revisiting.
func TestBrowserBindingRequestShape(t *testing.T) {
	requireTool(t, "chromium", "chromium")
	lab := NewLab(t)
	h := lab.Host("browser")
	// Chromium gathers on interfaces other than loopback only: a veth
	// pair inside the namespace gives it one, and the STUN listener sits
	// on its address.
	h.IP("link", "add", "v0", "type", "veth", "peer", "name", "v1")
	h.IP("addr", "add", "192.0.2.1/24", "dev", "v0")
	h.IP("link", "set", "v0", "up")
	h.IP("link", "set", "v1", "up")

	var conn *net.UDPConn
	if err := h.inNamespace(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)})
		return err
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer conn.Close()

	var (
		mu       sync.Mutex
		requests [][]byte
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			mu.Lock()
			requests = append(requests, req)
			mu.Unlock()
			m := &stun.Message{Raw: req}
			if m.Decode() != nil || m.Type != stun.BindingRequest {
				continue
			}
			resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())}, stun.Fingerprint)
			if err == nil {
				_, _ = conn.WriteToUDPAddrPort(resp.Raw, src)
			}
		}
	}()

	cands := gatherICE(t, h, "stun:"+conn.LocalAddr().String())
	_ = conn.SetReadDeadline(time.Now())
	<-done

	if len(srflxCandidates(cands)) == 0 {
		t.Errorf("Chromium gathered no srflx candidate from the test's listener")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 {
		t.Fatal("Chromium sent no request to the STUN server")
	}
	for i, req := range requests {
		t.Logf("request %d: %s", i, hex.EncodeToString(req))
		m := &stun.Message{Raw: req}
		switch {
		case m.Decode() != nil:
			t.Errorf("request %d is not a STUN message: %x", i, req)
		case m.Type != stun.BindingRequest:
			t.Errorf("request %d is a %s, want a Binding request", i, m.Type)
		case len(req) != 20 || len(m.Attributes) != 0:
			t.Errorf("request %d is %d bytes with attributes %v; bench/run.sh's bare request is a 20-byte header with none",
				i, len(req), m.Attributes)
		}
	}
}
