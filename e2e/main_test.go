//go:build e2e

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin holds the stund and stuncheck binaries built once for the whole run.
var bin struct {
	dir    string
	errors map[string]error // per command, why it did not build
}

func TestMain(m *testing.M) {
	flag.Parse()

	// t.Cleanup does not run on an interrupt or when -timeout fires, so the
	// registry removes the lab's namespaces then.
	buildCtx, stopBuild := context.WithCancel(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigc
		stopBuild()
		removed := registry.removeAll()
		if bin.dir != "" {
			os.RemoveAll(bin.dir)
		}
		fmt.Fprintf(os.Stderr, "e2e: %v: stopped the lab, removed %d namespaces\n", s, len(removed))
		os.Exit(130)
	}()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 10*time.Second {
			time.AfterFunc(d-5*time.Second, func() {
				removed := registry.removeAll()
				fmt.Fprintf(os.Stderr, "e2e: about to time out: removed %d namespaces\n", len(removed))
			})
		}
	}

	code := func() int {
		dir, err := os.MkdirTemp("", "stund-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.dir = dir
		bin.errors = build(buildCtx, dir, "stund", "stuncheck")
		return m.Run()
	}()
	if removed := registry.removeAll(); len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: removed namespaces left behind: %s\n", strings.Join(removed, " "))
	}
	os.Exit(code)
}

// build compiles ./cmd/<name> for each name into dir and returns why each
// one that failed did.
func build(ctx context.Context, dir string, names ...string) map[string]error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	errs := map[string]error{}
	for _, name := range names {
		cmd := exec.CommandContext(ctx, goCmd, "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = ".." // the module root; go test runs in e2e/
		if out, err := cmd.CombinedOutput(); err != nil {
			errs[name] = fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	}
	return errs
}

// binPath returns the path of a built command, failing the test if it did not
// build.
func binPath(t testing.TB, name string) string {
	t.Helper()
	if err := bin.errors[name]; err != nil {
		t.Fatal(err)
	}
	return filepath.Join(bin.dir, name)
}
