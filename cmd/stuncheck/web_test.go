package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stund/stund/internal/stuncheck/web"
)

// TestWeb: stuncheck web writes the page the exporter serves at /check.
func TestWeb(t *testing.T) {
	want, err := web.Page()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "check.html")
	if r := stuncheck(t, nil, "web", "--out", out); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("the written page differs from web.Page()")
	}
	if r := stuncheck(t, nil, "web", "--out", "-"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("--out -: exit %d, %d bytes, want the page", r.code, len(r.stdout))
	}
	for _, args := range [][]string{{"web"}, {"web", "--out", out, "stun:x"}, {"web", "--nope"}} {
		if r := stuncheck(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, exitUsage)
		}
	}
}
