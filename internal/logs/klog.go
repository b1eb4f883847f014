package logs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/pion/logging"
)

// KlogRepeat is how long Logr's logger stays silent about a message it
// has just written: client-go retries a failing list or watch every few
// seconds, up to every 30s, and logs the same error each time.
const KlogRepeat = 10 * time.Minute

// Logr returns a logr.Logger that writes through f with scope, in f's
// format and at f's level, for libraries that log with logr, such as
// client-go through klog (klog.SetLoggerWithOptions(f.Logr("kube"),
// klog.ContextualLogger(true))). Info at V-level 0 is written at info,
// V-levels 1 to 3 at debug and higher ones at trace; errors at error.
// The error and the key/value pairs follow the message as key=value in
// text, or as fields in JSON. A line equal to one written in the last
// KlogRepeat is not written again; the next one after that says how many
// were left out, as suppressed=N.
func (f *Factory) Logr(scope string) logr.Logger {
	return logr.New(&sink{l: &logger{f: f, scope: scope}, seen: &repeats{every: KlogRepeat, last: map[string]*seen{}}})
}

// sink is the logr.LogSink of Logr.
type sink struct {
	l      *logger
	name   string
	values []any
	seen   *repeats
}

// verbosity maps a logr V-level to a pion level.
func verbosity(v int) logging.LogLevel {
	switch {
	case v <= 0:
		return logging.LogLevelInfo
	case v <= 3:
		return logging.LogLevelDebug
	}

	return logging.LogLevelTrace
}

func (s *sink) Init(logr.RuntimeInfo) {}

func (s *sink) Enabled(v int) bool { return s.l.f.level >= verbosity(v) }

func (s *sink) Info(v int, msg string, kv ...any) {
	s.write(verbosity(v), nil, msg, kv)
}

func (s *sink) Error(err error, msg string, kv ...any) {
	s.write(logging.LogLevelError, err, msg, kv)
}

func (s *sink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any(nil), s.values...), kv...)

	return &c
}

func (s *sink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		name = c.name + "/" + name
	}
	c.name = name

	return &c
}

// field is one key/value pair of a line.
type field struct {
	key   string
	value any
}

func (s *sink) write(level logging.LogLevel, err error, msg string, kv []any) {
	if s.l.f.level < level {
		return
	}
	var fields []field
	if s.name != "" {
		fields = append(fields, field{"logger", s.name})
	}
	if err != nil {
		fields = append(fields, field{"err", err})
	}
	fields = appendPairs(appendPairs(fields, s.values), kv)
	// Repeats are recognised by what the line says, less its time.
	text := renderText(msg, fields)
	n, ok := s.seen.admit(level, text, s.l.f.now())
	if !ok {
		return
	}
	if n > 0 {
		fields = append(fields, field{"suppressed", n})
		text = renderText(msg, fields)
	}
	if s.l.f.json {
		s.l.writeFields(level, msg, fields)

		return
	}
	s.l.write(level, text)
}

// appendPairs appends the pairs of kv to fields; a key that is not a
// string is written as one, and a key without a value gets a nil one.
func appendPairs(fields []field, kv []any) []field {
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok {
			key = fmt.Sprint(kv[i])
		}
		var v any
		if i+1 < len(kv) {
			v = kv[i+1]
		}
		fields = append(fields, field{key, v})
	}

	return fields
}

// plain returns v as the value to render: what a logr.Marshaler gives,
// an error's or a fmt.Stringer's text, or v itself.
func plain(v any) any {
	if m, ok := v.(logr.Marshaler); ok {
		v = m.MarshalLog()
	}
	switch x := v.(type) {
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}

	return v
}

// renderText renders a message and its fields for the text format, on
// one line: msg key=value ..., a value quoted when it has spaces,
// quotes, an equals sign or line breaks, or is empty.
func renderText(msg string, fields []field) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(msg, "\n", `\n`))
	for _, f := range fields {
		b.WriteByte(' ')
		b.WriteString(f.key)
		b.WriteByte('=')
		v := plain(f.value)
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprintf("%+v", v)
		}
		if s == "" || strings.ContainsAny(s, ` "=\`) || !strconv.CanBackquote(s) {
			s = strconv.Quote(s)
		}
		b.WriteString(s)
	}

	return b.String()
}

// reserved are the fields of every JSON line, which key/value pairs do
// not override.
var reserved = map[string]bool{"time": true, "level": true, "scope": true, "msg": true}

// writeFields writes one JSON line with msg's fields after stund's own.
func (l *logger) writeFields(level logging.LogLevel, msg string, fields []field) {
	line, _ := json.Marshal(struct {
		Time  string `json:"time"`
		Level string `json:"level"`
		Scope string `json:"scope"`
		Msg   string `json:"msg"`
	}{l.f.now().UTC().Format(time.RFC3339Nano), levelNames[level], l.scope, msg})
	line = line[:len(line)-1] // reopen the object
	for _, f := range fields {
		key := f.key
		if reserved[key] {
			key += "_"
		}
		k, _ := json.Marshal(key)
		v, err := json.Marshal(plain(f.value))
		if err != nil {
			v, _ = json.Marshal(fmt.Sprintf("%+v", f.value))
		}
		line = append(append(append(append(line, ','), k...), ':'), v...)
	}
	line = append(line, '}', '\n')
	l.f.mu.Lock()
	_, _ = l.f.w.Write(line)
	l.f.mu.Unlock()
}

// repeats remembers the lines written lately, to leave out repeats.
type repeats struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]*seen
}

// seen is when a line was last written and how often it was left out
// since.
type seen struct {
	at         time.Time
	suppressed int
}

// maxRemembered bounds the lines remembered; older ones are forgotten
// first when there are more.
const maxRemembered = 256

// admit reports whether the line text at level may be written at now,
// and how many times it was left out since it last was.
func (r *repeats) admit(level logging.LogLevel, text string, now time.Time) (suppressed int, ok bool) {
	key := levelNames[level] + " " + text
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, found := r.last[key]; found && now.Sub(s.at) < r.every {
		s.suppressed++

		return 0, false
	} else if found {
		n := s.suppressed
		*s = seen{at: now}

		return n, true
	}
	if len(r.last) >= maxRemembered {
		for k, s := range r.last {
			if now.Sub(s.at) >= r.every {
				delete(r.last, k)
			}
		}
	}
	if len(r.last) < maxRemembered {
		r.last[key] = &seen{at: now}
	}

	return 0, true
}
