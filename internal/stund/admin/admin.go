// Package admin serves stund's operational HTTP endpoints: liveness
// (/healthz), readiness (/readyz) and Prometheus metrics (/metrics).
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMaxConns is the default cap on open admin connections: probes
// and a scraper or two need a handful.
const DefaultMaxConns = 64

// Timeouts of the admin server: a client gets this long to send its
// request headers, its whole request, to take the answer, and between
// keep-alive requests. /metrics is the slowest answer, and small.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 30 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Config configures a Server.
type Config struct {
	// Listen is the HTTP address, host:port.
	Listen string
	// Gatherer provides /metrics; nil serves the default registry.
	Gatherer prometheus.Gatherer
	// MaxConns caps the open connections; zero means DefaultMaxConns.
	// At the cap a new connection closes the one idle the longest (see
	// capListener), so idle clients cannot lock out health probes.
	MaxConns int
	// LoggerFactory creates the logger; nil means pion's default.
	LoggerFactory logging.LoggerFactory
}

// Server is the admin HTTP server. It starts not ready; the caller marks it
// ready once the STUN listeners are up and unready when draining.
type Server struct {
	cfg   Config
	log   logging.LeveledLogger
	ready atomic.Bool
	ln    *capListener
	srv   *http.Server
	done  chan error
}

// New returns an admin server that is not yet listening.
func New(cfg Config) *Server {
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	s := &Server{cfg: cfg, log: cfg.LoggerFactory.NewLogger("admin"), done: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}

	return s
}

// Handler returns the endpoints as one http.Handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)

			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))

	return mux
}

// SetReady sets what /readyz answers: 200 when ready, 503 otherwise.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Start binds the listener and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", s.cfg.Listen, err)
	}
	s.ln = newCapListener(ln, s.cfg.MaxConns)
	s.srv.ConnState = s.ln.track
	s.log.Infof("http listening %s", ln.Addr())
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()

	return nil
}

// Addr returns the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}

	return s.ln.Addr()
}

// Shutdown stops accepting requests and waits for those in flight, up to
// ctx's deadline; connections still open then are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		if ctx.Err() == nil {
			return fmt.Errorf("shutdown http %s: %w", s.ln.Addr(), err)
		}
		s.log.Warnf("http %s: closing connections still busy at shutdown", s.ln.Addr())
		if err := s.srv.Close(); err != nil {
			return fmt.Errorf("close http %s: %w", s.ln.Addr(), err)
		}
	}

	return <-s.done
}
