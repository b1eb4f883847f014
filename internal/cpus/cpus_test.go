package cpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Lines of /proc/self/mountinfo for the trees below.
const (
	mountV2       = "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	mountV1CPU    = "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
	mountV1Mem    = "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	mountV1Acct   = "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	mountUnified  = "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	mountProc     = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
	mountV1CPUPod = "31 30 0:28 /kubepods/pod1/c1 /sys/fs/cgroup/cpu,cpuacct ro,relatime master:9 - cgroup cgroup rw,cpu,cpuacct\n"
	cgroupV1Pod   = "5:memory:/kubepods/pod1/c1\n4:cpu,cpuacct:/kubepods/pod1/c1\n1:name=systemd:/kubepods/pod1/c1\n"
	v1Dir         = "sys/fs/cgroup/cpu,cpuacct"
)

// v1Files are the cpu.cfs files of a v1 cgroup directory under the fake root.
func v1Files(dir, quota, period string) map[string]string {
	return map[string]string{
		dir + "/cpu.cfs_quota_us":  quota + "\n",
		dir + "/cpu.cfs_period_us": period + "\n",
	}
}

// merge makes one tree of several.
func merge(trees ...map[string]string) map[string]string {
	all := map[string]string{}
	for _, t := range trees {
		for k, v := range t {
			all[k] = v
		}
	}
	return all
}

// writeTree writes files (paths relative to root) under a new temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestUsable(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		affinity int
		want     Info
	}{
		{
			name:     "no cgroup files at all",
			files:    map[string]string{},
			affinity: 4,
			want:     Info{N: 4, Affinity: 4},
		},
		{
			name: "v2 root without a limit",
			files: map[string]string{
				"proc/self/cgroup":       "0::/\n",
				"proc/self/mountinfo":    mountProc + mountV2,
				"sys/fs/cgroup/cpu.max":  "max 100000\n",
				"sys/fs/cgroup/cpu.stat": "usage_usec 1\n",
			},
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name: "v2 container namespace root with a limit",
			files: map[string]string{
				"proc/self/cgroup":      "0::/\n",
				"proc/self/mountinfo":   mountV2,
				"sys/fs/cgroup/cpu.max": "200000 100000\n",
			},
			affinity: 8,
			want:     Info{N: 2, Affinity: 8, Limit: 2, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "v2 nested, limit 1.5 on the process's cgroup",
			files: map[string]string{
				"proc/self/cgroup":                             "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo":                          mountProc + mountV2,
				"sys/fs/cgroup/kubepods.slice/cpu.max":         "max 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/cpu.max":    "max 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/c1/cpu.max": "150000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 1.5, LimitFile: "/sys/fs/cgroup/kubepods.slice/pod1/c1/cpu.max"},
		},
		{
			name: "v2 limit on the parent only",
			files: map[string]string{
				"proc/self/cgroup":                             "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo":                          mountV2,
				"sys/fs/cgroup/kubepods.slice/cpu.max":         "max 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/cpu.max":    "300000 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/c1/cpu.max": "max 100000\n",
			},
			affinity: 4,
			want:     Info{N: 3, Affinity: 4, Limit: 3, LimitFile: "/sys/fs/cgroup/kubepods.slice/pod1/cpu.max"},
		},
		{
			name: "v2 the smaller of the child's and the parent's limits",
			files: map[string]string{
				"proc/self/cgroup":                             "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo":                          mountV2,
				"sys/fs/cgroup/kubepods.slice/cpu.max":         "400000 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/cpu.max":    "250000 100000\n",
				"sys/fs/cgroup/kubepods.slice/pod1/c1/cpu.max": "600000 100000\n",
			},
			affinity: 8,
			want:     Info{N: 2, Affinity: 8, Limit: 2.5, LimitFile: "/sys/fs/cgroup/kubepods.slice/pod1/cpu.max"},
		},
		{
			name: "v2 mount root is the container's cgroup",
			files: map[string]string{
				"proc/self/cgroup":      "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo":   "30 22 0:27 /kubepods.slice/pod1/c1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
				"sys/fs/cgroup/cpu.max": "100000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 1, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "v2 path outside the cgroup namespace is ignored",
			files: map[string]string{
				"proc/self/cgroup":      "0::/../../other\n",
				"proc/self/mountinfo":   mountV2,
				"sys/fs/cgroup/cpu.max": "100000 100000\n",
				"sys/fs/other/cpu.max":  "100000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name: "v2 path outside the mount root is ignored",
			files: map[string]string{
				"proc/self/cgroup":      "0::/system.slice/other\n",
				"proc/self/mountinfo":   "30 22 0:27 /kubepods.slice/pod1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
				"sys/fs/cgroup/cpu.max": "100000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name: "v1 cpu,cpuacct, container view (mount root is the container's cgroup)",
			files: merge(map[string]string{
				"proc/self/cgroup":    cgroupV1Pod,
				"proc/self/mountinfo": mountProc + mountV1Mem + mountV1CPUPod,
			}, v1Files(v1Dir, "100000", "100000")),
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 1, LimitFile: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"},
		},
		{
			name: "v1 cpu,cpuacct, host view (mount root /), limit on the container",
			files: merge(map[string]string{
				"proc/self/cgroup":    cgroupV1Pod,
				"proc/self/mountinfo": mountV1Mem + mountV1CPU + mountUnified,
			},
				v1Files(v1Dir, "-1", "100000"),
				v1Files(v1Dir+"/kubepods", "-1", "100000"),
				v1Files(v1Dir+"/kubepods/pod1", "-1", "100000"),
				v1Files(v1Dir+"/kubepods/pod1/c1", "50000", "100000"),
			),
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 0.5, LimitFile: "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_quota_us"},
		},
		{
			name: "v1 host view, limit on the pod only",
			files: merge(map[string]string{
				"proc/self/cgroup":    cgroupV1Pod,
				"proc/self/mountinfo": mountV1CPU,
			},
				v1Files(v1Dir, "-1", "100000"),
				v1Files(v1Dir+"/kubepods", "-1", "100000"),
				v1Files(v1Dir+"/kubepods/pod1", "150000", "50000"),
				v1Files(v1Dir+"/kubepods/pod1/c1", "-1", "100000"),
			),
			affinity: 4,
			want:     Info{N: 3, Affinity: 4, Limit: 3, LimitFile: "/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us"},
		},
		{
			name: "v1 quota -1",
			files: merge(map[string]string{
				"proc/self/cgroup":    cgroupV1Pod,
				"proc/self/mountinfo": mountV1CPUPod,
			}, v1Files(v1Dir, "-1", "100000")),
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name: "v1 cpu alone, cpuacct mounted elsewhere",
			files: merge(map[string]string{
				"proc/self/cgroup":    "3:cpuacct:/\n2:cpu:/job\n0::/\n",
				"proc/self/mountinfo": mountV1Acct + "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n" + mountUnified,
			},
				v1Files("sys/fs/cgroup/cpuacct/job", "100000", "100000"),
				v1Files("sys/fs/cgroup/cpu/job", "200000", "100000"),
			),
			affinity: 4,
			want:     Info{N: 2, Affinity: 4, Limit: 2, LimitFile: "/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us"},
		},
		{
			name: "limit 0.5 still leaves one CPU",
			files: map[string]string{
				"proc/self/cgroup":      "0::/\n",
				"proc/self/mountinfo":   mountV2,
				"sys/fs/cgroup/cpu.max": "50000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 0.5, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "limit 8 above an affinity of 2",
			files: map[string]string{
				"proc/self/cgroup":      "0::/\n",
				"proc/self/mountinfo":   mountV2,
				"sys/fs/cgroup/cpu.max": "800000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 2, Affinity: 2, Limit: 8, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "hybrid: v2 without cpu.max, v1 cpu with a limit",
			files: merge(map[string]string{
				"proc/self/cgroup":    "4:cpu,cpuacct:/job\n0::/job\n",
				"proc/self/mountinfo": mountV1CPU + mountUnified,
			}, v1Files(v1Dir+"/job", "100000", "100000")),
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 1, LimitFile: "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us"},
		},
		{
			name: "both versions limit: the smaller wins (v1)",
			files: merge(map[string]string{
				"proc/self/cgroup":                  "4:cpu,cpuacct:/job\n0::/job\n",
				"proc/self/mountinfo":               mountV1CPU + mountUnified,
				"sys/fs/cgroup/unified/job/cpu.max": "300000 100000\n",
			}, v1Files(v1Dir+"/job", "200000", "100000")),
			affinity: 4,
			want:     Info{N: 2, Affinity: 4, Limit: 2, LimitFile: "/sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us"},
		},
		{
			name: "both versions limit: the smaller wins (v2)",
			files: merge(map[string]string{
				"proc/self/cgroup":                  "4:cpu,cpuacct:/job\n0::/job\n",
				"proc/self/mountinfo":               mountV1CPU + mountUnified,
				"sys/fs/cgroup/unified/job/cpu.max": "100000 100000\n",
			}, v1Files(v1Dir+"/job", "200000", "100000")),
			affinity: 4,
			want:     Info{N: 1, Affinity: 4, Limit: 1, LimitFile: "/sys/fs/cgroup/unified/job/cpu.max"},
		},
		{
			name: "mount point with a space (mountinfo escape)",
			files: map[string]string{
				"proc/self/cgroup":         "0::/\n",
				"proc/self/mountinfo":      `30 22 0:27 / /sys/fs/my\040cgroup rw - cgroup2 cgroup2 rw` + "\n",
				"sys/fs/my cgroup/cpu.max": "100000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 1, Affinity: 2, Limit: 1, LimitFile: "/sys/fs/my cgroup/cpu.max"},
		},
		{
			name: "two mounts of the v2 hierarchy: the deepest root holding the cgroup wins",
			files: map[string]string{
				"proc/self/cgroup": "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo": "30 22 0:27 / /host/cgroup rw - cgroup2 cgroup2 rw\n" +
					"31 22 0:27 /kubepods.slice/pod1/c1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n" +
					"32 22 0:27 /system.slice /sys/fs/system rw - cgroup2 cgroup2 rw\n",
				"host/cgroup/kubepods.slice/pod1/c1/cpu.max": "400000 100000\n",
				"sys/fs/cgroup/cpu.max":                      "200000 100000\n",
			},
			affinity: 4,
			want:     Info{N: 2, Affinity: 4, Limit: 2, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "two mounts of the v2 hierarchy: the deepest root holding the cgroup wins, listed first",
			files: map[string]string{
				"proc/self/cgroup": "0::/kubepods.slice/pod1/c1\n",
				"proc/self/mountinfo": "31 22 0:27 /kubepods.slice/pod1/c1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n" +
					"30 22 0:27 / /host/cgroup rw - cgroup2 cgroup2 rw\n" +
					"32 22 0:27 /system.slice /sys/fs/system rw - cgroup2 cgroup2 rw\n",
				"host/cgroup/kubepods.slice/pod1/c1/cpu.max": "400000 100000\n",
				"sys/fs/cgroup/cpu.max":                      "200000 100000\n",
			},
			affinity: 4,
			want:     Info{N: 2, Affinity: 4, Limit: 2, LimitFile: "/sys/fs/cgroup/cpu.max"},
		},
		{
			name: "no mountinfo",
			files: map[string]string{
				"proc/self/cgroup":      "0::/\n",
				"sys/fs/cgroup/cpu.max": "100000 100000\n",
			},
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name: "v1 cpuacct only: not the cpu controller",
			files: merge(map[string]string{
				"proc/self/cgroup":    "3:cpuacct:/\n",
				"proc/self/mountinfo": mountV1Acct,
			}, v1Files("sys/fs/cgroup/cpuacct", "100000", "100000")),
			affinity: 2,
			want:     Info{N: 2, Affinity: 2},
		},
		{
			name:     "affinity 0 still gives one CPU",
			files:    map[string]string{},
			affinity: 0,
			want:     Info{N: 1, Affinity: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := usable(writeTree(t, tt.files), tt.affinity)
			if got != tt.want {
				t.Errorf("usable = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestUsableMalformed feeds files that do not parse: each counts as no
// limit, and nothing panics.
func TestUsableMalformed(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"cgroup garbage", map[string]string{
			"proc/self/cgroup":      "garbage\n::\n0:\n0::relative\n\x00\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "100000 100000\n",
		}},
		{"mountinfo garbage", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   "- cgroup2\n1 2 3 4 5 6 -\n1 2 3 relative /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n30 22 0:27 / /sys/fs/cgroup\\ rw - ext4 /dev/sda rw\n",
			"sys/fs/cgroup/cpu.max": "100000 100000\n",
		}},
		{"cpu.max empty", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "",
		}},
		{"cpu.max one field", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "100000\n",
		}},
		{"cpu.max three fields", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "100000 100000 1\n",
		}},
		{"cpu.max words", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "lots often\n",
		}},
		{"cpu.max period 0", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "100000 0\n",
		}},
		{"cpu.max negative quota", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "-100000 100000\n",
		}},
		{"cpu.max overflowing quota", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"proc/self/mountinfo":   mountV2,
			"sys/fs/cgroup/cpu.max": "99999999999999999999999 100000\n",
		}},
		{"cpu.max is a directory", map[string]string{
			"proc/self/cgroup":           "0::/\n",
			"proc/self/mountinfo":        mountV2,
			"sys/fs/cgroup/cpu.max/file": "100000 100000\n",
		}},
		{"v1 period missing", merge(map[string]string{
			"proc/self/cgroup":          "4:cpu,cpuacct:/\n",
			"proc/self/mountinfo":       mountV1CPU,
			v1Dir + "/cpu.cfs_quota_us": "100000\n",
		})},
		{"v1 quota words", merge(map[string]string{
			"proc/self/cgroup":    "4:cpu,cpuacct:/\n",
			"proc/self/mountinfo": mountV1CPU,
		}, v1Files(v1Dir, "a lot", "100000"))},
		{"v1 period -1", merge(map[string]string{
			"proc/self/cgroup":    "4:cpu,cpuacct:/\n",
			"proc/self/mountinfo": mountV1CPU,
		}, v1Files(v1Dir, "100000", "-1"))},
		{"v1 mount without super options", merge(map[string]string{
			"proc/self/cgroup":    "4:cpu,cpuacct:/\n",
			"proc/self/mountinfo": "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup\n",
		}, v1Files(v1Dir, "100000", "100000"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := usable(writeTree(t, tt.files), 2)
			if want := (Info{N: 2, Affinity: 2}); got != want {
				t.Errorf("usable = %+v, want %+v", got, want)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"no limit", Info{N: 2, Affinity: 2}, "2 (2 in the affinity mask, no cgroup CPU limit)"},
		{"limit 1.5", Info{N: 1, Affinity: 2, Limit: 1.5, LimitFile: "/sys/fs/cgroup/cpu.max"},
			"1 (2 in the affinity mask, cgroup CPU limit 1.5 from /sys/fs/cgroup/cpu.max)"},
		{"limit 1", Info{N: 1, Affinity: 4, Limit: 1, LimitFile: "/sys/fs/cgroup/cpu/k/cpu.cfs_quota_us"},
			"1 (4 in the affinity mask, cgroup CPU limit 1 from /sys/fs/cgroup/cpu/k/cpu.cfs_quota_us)"},
		{"limit a third", Info{N: 1, Affinity: 2, Limit: 1.0 / 3, LimitFile: "/sys/fs/cgroup/cpu.max"},
			"1 (2 in the affinity mask, cgroup CPU limit 0.333 from /sys/fs/cgroup/cpu.max)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.info.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
