package server

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestConfigErrors checks that New names the field it refuses and the
// value, so that stund can word the error with its flag, and that it
// names no flag itself.
func TestConfigErrors(t *testing.T) {
	prefix := netip.MustParsePrefix
	mapped := []netip.Prefix{prefix("::ffff:10.0.0.0/104")}
	origins := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:3478"), netip.MustParseAddrPort("198.51.100.2:3478")}
	tests := []struct {
		name  string
		cfg   Config
		field string
		value any // checked when not nil
		want  error
	}{
		{"listen without port", Config{Listen: []string{"127.0.0.1"}}, "Listen", "127.0.0.1", ErrBadAddress},
		{"software", Config{Software: strings.Repeat("x", 128)}, "Software", nil, ErrSoftwareTooLong},
		{"max message size", Config{MaxMessageSize: 4}, "MaxMessageSize", 4, ErrBadMaxMessageSize},
		{"negative idle timeout", Config{TCPIdleTimeout: -time.Second}, "TCPIdleTimeout", -time.Second, ErrBadTimeout},
		{"negative udp sockets", Config{UDPSockets: -1}, "UDPSockets", -1, ErrBadUDPSockets},
		{"too many udp sockets", Config{UDPSockets: maxUDPSockets + 1}, "UDPSockets", maxUDPSockets + 1, ErrBadUDPSockets},
		{"proxy without trusted", Config{ProxyProtocol: true}, "ProxyTrusted", nil, ErrProxyNoTrusted},
		{"trusted without proxy", Config{ProxyTrusted: []netip.Prefix{prefix("10.0.0.0/8")}}, "ProxyTrusted", nil, ErrProxyUnused},
		{"optional without proxy", Config{ProxyOptional: true}, "ProxyOptional", nil, ErrProxyUnused},
		{"mapped trusted", Config{ProxyProtocol: true, ProxyTrusted: mapped}, "ProxyTrusted", mapped[0], ErrMappedPrefix},
		{"mapped exempt", Config{RateLimit: RateLimit{Exempt: mapped}}, "RateLimit.Exempt", mapped[0], ErrMappedPrefix},
		{"mapped internal", Config{Classifier: StaticClassifier{Internal: mapped}}, "Classifier.Internal", mapped[0], ErrMappedPrefix},
		{"unreachable origin", Config{ResponseOrigin: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:3478")}}, "ResponseOrigin", nil, ErrBadResponseOrigin},
		{"two ipv4 origins", Config{ResponseOrigin: origins}, "ResponseOrigin", nil, ErrTwoResponseOrigins},
		{"negative tcp cap", Config{MaxTCPConns: -1}, "MaxTCPConns", -1, ErrBadRateLimit},
		{"negative tcp cap per source", Config{MaxTCPConnsPerSource: -1}, "MaxTCPConnsPerSource", -1, ErrBadRateLimit},
		{"negative rate", Config{RateLimit: RateLimit{PerSource: -1}}, "RateLimit.PerSource", -1.0, ErrBadRateLimit},
		{"negative burst", Config{RateLimit: RateLimit{Burst: -1}}, "RateLimit.Burst", -1.0, ErrBadRateLimit},
		{"negative global", Config{RateLimit: RateLimit{Global: -1}}, "RateLimit.Global", -1.0, ErrBadRateLimit},
		{"burst under one", Config{RateLimit: RateLimit{PerSource: 5, Burst: 0.5}}, "RateLimit.Burst", 0.5, ErrBadRateLimit},
		{"no burst", Config{RateLimit: RateLimit{PerSource: 5}}, "RateLimit.Burst", 0.0, ErrBadRateLimit},
		{"ipv6 prefix", Config{RateLimit: RateLimit{IPv6Prefix: 47}}, "RateLimit.IPv6Prefix", 47, ErrBadRateLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			var ce *ConfigError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("New: %#v, want a ConfigError for %s wrapping %v", err, tc.field, tc.want)
			}
			if tc.value != nil && ce.Value != tc.value {
				t.Errorf("value %#v, want %#v", ce.Value, tc.value)
			}
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a command-line flag", err)
			}
		})
	}
	t.Run("two origins name both", func(t *testing.T) {
		_, err := New(Config{ResponseOrigin: origins})
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("New: %v", err)
		}
		if pair, ok := ce.Value.([]netip.AddrPort); !ok || len(pair) != 2 || pair[0] != origins[0] || pair[1] != origins[1] {
			t.Errorf("value %#v, want both origins, the earlier first", ce.Value)
		}
	})
}
