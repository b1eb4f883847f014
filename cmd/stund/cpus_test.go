package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stund/stund/internal/cpus"
)

// udpSocketsOn counts the UDP sockets of process pid bound to port.
func udpSocketsOn(t *testing.T, pid, port int) int {
	t.Helper()
	n := 0
	for _, name := range []string{"udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			t.Fatal(err)
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			if len(fields) > 1 && strings.HasSuffix(fields[1], fmt.Sprintf(":%04X", port)) {
				n++
			}
		}
		_ = f.Close()
	}

	return n
}

var listeningUDP = regexp.MustCompile(`listening udp 127\.0\.0\.1:(\d+)`)

// startCounting starts cmd (stund on a free port), waits until it is
// ready and returns how many UDP sockets it bound, and its log.
func startCounting(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	p := startCommand(t, cmd, nil)
	port, err := strconv.Atoi(p.waitLog(t, listeningUDP))
	if err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, regexp.MustCompile(`stund (\S+) ready`))

	return udpSocketsOn(t, cmd.Process.Pid, port), p.log()
}

// TestUDPSocketsFollowUsableCPUs runs the binary with all the CPUs this
// test may use and confined to one: by default it binds one UDP socket
// per CPU it may keep busy, and warns when told to bind more.
func TestUDPSocketsFollowUsableCPUs(t *testing.T) {
	usable := cpus.Usable()
	args := []string{"--listen", "127.0.0.1:0", "--http-listen", ""}

	n, log := startCounting(t, exec.Command(binary, args...))
	if n != usable.N {
		t.Errorf("%d UDP sockets with %s usable CPUs, want one per CPU\n%s", n, usable, log)
	}

	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("taskset (Debian package util-linux) is not installed")
	}
	if usable.N < 2 {
		t.Skipf("one usable CPU only (%s): confining stund to one would show nothing", usable)
	}
	n, log = startCounting(t, exec.Command(taskset, append([]string{"-c", "0", binary}, args...)...))
	if n != 1 {
		t.Errorf("confined to CPU 0: %d UDP sockets, want 1\n%s", n, log)
	}
	if strings.Contains(log, "WARN") {
		t.Errorf("confined to CPU 0 with the default sockets: a warning\n%s", log)
	}

	more := strconv.Itoa(usable.N + 1)
	p := startCommand(t, exec.Command(binary, append(args, "--udp-sockets", more)...), nil)
	p.waitLog(t, regexp.MustCompile(`WARN .*--udp-sockets (`+more+`): more workers per address than the CPUs this process may keep busy`))
}
