package cpus

import (
	"fmt"
	"math"
	"strconv"
)

// Info is what Usable found.
type Info struct {
	N         int     // CPUs the process may keep busy: Affinity, lowered to Limit rounded down, at least 1
	Affinity  int     // CPUs in the process's affinity mask (sched_getaffinity)
	Limit     float64 // the cgroup CPU limit in CPUs (quota/period), 0 when none is set
	LimitFile string  // the file the limit came from (e.g. /sys/fs/cgroup/cpu/kubepods/.../cpu.cfs_quota_us or .../cpu.max), "" when none
}

// Usable reports how many CPUs this process may keep busy, and why. It never
// fails: a cgroup file that cannot be read or parsed counts as no limit, and
// when the affinity mask cannot be read Affinity is runtime.NumCPU().
func Usable() Info {
	return usable("/", affinity())
}

// String says N and where it comes from, e.g. "1 (2 in the affinity mask,
// cgroup CPU limit 1.5 from /sys/fs/cgroup/cpu.max)".
func (i Info) String() string {
	if i.Limit <= 0 {
		return fmt.Sprintf("%d (%d in the affinity mask, no cgroup CPU limit)", i.N, i.Affinity)
	}
	limit := strconv.FormatFloat(math.Round(i.Limit*1000)/1000, 'f', -1, 64)
	return fmt.Sprintf("%d (%d in the affinity mask, cgroup CPU limit %s from %s)", i.N, i.Affinity, limit, i.LimitFile)
}

// usable is Usable with the file system under root (the cgroup and
// mountinfo files of /proc/self, and the cgroup file systems at the mount
// points mountinfo names) and the size of the affinity mask given.
func usable(root string, affinity int) Info {
	info := Info{Affinity: affinity}
	info.Limit, info.LimitFile = cgroupLimit(root)
	info.N = affinity
	if info.Limit > 0 {
		if whole := int(math.Floor(info.Limit)); whole < info.N {
			info.N = whole
		}
	}
	if info.N < 1 {
		info.N = 1
	}
	return info
}
