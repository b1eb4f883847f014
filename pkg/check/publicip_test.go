package check_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stund/stund/pkg/check"
)

func TestDiscoverPublicIP(t *testing.T) {
	addrs := startStund(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		refs   []string
		family check.Family
		want   string // "" means unknown
		detail string
	}{
		{"two agree", []string{addrs[0].String(), "stun:" + addrs[0].String()}, check.IPv4, "127.0.0.1", "2 of 2"},
		{"IPv6", []string{addrs[1].String()}, check.IPv6, "::1", "1 of 1"},
		{"none", []string{}, check.IPv4, "", "no --reference servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := check.DiscoverPublicIP(ctx, check.Config{References: tc.refs}, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if p.IP.IsValid() {
				got = p.IP.String()
			}
			if got != tc.want || p.Source != check.SourceReference || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got %q from %s (%s), want %q (%s)", got, p.Source, p.Detail, tc.want, tc.detail)
			}
		})
	}
	if _, err := check.DiscoverPublicIP(ctx, check.Config{References: []string{"stuns:x"}}, check.IPv4); !errors.Is(err, check.ErrBadReference) {
		t.Errorf("bad reference: %v, want ErrBadReference", err)
	}
}
