package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
)

func TestLevelsAndFormats(t *testing.T) {
	tests := []struct {
		name   string
		format string
		level  string
		want   []string
		absent []string
	}{
		{"text info", "text", "info", []string{"INFO  stund: up 1", "WARN  stund: careful", "ERROR stund: broke"}, []string{"detail"}},
		{"text debug", "text", "debug", []string{"DEBUG stund: detail 2", "INFO  stund: up 1"}, []string{"trace"}},
		{"text error", "text", "error", []string{"broke"}, []string{"up 1", "careful"}},
		{"disabled", "text", "disabled", nil, []string{"up", "broke"}},
		{"json", "json", "info", []string{`{"time":"2026-01-02T03:04:05Z","level":"info","scope":"stund","msg":"up 1"}`}, []string{"detail"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			lvl, err := ParseLevel(tc.level)
			if err != nil {
				t.Fatal(err)
			}
			f, err := New(&buf, tc.format, lvl)
			if err != nil {
				t.Fatal(err)
			}
			f.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
			l := f.NewLogger("stund")
			l.Tracef("trace %d", 3)
			l.Debugf("detail %d", 2)
			l.Infof("up %d", 1)
			l.Warn("careful")
			l.Error("broke")
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
			if tc.format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					var v map[string]string
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Errorf("not JSON: %q", line)
					}
				}
			}
			want := lvl >= logging.LogLevelDebug
			if got := l.(interface{ DebugEnabled() bool }).DebugEnabled(); got != want { //nolint:forcetypeassert // our logger
				t.Errorf("DebugEnabled = %v, want %v", got, want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) succeeded")
	}
	if _, err := New(nil, "xml", logging.LogLevelInfo); err == nil {
		t.Error("New(xml) succeeded")
	}
}
