package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExporterRefusesBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "exporter.yml")
	if err := os.WriteFile(cfg, []byte("modules:\n  default:\n    timeout: 3s\n    transport: [udp]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := stuncheck(t, nil, "exporter", "--config", cfg, "--listen", "127.0.0.1:0")
	if r.code != exitUsage || !strings.Contains(r.stderr, cfg+":4: unknown key \"transport\"") {
		t.Errorf("exit %d, stderr %q: want 2 naming line 4", r.code, r.stderr)
	}
	for _, args := range [][]string{{"exporter", "target"}, {"exporter", "--max-concurrent", "0"}, {"exporter", "--nope"}} {
		if r := stuncheck(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2: %s", args, r.code, r.stderr)
		}
	}
}

// TestExporterServesAndReloads runs the exporter: a refused file on
// SIGHUP keeps the old modules, SIGTERM stops it with exit 0.
func TestExporterServesAndReloads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "exporter.yml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("modules:\n  default: {timeout: 1s, expect_ip: [203.0.113.10]}\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "exporter", "--listen", addr, "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)

		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get("/healthz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz after 20s: %s", stderr.String())
		}
	}
	write("modules:\n  default: {timeout: forever}\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, m := get("/metrics"); strings.Contains(m, "stuncheck_exporter_config_last_reload_successful 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP with a bad file: the reload did not fail")
		}
	}
	if _, page := get("/"); !strings.Contains(page, "203.0.113.10") {
		t.Errorf("the old modules are gone after a refused reload:\n%s", page)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "exporter.yml:2:") {
		t.Errorf("the log does not name the refused line:\n%s", stderr.String())
	}
}
