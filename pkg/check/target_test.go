package check

import (
	"errors"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort uint16
		wantErr  bool
	}{
		{in: "198.51.100.7", wantHost: "198.51.100.7", wantPort: 3478},
		{in: "198.51.100.7:3479", wantHost: "198.51.100.7", wantPort: 3479},
		{in: "stun.example.com", wantHost: "stun.example.com", wantPort: 3478},
		{in: "stun.example.com:19302", wantHost: "stun.example.com", wantPort: 19302},
		{in: "[2001:db8::7]:3478", wantHost: "2001:db8::7", wantPort: 3478},
		{in: "[2001:db8::7]", wantHost: "2001:db8::7", wantPort: 3478},
		{in: "2001:db8::7", wantHost: "2001:db8::7", wantPort: 3478},
		{in: "::1", wantHost: "::1", wantPort: 3478},
		{in: "[::ffff:10.0.0.1]:5", wantHost: "10.0.0.1", wantPort: 5},
		{in: "stun:stun.example.com", wantHost: "stun.example.com", wantPort: 3478},
		{in: "stun:stun.example.com:3479", wantHost: "stun.example.com", wantPort: 3479},
		{in: "STUN:198.51.100.7", wantHost: "198.51.100.7", wantPort: 3478},
		{in: "stun:[2001:db8::7]:3480", wantHost: "2001:db8::7", wantPort: 3480},
		{in: "localhost:1", wantHost: "localhost", wantPort: 1},
		{in: "stuns:stun.example.com", wantErr: true},
		{in: "stun://stun.example.com", wantErr: true},
		{in: "stun:stun.example.com?transport=udp", wantErr: true},
		{in: "turn:stun.example.com", wantErr: true},
		{in: "", wantErr: true},
		{in: "host:", wantErr: true},
		{in: "host:0", wantErr: true},
		{in: "host:65536", wantErr: true},
		{in: "host:abc", wantErr: true},
		{in: "[2001:db8::7", wantErr: true},
		{in: "[198.51.100.7]:3478", wantErr: true},
		{in: "[::1]x", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "bad host", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: "svc/stund", wantErr: true},
		{in: ":3478", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.wantErr {
				var ie *InputError
				if !errors.Is(err, ErrBadTarget) || !errors.As(err, &ie) || ie.Input != tc.in {
					t.Fatalf("ParseTarget(%q) = %+v, %v; want an *InputError for %q wrapping ErrBadTarget", tc.in, got, err, tc.in)
				}

				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Host != tc.wantHost || got.Port != tc.wantPort || got.Input != tc.in {
				t.Errorf("got %+v, want host %s port %d", got, tc.wantHost, tc.wantPort)
			}
		})
	}
}

// FuzzParseTarget checks that the target parser never panics and that what
// it accepts prints back to something it accepts with the same meaning.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "stun:example.com:3479", "[2001:db8::7]:3478", "::1", "stuns:x", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if !errors.Is(err, ErrBadTarget) {
				t.Fatalf("error without ErrBadTarget: %v", err)
			}

			return
		}
		again, err := ParseTarget(tg.String())
		if err != nil {
			t.Fatalf("%q parsed to %q, which does not parse: %v", s, tg.String(), err)
		}
		if again.Host != tg.Host || again.Port != tg.Port {
			t.Fatalf("%q: round trip %+v -> %+v", s, tg, again)
		}
	})
}
