package charttest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestIPv6Prefix renders rateLimit.ipv6Prefix as --rate-limit-ipv6-prefix
// and refuses lengths stund refuses.
func TestIPv6Prefix(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{nil, "64"},
		{[]string{"rateLimit.ipv6Prefix=56"}, "56"},
		{[]string{"rateLimit.ipv6Prefix=128"}, "128"},
	} {
		c := stundContainer(t, &one[appsv1.Deployment](t, render(t, nil, tc.sets...), "stund").Spec.Template.Spec)
		if got, ok := flagValues(t, c.Args)["rate-limit-ipv6-prefix"]; !ok || got != tc.want {
			t.Errorf("%v: --rate-limit-ipv6-prefix = %q (present %v), want %q", tc.sets, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"rateLimit.ipv6Prefix=47", "rateLimit.ipv6Prefix=129", "rateLimit.ipv6Prefix=64.5", "extraArgs={--rate-limit-ipv6-prefix=48}"} {
		_, err := helm(templateArgs(chartDir, nil, []string{bad})...)
		if err == nil || !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
			t.Errorf("--set %s: %v, want a schema error", bad, err)
		}
	}
}
