package main

import (
	"strings"
	"testing"
)

// TestIPv6PrefixFlag checks --rate-limit-ipv6-prefix and its environment
// variable: documented with its default, and refused outside 48 to 128.
func TestIPv6PrefixFlag(t *testing.T) {
	code, stdout, _ := runStund(t, nil, "--help")
	if code != 0 || !strings.Contains(stdout, "--rate-limit-ipv6-prefix length") || !strings.Contains(stdout, `STUND_RATE_LIMIT_IPV6_PREFIX] (default "64")`) {
		t.Errorf("--help (exit %d) does not document --rate-limit-ipv6-prefix with its default of 64:\n%s", code, stdout)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"too short", nil, []string{"--rate-limit-ipv6-prefix", "47"}, "--rate-limit-ipv6-prefix 47: want 48 to 128"},
		{"too long", nil, []string{"--rate-limit-ipv6-prefix", "129"}, "--rate-limit-ipv6-prefix 129: want 48 to 128"},
		{"zero", nil, []string{"--rate-limit-ipv6-prefix", "0"}, "--rate-limit-ipv6-prefix 0"},
		{"env out of range", []string{"STUND_RATE_LIMIT_IPV6_PREFIX=32"}, nil, "--rate-limit-ipv6-prefix 32"},
		{"env not a number", []string{"STUND_RATE_LIMIT_IPV6_PREFIX=wide"}, nil, "STUND_RATE_LIMIT_IPV6_PREFIX"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runStund(t, tc.env, append(tc.args, "--listen", "127.0.0.1:0", "--http-listen", "")...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 saying %q", code, stderr, tc.want)
			}
		})
	}
}
