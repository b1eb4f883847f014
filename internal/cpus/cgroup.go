package cpus

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A membership is one line of /proc/self/cgroup: the cgroup the process
// belongs to in one hierarchy.
type membership struct {
	v2          bool     // the unified hierarchy (line "0::/path")
	controllers []string // the v1 controllers of the hierarchy, e.g. cpu and cpuacct
	path        string   // the cgroup's path from the hierarchy's root as this process sees it
}

// parseCgroup reads /proc/self/cgroup, skipping lines it does not understand.
func parseCgroup(data string) []membership {
	var ms []membership
	for line := range strings.Lines(data) {
		id, rest, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		list, p, ok := strings.Cut(rest, ":") // the path may itself hold colons
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		if id == "0" && list == "" {
			ms = append(ms, membership{v2: true, path: p})
			continue
		}
		if list == "" {
			continue
		}
		ms = append(ms, membership{controllers: strings.Split(list, ","), path: p})
	}
	return ms
}

// A mount is one cgroup file system of /proc/self/mountinfo.
type mount struct {
	root    string   // the directory of the hierarchy mounted (field 4), e.g. / or a container's cgroup
	point   string   // where it is mounted (field 5)
	fstype  string   // cgroup or cgroup2
	options []string // the super options, e.g. rw, cpu and cpuacct
}

// parseMountinfo reads the cgroup and cgroup2 mounts of /proc/self/mountinfo,
// skipping lines it does not understand.
func parseMountinfo(data string) []mount {
	var ms []mount
	for line := range strings.Lines(data) {
		f := strings.Fields(line)
		// ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		sep := slices.Index(f, "-")
		if sep < 6 || sep+1 >= len(f) {
			continue
		}
		m := mount{root: unescape(f[3]), point: unescape(f[4]), fstype: f[sep+1]}
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		if !strings.HasPrefix(m.root, "/") || !strings.HasPrefix(m.point, "/") {
			continue
		}
		if sep+3 < len(f) {
			m.options = strings.Split(f[sep+3], ",")
		}
		ms = append(ms, m)
	}
	return ms
}

// unescape undoes mountinfo's octal escapes (\040 for a space, \011, \012,
// \134); anything else is left as it is.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupLimit is the smallest CPU limit, in CPUs, set on this process's
// cgroup or an ancestor in the v2 hierarchy or the v1 cpu hierarchy, and the
// file that sets it; 0 and "" when none is set or none can be read.
func cgroupLimit(root string) (float64, string) {
	cgroups, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, ""
	}
	mountinfo, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if err != nil {
		return 0, ""
	}
	mounts := parseMountinfo(string(mountinfo))
	var best float64
	var bestFile string
	for _, m := range parseCgroup(string(cgroups)) {
		var read func(root, dir string) (float64, string)
		var wanted func(mount) bool
		switch {
		case m.v2:
			read = readCPUMax
			wanted = func(mt mount) bool { return mt.fstype == "cgroup2" }
		case slices.Contains(m.controllers, "cpu"):
			read = readCFS
			wanted = func(mt mount) bool { return mt.fstype == "cgroup" && slices.Contains(mt.options, "cpu") }
		default:
			continue
		}
		point, rel, ok := locate(mounts, wanted, m.path)
		if !ok {
			continue
		}
		// The limit of every ancestor visible under the mount applies too.
		for {
			if limit, file := read(root, path.Join(point, rel)); limit > 0 && (best == 0 || limit < best) {
				best, bestFile = limit, file
			}
			if rel == "/" {
				break
			}
			rel = path.Dir(rel)
		}
	}
	return best, bestFile
}

// locate finds the directory of the cgroup p among the mounts that wanted
// accepts: the mount point, and p's path below the mount's root ("/" for the
// root itself). When several mounts hold p, the one with the deepest root
// wins. ok is false when no mount holds p, as when p lies outside the root
// of a container's cgroup namespace ("/../..").
func locate(mounts []mount, wanted func(mount) bool, p string) (point, rel string, ok bool) {
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", "", false
	}
	p = path.Clean(p)
	bestRoot := ""
	for _, m := range mounts {
		if !wanted(m) {
			continue
		}
		r := path.Clean(m.root)
		var below string
		switch {
		case r == "/":
			below = p
		case p == r:
			below = "/"
		case strings.HasPrefix(p, r+"/"):
			below = p[len(r):]
		default:
			continue
		}
		if !ok || len(r) > len(bestRoot) {
			point, rel, ok, bestRoot = path.Clean(m.point), below, true, r
		}
	}
	return point, rel, ok
}

// readCPUMax reads a v2 cgroup's cpu.max: "max PERIOD" (no limit) or
// "QUOTA PERIOD" in microseconds.
func readCPUMax(root, dir string) (float64, string) {
	file := path.Join(dir, "cpu.max")
	data, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return 0, ""
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, ""
	}
	return ratio(f[0], f[1]), file
}

// readCFS reads a v1 cpu cgroup's cpu.cfs_quota_us (-1 for no limit) and
// cpu.cfs_period_us, and names the quota's file.
func readCFS(root, dir string) (float64, string) {
	file := path.Join(dir, "cpu.cfs_quota_us")
	quota, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return 0, ""
	}
	period, err := os.ReadFile(filepath.Join(root, dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, ""
	}
	return ratio(strings.TrimSpace(string(quota)), strings.TrimSpace(string(period))), file
}

// ratio is quota/period, or 0 unless both are positive integers ("max" and
// -1 say there is no quota).
func ratio(quota, period string) float64 {
	q, err := strconv.ParseInt(quota, 10, 64)
	if err != nil || q <= 0 {
		return 0
	}
	p, err := strconv.ParseInt(period, 10, 64)
	if err != nil || p <= 0 {
		return 0
	}
	return float64(q) / float64(p)
}
