package diagnose

import (
	"strings"
	"testing"
)

// FuzzParseServiceRef: never panics; a reference it accepts is kind/NAME
// with a Service kind, and NAME is everything after the first slash.
func FuzzParseServiceRef(f *testing.F) {
	for _, s := range []string{"svc/stund", "service/stund", "SVC/x", "svc/", "pod/x", "stund", "stun:host", "[::1]:3478", "svc/a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, ok := ParseServiceRef(s)
		if !ok {
			if name != "" {
				t.Errorf("rejected %q but returned name %q", s, name)
			}

			return
		}
		kind, rest, found := strings.Cut(s, "/")
		if !found || rest != name {
			t.Errorf("accepted %q as %q", s, name)
		}
		switch strings.ToLower(kind) {
		case "svc", "service", "services":
		default:
			t.Errorf("accepted kind %q", kind)
		}
	})
}
