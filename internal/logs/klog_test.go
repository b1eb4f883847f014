package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"k8s.io/klog/v2"
)

// klogHeaderRE matches a line in klog's own format, e.g.
// "E1129 17:53:18.701137 reflector.go:227] ...".
var klogHeaderRE = regexp.MustCompile(`(?m)^[IEWF]\d{4} `)

// klogTo routes klog through a Factory writing to a buffer at level in
// format, with a clock the test moves; klog's own logger is restored
// after the test.
func klogTo(t *testing.T, format string, level logging.LogLevel) (*bytes.Buffer, *time.Time) {
	t.Helper()
	var buf bytes.Buffer
	f, err := New(&buf, format, level)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.now = func() time.Time { return now }
	klog.SetLoggerWithOptions(f.Logr("kube"), klog.ContextualLogger(true))
	t.Cleanup(klog.ClearLogger)

	return &buf, &now
}

var errForbidden = errors.New(`failed to list *v1.Node: nodes is forbidden: User "system:serviceaccount:lab:stund" cannot list resource "nodes" in API group "" at the cluster scope`)

// What client-go logs through klog, contextual and legacy calls alike,
// comes out as stund's lines: its format, its levels, scope kube.
func TestKlogLines(t *testing.T) {
	log := func() {
		klog.Background().WithName("UnhandledError").Error(errForbidden, "Failed to watch", "reflector", "informers/factory.go:160", "type", "*v1.Node")
		klog.Background().Info("Warning: watch ended with error", "err", errors.New("very short watch"))
		klog.Background().V(2).Info("Caches populated", "type", "*v1.Node")
		klog.Background().V(6).Info("GET /api/v1/nodes 403")
		klog.Errorf("legacy %s", "error")
		klog.Info("legacy info")
		klog.V(2).Info("legacy verbose, dropped by klog's own -v")
	}
	tests := []struct {
		name   string
		format string
		level  string
		want   []string
		absent []string
	}{
		{"text info", FormatText, "info", []string{
			`2026-01-02T03:04:05Z ERROR kube: Failed to watch logger=UnhandledError err="failed to list *v1.Node: nodes is forbidden: User \"system:serviceaccount:lab:stund\" cannot list resource \"nodes\" in API group \"\" at the cluster scope" reflector=informers/factory.go:160 type=*v1.Node` + "\n",
			`2026-01-02T03:04:05Z INFO  kube: Warning: watch ended with error err="very short watch"` + "\n",
			"ERROR kube: legacy error\n",
			"INFO  kube: legacy info\n",
		}, []string{"Caches populated", "GET", "legacy verbose"}},
		{"text debug", FormatText, "debug", []string{
			"DEBUG kube: Caches populated type=*v1.Node\n",
		}, []string{"GET", "legacy verbose"}},
		{"text trace", FormatText, "trace", []string{
			"TRACE kube: GET /api/v1/nodes 403\n",
		}, nil},
		{"text error", FormatText, "error", []string{"ERROR kube: Failed to watch"}, []string{"INFO", "Warning"}},
		{"json info", FormatJSON, "info", []string{
			`{"time":"2026-01-02T03:04:05Z","level":"error","scope":"kube","msg":"Failed to watch","logger":"UnhandledError","err":"failed to list *v1.Node: nodes is forbidden: User \"system:serviceaccount:lab:stund\" cannot list resource \"nodes\" in API group \"\" at the cluster scope","reflector":"informers/factory.go:160","type":"*v1.Node"}` + "\n",
			`{"time":"2026-01-02T03:04:05Z","level":"info","scope":"kube","msg":"Warning: watch ended with error","err":"very short watch"}` + "\n",
			`{"time":"2026-01-02T03:04:05Z","level":"error","scope":"kube","msg":"legacy error"}` + "\n",
		}, []string{"Caches populated"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			level, err := ParseLevel(tc.level)
			if err != nil {
				t.Fatal(err)
			}
			buf, _ := klogTo(t, tc.format, level)
			log()
			out := buf.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q", a)
				}
			}
			if klogHeaderRE.MatchString(out) {
				t.Error("a line in klog's format")
			}
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if tc.format == FormatJSON {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil || v["scope"] != "kube" {
						t.Errorf("not a JSON line of scope kube: %s", line)
					}
				} else if !regexp.MustCompile(`^\S+Z (TRACE|DEBUG|INFO |WARN |ERROR) kube: \S`).MatchString(line) {
					t.Errorf("not a text line of scope kube: %s", line)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

// client-go retries a forbidden list every few seconds and logs the same
// error each time: it is written once per KlogRepeat, the next time with
// how many were left out; other messages are not held back by it.
func TestKlogRepeats(t *testing.T) {
	for _, format := range []string{FormatText, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			buf, now := klogTo(t, format, logging.LogLevelInfo)
			forbidden := func() {
				klog.Background().Error(errForbidden, "Failed to watch", "type", "*v1.Node")
			}
			forbidden()
			for range 5 {
				*now = now.Add(30 * time.Second)
				forbidden()
			}
			klog.Background().Error(errors.New("services is forbidden"), "Failed to watch", "type", "*v1.Service")
			if n := strings.Count(buf.String(), "nodes is forbidden"); n != 1 {
				t.Errorf("%d lines about nodes in %s, want 1:\n%s", n, 5*30*time.Second, buf)
			}
			if !strings.Contains(buf.String(), "services is forbidden") {
				t.Errorf("another error was held back:\n%s", buf)
			}
			*now = now.Add(KlogRepeat)
			forbidden()
			forbidden()
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines, want 3:\n%s", len(lines), buf)
			}
			want := "suppressed=5"
			if format == FormatJSON {
				want = `"suppressed":5}`
			}
			if !strings.Contains(lines[2], "nodes is forbidden") || !strings.HasSuffix(lines[2], want) {
				t.Errorf("after %s: %s, want the error again ending %s", KlogRepeat, lines[2], want)
			}
		})
	}
}

// Values that would break a line or a JSON object are escaped: line
// breaks are quoted, a key named like one of stund's fields is renamed,
// and a value JSON cannot encode is written as text.
func TestKlogOddValues(t *testing.T) {
	buf, _ := klogTo(t, FormatText, logging.LogLevelInfo)
	klog.Background().WithValues("controller", "x").Info("two\nlines", "stack", "a\nb", "empty", "", 7, "odd")
	if got, want := buf.String(), `2026-01-02T03:04:05Z INFO  kube: two\nlines controller=x stack="a\nb" empty="" 7=odd`+"\n"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	buf, _ = klogTo(t, FormatJSON, logging.LogLevelInfo)
	klog.Background().Info("m", "msg", "mine", "level", 3, "ch", make(chan int), "dangling")
	var v map[string]any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatalf("%v: %s", err, buf)
	}
	if v["msg"] != "m" || v["msg_"] != "mine" || v["level"] != "info" || v["level_"] != float64(3) ||
		v["ch"] == nil || v["dangling"] != nil || len(v) != 8 {
		t.Errorf("JSON line %s", buf)
	}
}
