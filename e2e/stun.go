//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"
)

// stunBinding sends a Binding request from inside h to server over network
// ("udp" or "tcp") and returns the XOR-MAPPED-ADDRESS of the answer. It is
// the lab's own minimal STUN client, independent of stuncheck, used to
// check the topology itself.
func stunBinding(ctx context.Context, h *Host, network, server string) (netip.AddrPort, error) {
	conn, err := h.DialContext(ctx, network, server)
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}

	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], 0x0001) // Binding request
	binary.BigEndian.PutUint32(req[4:], magicCookie)
	if _, err := rand.Read(req[8:20]); err != nil {
		return netip.AddrPort{}, err
	}

	buf := make([]byte, 1500)
	var n int
	if network == "tcp" {
		if _, err := conn.Write(req); err != nil {
			return netip.AddrPort{}, err
		}
		if _, err := io.ReadFull(conn, buf[:20]); err != nil {
			return netip.AddrPort{}, err
		}
		n = 20 + int(binary.BigEndian.Uint16(buf[2:]))
		if _, err := io.ReadFull(conn, buf[20:n]); err != nil {
			return netip.AddrPort{}, err
		}
	} else {
		// Retransmit every 500 ms until an answer or the context's deadline.
		for {
			if _, err := conn.Write(req); err != nil {
				return netip.AddrPort{}, err
			}
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, err = conn.Read(buf)
			if err == nil {
				break
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
				return netip.AddrPort{}, err
			}
		}
	}
	return parseXORMapped(buf[:n], req[8:20])
}

const magicCookie = 0x2112A442

// parseXORMapped checks that msg is a Binding success response for txID and
// decodes its XOR-MAPPED-ADDRESS (RFC 8489 section 14.2).
func parseXORMapped(msg, txID []byte) (netip.AddrPort, error) {
	if len(msg) < 20 || binary.BigEndian.Uint16(msg) != 0x0101 || string(msg[8:20]) != string(txID) {
		return netip.AddrPort{}, fmt.Errorf("not a Binding success response to our request: % x", msg[:min(len(msg), 20)])
	}
	attrs := msg[20:]
	for len(attrs) >= 4 {
		typ, l := binary.BigEndian.Uint16(attrs), int(binary.BigEndian.Uint16(attrs[2:]))
		if len(attrs) < 4+l {
			break
		}
		v := attrs[4 : 4+l]
		if typ == 0x0020 && l >= 8 {
			port := binary.BigEndian.Uint16(v[2:]) ^ magicCookie>>16
			key := binary.BigEndian.AppendUint32(nil, magicCookie)
			key = append(key, txID...)
			ip := make([]byte, l-4)
			for i := range ip {
				ip[i] = v[4+i] ^ key[i]
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				return netip.AddrPortFrom(addr, port), nil
			}
		}
		attrs = attrs[4+(l+3)&^3:]
	}
	return netip.AddrPort{}, errors.New("no XOR-MAPPED-ADDRESS in the response")
}
