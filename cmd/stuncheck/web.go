package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/stund/stund/internal/stuncheck/web"
)

const webUsage = `Usage: stuncheck web --out FILE

Writes the browser check, the page stuncheck exporter serves at /check, as
one self-contained HTML file: no scripts, styles or fonts from elsewhere.
Open it from disk (file://) or put it on any static host. In the browser
it gathers ICE candidates over UDP with the servers in its query string
and judges them as stuncheck does:

  check.html?target=stun:HOST:PORT[&target=turn:HOST:PORT...]
            [&reference=stun:HOST:PORT...][&expect_ip=IP]

It contacts no server but those named. TURN credentials are typed into
the page's form; they go to the TURN server only.

Flags:
  --out FILE             where to write the page; - is standard output
  -h, --help             show this help

Exit codes:
  0  written
  2  usage error
  3  the file could not be written

Example:
  stuncheck web --out check.html
  xdg-open 'check.html?target=stun:stun.example.com:3478&expect_ip=203.0.113.10'
`

// runWeb is stuncheck web; it returns the exit code.
func runWeb(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stuncheck web", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "")
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "stuncheck web: "+format+" (see stuncheck web --help)\n", a...)

		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, webUsage)

			return 0
		}

		return usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q: targets go in the page's query string", fs.Arg(0))
	}
	if *out == "" {
		return usageErr("--out FILE is required")
	}
	page, err := web.Page()
	if err != nil {
		fmt.Fprintf(stderr, "stuncheck web: %v\n", err)

		return exitError
	}
	if *out == "-" {
		if _, err := stdout.Write(page); err != nil {
			fmt.Fprintf(stderr, "stuncheck web: write the page: %v\n", err)

			return exitError
		}

		return 0
	}
	if err := os.WriteFile(*out, page, 0o644); err != nil { //nolint:gosec // a web page, for reading
		fmt.Fprintf(stderr, "stuncheck web: %v\n", err)

		return exitError
	}

	return 0
}
