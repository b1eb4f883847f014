// Package logs builds the pion/logging LoggerFactory of the commands: one
// line per message, as text or JSON, at a chosen level.
package logs

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
)

// Formats accepted by New.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ParseLevel turns a level name (trace, debug, info, warn, error,
// disabled) into a pion log level.
func ParseLevel(name string) (logging.LogLevel, error) {
	switch strings.ToLower(name) {
	case "trace":
		return logging.LogLevelTrace, nil
	case "debug":
		return logging.LogLevelDebug, nil
	case "info", "":
		return logging.LogLevelInfo, nil
	case "warn", "warning":
		return logging.LogLevelWarn, nil
	case "error":
		return logging.LogLevelError, nil
	case "disabled", "off", "none":
		return logging.LogLevelDisabled, nil
	}

	return 0, fmt.Errorf("unknown log level %q (want trace, debug, info, warn, error or disabled)", name)
}

// Factory creates loggers that write one line per message to one writer.
type Factory struct {
	level logging.LogLevel
	json  bool
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
}

// New returns a Factory writing at level and above to w in format.
func New(w io.Writer, format string, level logging.LogLevel) (*Factory, error) {
	switch format {
	case FormatText, "":
		return &Factory{w: w, level: level, now: time.Now}, nil
	case FormatJSON:
		return &Factory{w: w, level: level, json: true, now: time.Now}, nil
	}

	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

// NewLogger implements logging.LoggerFactory.
func (f *Factory) NewLogger(scope string) logging.LeveledLogger {
	return &logger{f: f, scope: scope}
}

type logger struct {
	f     *Factory
	scope string
}

var levelNames = map[logging.LogLevel]string{
	logging.LogLevelTrace: "trace",
	logging.LogLevelDebug: "debug",
	logging.LogLevelInfo:  "info",
	logging.LogLevelWarn:  "warn",
	logging.LogLevelError: "error",
}

func (l *logger) write(level logging.LogLevel, msg string) {
	if l.f.level < level {
		return
	}
	ts := l.f.now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if l.f.json {
		line, _ = json.Marshal(struct {
			Time  string `json:"time"`
			Level string `json:"level"`
			Scope string `json:"scope"`
			Msg   string `json:"msg"`
		}{ts, levelNames[level], l.scope, msg})
	} else {
		line = fmt.Appendf(nil, "%s %-5s %s: %s", ts, strings.ToUpper(levelNames[level]), l.scope, msg)
	}
	line = append(line, '\n')
	l.f.mu.Lock()
	_, _ = l.f.w.Write(line)
	l.f.mu.Unlock()
}

// DebugEnabled reports whether debug messages are written, so hot paths
// can skip formatting them.
func (l *logger) DebugEnabled() bool { return l.f.level >= logging.LogLevelDebug }

func (l *logger) Trace(msg string) { l.write(logging.LogLevelTrace, msg) }
func (l *logger) Tracef(format string, args ...any) {
	if l.f.level >= logging.LogLevelTrace {
		l.write(logging.LogLevelTrace, fmt.Sprintf(format, args...))
	}
}
func (l *logger) Debug(msg string) { l.write(logging.LogLevelDebug, msg) }
func (l *logger) Debugf(format string, args ...any) {
	if l.f.level >= logging.LogLevelDebug {
		l.write(logging.LogLevelDebug, fmt.Sprintf(format, args...))
	}
}
func (l *logger) Info(msg string) { l.write(logging.LogLevelInfo, msg) }
func (l *logger) Infof(format string, args ...any) {
	l.write(logging.LogLevelInfo, fmt.Sprintf(format, args...))
}
func (l *logger) Warn(msg string) { l.write(logging.LogLevelWarn, msg) }
func (l *logger) Warnf(format string, args ...any) {
	l.write(logging.LogLevelWarn, fmt.Sprintf(format, args...))
}
func (l *logger) Error(msg string) { l.write(logging.LogLevelError, msg) }
func (l *logger) Errorf(format string, args ...any) {
	l.write(logging.LogLevelError, fmt.Sprintf(format, args...))
}
