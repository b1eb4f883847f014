package check

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort uint16
		wantErr  bool
		// wantScheme and wantTransports are checked when set.
		wantScheme     Scheme
		wantTransports []Transport
		// wantMsg is part of the error message people read.
		wantMsg string
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
		{in: "turn:turn.example.com", wantHost: "turn.example.com", wantPort: 3478, wantScheme: SchemeTURN},
		{in: "TURN:198.51.100.7:3479?transport=udp", wantHost: "198.51.100.7", wantPort: 3479, wantScheme: SchemeTURN, wantTransports: []Transport{UDP}},
		{in: "turn:[2001:db8::7]?transport=TCP", wantHost: "2001:db8::7", wantPort: 3478, wantScheme: SchemeTURN, wantTransports: []Transport{TCP}},
		{in: "turns:turn.example.com", wantHost: "turn.example.com", wantPort: 5349, wantScheme: SchemeTURNS, wantTransports: []Transport{TLS}},
		{in: "turns:turn.example.com:443?transport=tcp", wantHost: "turn.example.com", wantPort: 443, wantScheme: SchemeTURNS, wantTransports: []Transport{TLS}},
		{in: "turns:[2001:db8::7]", wantHost: "2001:db8::7", wantPort: 5349, wantScheme: SchemeTURNS},
		{in: "turns:2001:db8::7", wantHost: "2001:db8::7", wantPort: 5349, wantScheme: SchemeTURNS},
		{in: "turn://turn.example.com", wantErr: true, wantMsg: `no "//"`},
		{in: "turn:turn.example.com?transport=sctp", wantErr: true, wantMsg: "want udp or tcp"},
		{in: "turn:turn.example.com?transport=", wantErr: true, wantMsg: "want udp or tcp"},
		{in: "turn:turn.example.com?proto=udp", wantErr: true, wantMsg: "the only one is ?transport="},
		{in: "turn:turn.example.com?transport=udp&x=1", wantErr: true, wantMsg: "the only one is ?transport="},
		{in: "turns:turn.example.com?transport=udp", wantErr: true, wantMsg: "DTLS"},
		{in: "turn:alice@turn.example.com", wantErr: true, wantMsg: "turn:HOST[:PORT][?transport=udp|tcp]"},
		{in: "turn:", wantErr: true, wantMsg: "empty host"},
		{in: "turn:turn.example.com:0", wantErr: true, wantMsg: "1 to 65535"},
		{in: "turns:turn.example.com/path", wantErr: true},
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
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not say %q", err, tc.wantMsg)
				}

				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Host != tc.wantHost || got.Port != tc.wantPort || got.Input != tc.in {
				t.Errorf("got %+v, want host %s port %d", got, tc.wantHost, tc.wantPort)
			}
			if tc.wantScheme != "" && got.Scheme != tc.wantScheme {
				t.Errorf("scheme %q, want %q", got.Scheme, tc.wantScheme)
			}
			if tc.wantTransports != nil && !slices.Equal(got.Transports, tc.wantTransports) {
				t.Errorf("transports %v, want %v", got.Transports, tc.wantTransports)
			}
		})
	}
}

// FuzzParseTarget checks that the target parser never panics and that what
// it accepts prints back to something it accepts with the same meaning.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "stun:example.com:3479", "[2001:db8::7]:3478", "::1", "stuns:x", "a:b:c", "turn:x?transport=udp", "turns:[::1]:5349"} {
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
