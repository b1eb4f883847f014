package imagetest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pauseBin extracts the pause image's /pause.
func pauseBin(t *testing.T) string {
	t.Helper()
	s := loadSpec(t)
	img := s.image(t, "pause")
	if len(img.Config.Entrypoint) != 1 {
		t.Fatalf("pause's entrypoint %q: want one program", img.Config.Entrypoint)
	}

	return filepath.Join(extractImage(t, openImage(t, img)), img.Config.Entrypoint[0])
}

// pauseProc is a running pause and the pids its script printed.
type pauseProc struct {
	cmd  *exec.Cmd
	pids []int
	done chan error
}

// startPause runs script in sh and then execs pause in its place, so the
// children the script leaves behind become pause's. The script prints
// their pids, one a line. It returns once pause has set up its signal
// handlers (its first line on stderr).
func startPause(t *testing.T, bin, script string, children int) *pauseProc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script+"\nexec \"$0\"", bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pauseProc{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
		p.done <- cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	for range children {
		if !sc.Scan() {
			t.Fatalf("the script printed fewer than %d pids: %v", children, sc.Err())
		}
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("the script printed %q, not a pid", sc.Text())
		}
		p.pids = append(p.pids, pid)
	}
	select {
	case line := <-ready:
		t.Logf("pause: %s", line)
	case err := <-p.done:
		p.done <- err
		t.Fatalf("pause ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("pause wrote nothing to stderr in 10s")
	}

	return p
}

// stop sends sig and returns pause's exit code.
func (p *pauseProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var exit *exec.ExitError
		if err == nil {
			return 0
		}
		if errors.As(err, &exit) {
			t.Logf("pause: %v", exit)

			return exit.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatalf("pause still runs 10s after %v", sig)
	}

	return -1
}

// TestPauseSignals checks that pause exits 0 on SIGTERM and SIGINT, what a
// container runtime sends to stop a sandbox.
func TestPauseSignals(t *testing.T) {
	bin := pauseBin(t)
	for name, sig := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT} {
		t.Run(name, func(t *testing.T) {
			p := startPause(t, bin, ":", 0)
			if code := p.stop(t, sig); code != 0 {
				t.Errorf("exit code %d after %v, want 0", code, sig)
			}
		})
	}
}

// procState returns the state letter of /proc/PID/stat ("Z" for a
// zombie), or "" when the process is gone.
func procState(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	// pid (comm) state …; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(raw), ')')
	if f := strings.Fields(string(raw[i+1:])); i >= 0 && len(f) > 0 {
		return f[0], nil
	}

	return "", fmt.Errorf("/proc/%d/stat: %q", pid, raw)
}

// TestPauseReaps gives pause children that exit before and after it
// starts, as orphans are handed to PID 1 in a pod that shares its process
// namespace, and checks that none stays a zombie.
func TestPauseReaps(t *testing.T) {
	bin := pauseBin(t)
	script := `for d in 0 0 0.2 0.4 0.6; do sleep "$d" >/dev/null 2>&1 & echo "$!"; done`
	p := startPause(t, bin, script, 5)
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range p.pids {
		for {
			state, err := procState(pid)
			if err != nil {
				t.Fatal(err)
			}
			if state == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("child %d of pause is still there in state %s: not reaped", pid, state)

				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
