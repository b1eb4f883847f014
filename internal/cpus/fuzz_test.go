package cpus

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzUsable writes /proc/self/cgroup, /proc/self/mountinfo, a cpu.max at
// /sys/fs/cgroup and a v1 quota and period at /sys/fs/cgroup/cpu under a
// fake root and checks that usable never panics and keeps its promises.
func FuzzUsable(f *testing.F) {
	f.Add("0::/\n", mountV2, "150000 100000\n", "-1", "100000")
	f.Add("4:cpu,cpuacct:/\n0::/\n", "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n"+mountV2, "max 100000", "50000", "100000")
	f.Add("0::/a/../..\n", `1 2 0:1 /a\040b /sys/fs/cgroup rw - cgroup2 x rw`, "1 1 1", "x", "0")
	f.Fuzz(func(t *testing.T, cgroup, mountinfo, cpuMax, quota, period string) {
		root := t.TempDir()
		for name, content := range map[string]string{
			"proc/self/cgroup":                    cgroup,
			"proc/self/mountinfo":                 mountinfo,
			"sys/fs/cgroup/cpu.max":               cpuMax,
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  quota,
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": period,
		} {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got := usable(root, 3)
		if got.N < 1 || got.N > 3 || got.Affinity != 3 {
			t.Errorf("usable = %+v: N out of 1..3 or Affinity changed", got)
		}
		if got.Limit < 0 || (got.Limit > 0) != (got.LimitFile != "") {
			t.Errorf("usable = %+v: Limit and LimitFile disagree", got)
		}
		if got.Limit > 0 && got.Limit < 3 && float64(got.N) > got.Limit && got.N != 1 {
			t.Errorf("usable = %+v: N above the limit", got)
		}
	})
}
