package main

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stund/stund/internal/stund/server"
	"github.com/stund/stund/internal/stund/server/servertest"
	"github.com/stund/stund/internal/stuntest"
)

// loadJSON is the part of `stuncheck load -o json` the tests read.
type loadJSON struct {
	Target         string             `json:"target"`
	Transport      string             `json:"transport"`
	Mode           string             `json:"mode"`
	Sent           uint64             `json:"sent"`
	Responses      uint64             `json:"responses"`
	ResponsesPerS  float64            `json:"responses_per_s"`
	Lost           uint64             `json:"lost"`
	Invalid        uint64             `json:"invalid"`
	InvalidReasons map[string]uint64  `json:"invalid_reasons"`
	RTTms          map[string]float64 `json:"rtt_ms"`
	MappedCheck    string             `json:"mapped_check"`
	Request        string             `json:"request"`
	Spin           bool               `json:"spin"`
	Verdict        string             `json:"verdict"`
}

func TestLoad(t *testing.T) {
	good := servertest.Start(t, server.Config{})
	silent := stuntest.Silent(t, v4)
	liar := (&stuntest.Responder{Mapped: func(netip.AddrPort) netip.AddrPort {
		return netip.MustParseAddrPort("198.51.100.1:4000")
	}}).Start(t, v4)
	dropper := (&stuntest.Responder{Drop: 3}).Start(t, v4)

	quick := []string{"--duration", "200ms"}
	tests := []struct {
		name      string
		args      []string
		code      int
		verdict   string // with -o json
		stdoutHas string
		stderrHas string
	}{
		{"udp closed loop", []string{good[0].String()}, 0, "ok", "", ""},
		{"udp6 open loop", []string{"--rate", "1000", "--max-loss", "50%", "[" + good[1].Addr().String() + "]:" + itoa(good[1].Port())}, 0, "ok", "", ""},
		{"tcp", []string{"--transport", "tcp", "--connections", "2", "stun:" + good[0].String()}, 0, "ok", "", ""},
		{"wrong mapped address", []string{"--window", "1", liar.String()}, 1, "invalid", "", ""},
		{"wrong mapped address, text", []string{"--window", "1", liar.String()}, 1, "", "wrong_mapped_address", ""},
		{"wrong mapped address not checked", []string{"--window", "1", "--mapped", "off", liar.String()}, 0, "ok", "", ""},
		{"loss above --max-loss", []string{"--window", "1", "--connections", "1", "--timeout", "50ms", "--max-loss", "0", dropper.String()}, 1, "loss", "", ""},
		{"no answer", []string{"--timeout", "50ms", silent.String()}, 3, "no_response", "", ""},
		{"text output", []string{good[0].String()}, 0, "", "verdict: ok", ""},
		{"fingerprint requests", []string{"--request", "fingerprint", good[0].String()}, 0, "ok", `"request": "fingerprint"`, ""},
		{"fingerprint requests, text", []string{"--request", "fingerprint", good[0].String()}, 0, "", "fingerprint requests (28 bytes)", ""},
		{"bare requests by default", []string{good[0].String()}, 0, "ok", `"request": "bare"`, ""},
		{"spin", []string{"--spin", "--connections", "3", good[0].String()}, 0, "ok", `"spin": true`, ""},
		{"spin, text", []string{"--spin", good[0].String()}, 0, "", "spinning", ""},
		{"no spin by default", []string{good[0].String()}, 0, "ok", `"spin": false`, ""},
		{"spin and tcp", []string{"--spin", "--transport", "tcp", good[0].String()}, 2, "", "", "--spin polls UDP sockets"},
		{"spin and rate", []string{"--spin", "--rate", "100", good[0].String()}, 2, "", "", "--spin is a closed loop"},
		{"help", []string{"--help"}, 0, "", "Usage: stuncheck load", ""},
		{"no target", nil, 2, "", "", "no TARGET given"},
		{"two targets", []string{"127.0.0.1", "127.0.0.2"}, 2, "", "", "one TARGET only"},
		{"window and rate", []string{"--window", "4", "--rate", "10", good[0].String()}, 2, "", "", "exclude each other"},
		{"bad transport", []string{"--transport", "sctp", good[0].String()}, 2, "", "", "--transport"},
		{"bad max-loss", []string{"--max-loss", "5", good[0].String()}, 2, "", "", "--max-loss"},
		{"bad mapped", []string{"--mapped", "nat", good[0].String()}, 2, "", "", "--mapped"},
		{"bad request", []string{"--request", "integrity", good[0].String()}, 2, "", "", `--request "integrity": want bare or fingerprint`},
		{"bad connections", []string{"--connections", "0", good[0].String()}, 2, "", "", "connections 0"},
		{"bad flag", []string{"--bogus", good[0].String()}, 2, "", "", "bogus"},
		{"stuns", []string{"stuns:" + good[0].String()}, 2, "", "", "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"load"}, quick...)
			if tc.verdict != "" {
				args = append(args, "-o", "json")
			}
			r := stuncheck(t, nil, append(args, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdoutHas) || !strings.Contains(r.stderr, tc.stderrHas) {
				t.Errorf("stdout %q, stderr %q: want %q and %q in them", r.stdout, r.stderr, tc.stdoutHas, tc.stderrHas)
			}
			if strings.Contains(r.stderr, "\r") {
				t.Errorf("progress line written when stderr is not a terminal: %q", r.stderr)
			}
			if tc.verdict == "" {
				return
			}
			var j loadJSON
			if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
			}
			if j.Verdict != tc.verdict {
				t.Errorf("verdict %q, want %q", j.Verdict, tc.verdict)
			}
			if tc.verdict == "ok" && (j.Responses == 0 || j.ResponsesPerS <= 0 || j.Invalid != 0 || j.RTTms["p99"] <= 0) {
				t.Errorf("want answers with RTTs, none invalid:\n%s", r.stdout)
			}
			if tc.verdict == "invalid" && j.InvalidReasons["wrong_mapped_address"] == 0 {
				t.Errorf("want wrong_mapped_address counted:\n%s", r.stdout)
			}
			if tc.verdict == "loss" && j.Lost != 3 {
				t.Errorf("lost %d, want the 3 requests the server dropped", j.Lost)
			}
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
