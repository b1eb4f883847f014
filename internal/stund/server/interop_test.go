package server

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// requireTool returns the path of an interop peer. Where it is missing the
// test is skipped, except in CI (CI set), which must have installed it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it", name)
		}
		t.Skipf("%s is not installed (apt-get install coturn)", name)
	}

	return p
}

var reflexiveRE = regexp.MustCompile(`UDP reflexive addr: (\S+)`)

// TestCoturnStunclient has coturn's turnutils_stunclient ask stund for its
// reflexive address over IPv4 and IPv6.
func TestCoturnStunclient(t *testing.T) {
	tool := requireTool(t, "turnutils_stunclient")
	for _, tc := range []struct{ listen, local string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
	} {
		t.Run(tc.local, func(t *testing.T) {
			if tc.local == "::1" {
				hasIPv6Loopback(t)
			}
			s, _ := startServer(t, Config{Listen: []string{tc.listen}})
			port := s.Addrs()[0].Port()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, tool, "-p", itoa(port), "-L", tc.local, tc.local).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_stunclient: %v\n%s", err, out)
			}
			m := reflexiveRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no reflexive address in:\n%s", out)
			}
			// coturn prints IPv6 as addr:port without brackets.
			got := string(m[1])
			host := got[:len(got)-len(portSuffix(got))]
			if host != tc.local || portSuffix(got) == ":0" {
				t.Errorf("turnutils_stunclient saw %s, want %s:<its port>", got, tc.local)
			}
			waitCounter(t, "binding requests", s.metrics.requests[transportUDP][familyOf(netip.MustParseAddr(tc.local))][ClassPrivate], 1)
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// portSuffix returns ":port" of an addr:port string.
func portSuffix(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return s[i:]
		}
	}

	return ""
}

// TestPionClient has pion/stun's own client ask stund over UDP and TCP.
func TestPionClient(t *testing.T) {
	for _, network := range []string{"udp4", "udp6", "tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			listen := "127.0.0.1:0"
			if network[3] == '6' {
				hasIPv6Loopback(t)
				listen = "[::1]:0"
			}
			s, _ := startServer(t, Config{Listen: []string{listen}})
			conn, err := net.Dial(network, s.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			local := netip.MustParseAddrPort(conn.LocalAddr().String())
			c, err := stun.NewClient(conn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var got stun.XORMappedAddress
			var doErr error
			err = c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint), func(e stun.Event) {
				if e.Error != nil {
					doErr = e.Error

					return
				}
				doErr = got.GetFrom(e.Message)
			})
			if err != nil || doErr != nil {
				t.Fatalf("Do: %v %v", err, doErr)
			}
			ip, _ := netip.AddrFromSlice(got.IP)
			if netip.AddrPortFrom(ip.Unmap(), uint16(got.Port)) != local { //nolint:gosec // a port
				t.Errorf("pion client told %s, it is %s", got, local)
			}
		})
	}
}
