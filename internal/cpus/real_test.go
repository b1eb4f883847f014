//go:build linux

package cpus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUsableHere checks Usable on this machine against sched_getaffinity.
func TestUsableHere(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	got := Usable()
	t.Logf("Usable() = %s; GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	if got.Affinity != set.Count() {
		t.Errorf("Affinity = %d, sched_getaffinity counts %d", got.Affinity, set.Count())
	}
	if got.N < 1 || got.N > got.Affinity {
		t.Errorf("N = %d, want between 1 and Affinity %d", got.N, got.Affinity)
	}
	if (got.Limit > 0) != (got.LimitFile != "") {
		t.Errorf("Limit %v with LimitFile %q", got.Limit, got.LimitFile)
	}
}

// Environment of the helper that TestUsableInCgroup runs inside a cgroup.
const (
	helperEnv    = "STUND_CPUS_HELPER"
	helperCgroup = "STUND_CPUS_CGROUP"
	helperMarker = "USABLE "
)

// helperReport is what the helper prints after helperMarker.
type helperReport struct {
	Info       Info
	GOMAXPROCS int
}

// TestUsableInCgroup creates a child cgroup limited to 1 CPU, in the v1 cpu
// hierarchy and in a cgroup2 hierarchy with the cpu controller, runs this
// test binary inside it and checks what Usable says there. It needs root
// and a writable cgroup file system.
func TestUsableInCgroup(t *testing.T) {
	if os.Getenv(helperEnv) == "1" {
		report, err := json.Marshal(helperReport{Info: Usable(), GOMAXPROCS: runtime.GOMAXPROCS(0)})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s%s\n", helperMarker, report)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot create a cgroup")
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	mounts := parseMountinfo(string(mountinfo))
	ran := false
	t.Run("v2", func(t *testing.T) {
		point, why := cgroup2WithCPU(mounts)
		if point == "" {
			t.Skip(why)
		}
		ran = true
		runInCgroup(t, point, "cpu.max", map[string]string{"cpu.max": "100000 100000"})
	})
	t.Run("v1", func(t *testing.T) {
		i := slices.IndexFunc(mounts, func(m mount) bool {
			return m.fstype == "cgroup" && slices.Contains(m.options, "cpu")
		})
		if i < 0 {
			t.Skip("no cgroup v1 file system with the cpu controller in /proc/self/mountinfo")
		}
		ran = true
		runInCgroup(t, mounts[i].point, "cpu.cfs_quota_us", map[string]string{
			"cpu.cfs_period_us": "100000",
			"cpu.cfs_quota_us":  "100000",
		})
	})
	if !ran {
		t.Skip("no cgroup file system with the cpu controller")
	}
}

// cgroup2WithCPU is the mount point of a cgroup2 file system whose root
// hands the cpu controller to its children, or "" and why not.
func cgroup2WithCPU(mounts []mount) (point, why string) {
	why = "no cgroup2 file system in /proc/self/mountinfo"
	for _, m := range mounts {
		if m.fstype != "cgroup2" {
			continue
		}
		control, err := os.ReadFile(filepath.Join(m.point, "cgroup.subtree_control"))
		if err != nil {
			why = fmt.Sprintf("cgroup2 at %s: %v", m.point, err)
			continue
		}
		if !slices.Contains(strings.Fields(string(control)), "cpu") {
			why = fmt.Sprintf("cgroup2 at %s does not hand the cpu controller to its children (cgroup.subtree_control: %q)", m.point, strings.TrimSpace(string(control)))
			continue
		}
		return m.point, ""
	}
	return "", why
}

// runInCgroup makes a child cgroup of parent, writes files into it, runs
// this test binary's helper inside it and checks that Usable there finds the
// limit of 1 CPU in the child's limitFile. The cgroup is removed afterwards.
func runInCgroup(t *testing.T, parent, limitFile string, files map[string]string) {
	dir := filepath.Join(parent, fmt.Sprintf("stund-cpus-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", parent, err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	// The period first: v1 refuses a quota checked against an old period.
	for _, name := range []string{"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.max"} {
		if value, ok := files[name]; ok {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644); err != nil {
				t.Fatalf("write %s: %v", name, err)
			}
		}
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `echo $$ > "$`+helperCgroup+`/cgroup.procs" && exec "$0" "$@"`,
		bin, "-test.run=^TestUsableInCgroup$", "-test.count=1")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	cmd.Env = append(env, helperEnv+"=1", helperCgroup+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper in %s: %v\n%s", dir, err, out)
	}
	var report helperReport
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, helperMarker); ok {
			if err := json.Unmarshal([]byte(rest), &report); err != nil {
				t.Fatalf("helper printed %q: %v", line, err)
			}
		}
	}
	got := report.Info
	t.Logf("in %s: Usable() = %s; the runtime's GOMAXPROCS %d", dir, got, report.GOMAXPROCS)
	if got.Affinity < 1 {
		t.Fatalf("helper printed no report:\n%s", out)
	}
	if got.N != 1 || got.Limit != 1 {
		t.Errorf("N = %d, Limit = %v, want 1 and 1", got.N, got.Limit)
	}
	if want := filepath.Join(dir, limitFile); got.LimitFile != want {
		t.Errorf("LimitFile = %q, want %q", got.LimitFile, want)
	}
}

// removeCgroup removes the test's cgroup, waiting a little for the kernel to
// see its last process gone.
func removeCgroup(t *testing.T, dir string) {
	var err error
	for range 50 {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", dir, err)
}
