package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"github.com/stund/stund/internal/golden"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/internal/stuntest"
)

var binary string

// TestMain builds the real command once; the tests run it as users do.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "stuncheck-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "stuncheck")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func stuncheck(t *testing.T, env []string, args ...string) result {
	t.Helper()
	// A command that does not stop (the exporter serves until killed)
	// fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		// Variables that would change stuncheck's defaults; each test
		// sets the ones it is about.
		return strings.HasPrefix(kv, "STUNCHECK_") || strings.HasPrefix(kv, "NO_COLOR=") || strings.HasPrefix(kv, "KUBECONFIG=")
	}), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}

	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

var (
	v4 = netip.MustParseAddr("127.0.0.1")
	v6 = netip.MustParseAddr("::1")
)

func TestExitCodes(t *testing.T) {
	srv := stuntest.StartCoturn(t, []netip.Addr{v4, v6}, "--no-rfc5780")
	silent := stuntest.Silent(t, v4)
	// Family IPv6 with a 4-byte address (issue 13 item 14).
	short := (&stuntest.Responder{XORMappedRaw: []byte{0x00, 0x02, 0x00, 0x01, 0x20, 0x10, 0xa7, 0x46}}).Start(t, v4)
	s4, s6 := srv.Addr(v4).String(), srv.Addr(v6).String()
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrHas  string
		wantStdout bool
	}{
		{name: "preserved", args: []string{"--expect-ip", "127.0.0.1", "--expect-ip", "::1", s4, s6}, code: 0, wantStdout: true},
		{name: "preserved via reference", args: []string{"--reference", s4, "--transport", "udp", "stun:" + s4}, code: 0, wantStdout: true},
		{name: "flags after target", args: []string{s4, "--expect-ip", "127.0.0.1", "-o", "json"}, code: 0, wantStdout: true},
		{name: "rewritten", args: []string{"--expect-ip", "203.0.113.10", s4}, code: 1, wantStdout: true},
		{name: "inconclusive no answer", args: []string{"--expect-ip", "127.0.0.1", "--timeout", "300ms", silent.String()}, code: 3, wantStdout: true},
		{name: "inconclusive short xor-mapped-address", args: []string{"--expect-ip", "127.0.0.1", short.String()}, code: 3, wantStdout: true},
		{name: "inconclusive no public ip", args: []string{"--reference", silent.String(), "--timeout", "300ms", s4}, code: 3, wantStdout: true},
		{name: "no target", args: []string{"--expect-ip", "127.0.0.1"}, code: 2, stderrHas: "no TARGET"},
		{name: "unknown flag", args: []string{"--frobnicate", s4}, code: 2, stderrHas: "frobnicate"},
		{name: "bad transport", args: []string{"--transport", "sctp", s4}, code: 2, stderrHas: "sctp"},
		{name: "bad output", args: []string{"-o", "yaml", s4}, code: 2, stderrHas: "yaml"},
		{name: "bad expect-ip", args: []string{"--expect-ip", "nope", s4}, code: 2, stderrHas: "nope"},
		{name: "two ipv4 expect-ip", args: []string{"--expect-ip", "192.0.2.1", "--expect-ip", "192.0.2.2", s4}, code: 2, stderrHas: "one per family"},
		{name: "stuns", args: []string{"--expect-ip", "127.0.0.1", "stuns:" + s4}, code: 2, stderrHas: "TLS"},
		{name: "bad timeout", args: []string{"--timeout", "-1s", s4}, code: 2, stderrHas: "timeout"},
		{name: "unresolvable", args: []string{"--expect-ip", "127.0.0.1", "does-not-exist.invalid"}, code: 2, stderrHas: "does-not-exist.invalid"},
		{name: "help", args: []string{"--help"}, code: 0, wantStdout: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := stuncheck(t, nil, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.stderrHas != "" {
				if !strings.Contains(r.stderr, tc.stderrHas) {
					t.Errorf("stderr %q does not mention %q", r.stderr, tc.stderrHas)
				}
				if n := strings.Count(r.stderr, "\n"); n != 1 {
					t.Errorf("usage error is %d lines, want one: %q", n, r.stderr)
				}
			}
			if (r.stdout != "") != tc.wantStdout {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

func TestJSONOutput(t *testing.T) {
	srv := stuntest.StartCoturn(t, []netip.Addr{v4, v6}, "--no-rfc5780")
	r := stuncheck(t, nil, "-o", "json", "--expect-ip", "203.0.113.10", "--expect-ip", "::1",
		srv.Addr(v4).String(), srv.Addr(v6).String())
	if r.code != 1 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var doc struct {
		Verdict string `json:"verdict"`
		Probes  []struct {
			Transport string   `json:"transport"`
			Family    string   `json:"family"`
			Mapped    *string  `json:"mapped"`
			Verdict   string   `json:"verdict"`
			Reason    string   `json:"reason"`
			RTT       *float64 `json:"rtt_ms"`
		} `json:"probes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	want := []string{"udp ipv4 rewritten loopback-address", "tcp ipv4 rewritten loopback-address",
		"udp ipv6 preserved same-address", "tcp ipv6 preserved same-address"}
	if doc.Verdict != "rewritten" || len(doc.Probes) != len(want) {
		t.Fatalf("document %+v", doc)
	}
	for i, p := range doc.Probes {
		got := strings.Join([]string{p.Transport, p.Family, p.Verdict, p.Reason}, " ")
		if got != want[i] || p.Mapped == nil || p.RTT == nil {
			t.Errorf("probe %d: %s (mapped %v), want %s", i, got, p.Mapped, want[i])
		}
	}
}

// TestTextOutput runs against coturn and compares the text with a golden
// file after replacing the ports, which change every run.
func TestTextOutput(t *testing.T) {
	srv := stuntest.StartCoturn(t, []netip.Addr{v4}, "--no-rfc5780")
	ports := regexp.MustCompile(`(127\.0\.0\.1|port):? ?\d+`)
	for _, tc := range []struct {
		name string
		env  []string
		file string
		args []string
	}{
		{"preserved", nil, "preserved.golden.txt", []string{"--expect-ip", "127.0.0.1"}},
		{"rewritten", nil, "rewritten.golden.txt", []string{"--expect-ip", "203.0.113.10"}},
		{"no colour in a pipe even without NO_COLOR", []string{"NO_COLOR="}, "rewritten.golden.txt", []string{"--expect-ip", "203.0.113.10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := stuncheck(t, tc.env, append(tc.args, srv.Addr(v4).String())...)
			got := ports.ReplaceAllStringFunc(r.stdout, func(s string) string {
				return regexp.MustCompile(`\d+$`).ReplaceAllString(s, "PORT")
			})
			golden.Assert(t, tc.file, []byte(got))
		})
	}
}

func TestHelp(t *testing.T) {
	r := stuncheck(t, nil, "--help")
	golden.Assert(t, "help.golden.txt", []byte(r.stdout))
	for _, s := range []string{"Usage: stuncheck", "--expect-ip", "--reference", "--transport", "--timeout", "-o", "--nat-behavior", "Exit codes", "Examples"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("help does not mention %q", s)
		}
	}
}

// TestStund runs the command against this project's server.
func TestStund(t *testing.T) {
	addrs := servertest.Start(t, server.Config{})
	for _, tc := range []struct {
		expect string
		code   int
	}{{"127.0.0.1", 0}, {"203.0.113.10", 1}} {
		r := stuncheck(t, nil, "--expect-ip", tc.expect, "--expect-ip", "::1", addrs[0].String(), addrs[1].String())
		if r.code != tc.code {
			t.Errorf("--expect-ip %s: exit %d, want %d\n%s%s", tc.expect, r.code, tc.code, r.stdout, r.stderr)
		}
	}
}
