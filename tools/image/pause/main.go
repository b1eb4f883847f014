// Command pause is a pod sandbox's first container: it holds the pod's
// namespaces for a kubelet and does nothing else. It sleeps until SIGINT
// or SIGTERM, then exits 0; as PID 1 of a pod that shares its process
// namespace it reaps the orphans the kernel hands it, so they do not stay
// zombies. It is the pause image of `make image`
// (docs/development.md#container-images): the job of Kubernetes'
// build/pause/linux/pause.c, in Go so that the module proxy is all it
// needs.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// Children that exited before the handler was in place sent their
	// SIGCHLD to nobody.
	reap()
	// After Notify: once this line is out, SIGTERM ends pause with 0.
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1; orphans go to this process only as the first of its PID namespace")
	}
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()

			continue
		}
		fmt.Fprintf(os.Stderr, "pause: shutting down on %v\n", s)
		os.Exit(0)
	}
}

// reap collects every child that has exited. SIGCHLDs coalesce, so one
// signal may stand for many children.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
