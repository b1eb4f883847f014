// Command image writes stund's container images as docker-archive
// tarballs without a container engine: stund, stund's debug image and a
// pause image, as images.json describes them. `make image` builds the
// binaries and runs it; see docs/development.md#container-images.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const usage = `image: writes stund's container images as docker-archive tarballs, without
a container engine: one tarball per image of images.json (stund, its debug
image with busybox, a pause image), loadable with docker load, podman load and
ctr -n k8s.io images import. Every file, layer and image carries the --epoch
time and every entry a fixed owner and mode, so the same inputs give
byte-identical tarballs. It prints one line per tarball: path, tag, image ID.

Usage (make image runs it):
  cd tools/image && go run . --bin DIR --version VERSION [flags]

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var (
		o     options
		epoch string
	)
	fs.StringVar(&o.bin, "bin", "", "`dir`ectory holding the static linux binaries the images take from bin/NAME: stund, stuncheck and pause (required)")
	fs.StringVar(&o.version, "version", "", "stund's `version`: the stund images' tag and every image's org.opencontainers.image.version label (required)")
	fs.StringVar(&o.out, "out", "bin/image", "`dir`ectory the tarballs are written to")
	fs.StringVar(&o.repository, "repository", "ghcr.io/stund/stund", "`repository` of the stund images, tagged VERSION and VERSION-debug")
	fs.StringVar(&o.pauseTag, "pause-tag", "stund.local/pause:3.10", "`reference` the pause image is tagged with")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "static busybox `file` for the debug image (Debian's busybox-static); it runs once to list its applets")
	fs.StringVar(&o.caCerts, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle `file` for /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates)")
	fs.StringVar(&epoch, "epoch", "", "`seconds` since 1970 for every timestamp in the images (default $SOURCE_DATE_EPOCH, else 0)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = io.WriteString(stdout, usage)
			printFlags(stdout, fs)

			return 0
		}
		_, _ = fmt.Fprintf(stderr, "image: %v (see --help)\n", err)

		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "image: unexpected argument %q (see --help)\n", fs.Arg(0))

		return 2
	}
	if o.bin == "" || o.version == "" {
		_, _ = fmt.Fprintln(stderr, "image: --bin and --version are required (see --help)")

		return 2
	}
	if epoch == "" {
		epoch = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || n < 0 {
			_, _ = fmt.Fprintf(stderr, "image: epoch %q is not a number of seconds since 1970\n", epoch)

			return 2
		}
		o.epoch = n
	}

	spec, err := loadSpec(specJSON)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "image: %v\n", err)

		return 1
	}
	results, err := build(spec, o)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "image: %v\n", err)

		return 1
	}
	report(stdout, results)

	return 0
}

// printFlags lists the flags GNU style (--name), as stund's --help does.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + strings.ToUpper(name)
		}
		_, _ = fmt.Fprintf(w, "%s\n      %s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(usage, "(default") {
			_, _ = fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		_, _ = fmt.Fprintln(w)
	})
}
