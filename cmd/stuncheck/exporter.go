package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pion/logging"

	"github.com/stund/stund/internal/stuncheck/exporter"
)

const exporterUsage = `Usage: stuncheck exporter [--listen ADDR] [--config FILE] [flags]

Runs as a Prometheus prober, like blackbox_exporter: each request to
/probe?target=TARGET runs one check (the verdicts of stuncheck TARGET) and
answers with metrics, so that an alert fires when a load balancer starts
rewriting client addresses.

Endpoints:
  /probe?target=T[&module=NAME][&transport=udp,tcp][&expect_ip=IP]
                         one check within the scrape's timeout
                         (X-Prometheus-Scrape-Timeout-Seconds) and the
                         module's; stuncheck_probe_success and the verdicts
  /metrics               the exporter's own metrics
  /healthz               200 while the exporter runs
  /check?target=T        the check in the visitor's browser (stuncheck web
                         writes the same page to a file)
  /                      the modules and the last probes
  POST /-/reload         reads --config again (as SIGHUP does); a refused
                         file keeps the configuration in use

Flags:
  --listen ADDR          HTTP address (default %s)
  --config FILE          YAML modules file; without it one module, default:
                         UDP and TCP, 5s, public IP from the default
                         reference servers
  --max-concurrent N     probes running at once; more wait for a free slot
                         until their timeout (default %d)
  -v, --verbose          log every probe's errors to stderr
  -h, --help             show this help

Exit codes:
  0  stopped by SIGINT or SIGTERM
  2  usage or configuration error (the message names the file's line)
  3  the exporter could not listen or serve

Examples:
  stuncheck exporter
  stuncheck exporter --config /etc/stuncheck/exporter.yml --listen 127.0.0.1:9479
  curl 'http://localhost:9479/probe?target=stun:stun.example.com&module=default'
`

// runExporter is stuncheck exporter; it returns the exit code.
func runExporter(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stuncheck exporter", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", exporter.DefaultListen, "")
	config := fs.String("config", "", "")
	maxConcurrent := fs.Int("max-concurrent", exporter.DefaultMaxConcurrent, "")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "")
	fs.BoolVar(&verbose, "verbose", false, "")
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stuncheck exporter: "+format+" (see stuncheck exporter --help)\n", a...)

		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, exporterUsage, exporter.DefaultListen, exporter.DefaultMaxConcurrent)

			return 0
		}

		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q: targets come with each /probe request", fs.Arg(0))
	}
	if *maxConcurrent <= 0 {
		return usageErr("--max-concurrent %d: must be positive", *maxConcurrent)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = stderr
	lf.DefaultLogLevel = logging.LogLevelInfo
	if verbose {
		lf.DefaultLogLevel = logging.LogLevelDebug
	}
	e, err := exporter.New(exporter.Config{ConfigFile: *config, MaxConcurrent: *maxConcurrent, LoggerFactory: lf})
	if err != nil {
		fmt.Fprintf(stderr, "stuncheck exporter: %v\n", err)

		return exitUsage
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = e.Reload() // logged; the current configuration stays
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := e.ListenAndServe(ctx, *listen, nil); err != nil {
		fmt.Fprintf(stderr, "stuncheck exporter: %v\n", err)

		return exitError
	}

	return 0
}
