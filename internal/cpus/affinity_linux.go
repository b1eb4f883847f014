package cpus

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// affinity is the number of CPUs in this process's affinity mask, or
// runtime.NumCPU() when the mask cannot be read.
func affinity() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	if n := set.Count(); n > 0 {
		return n
	}
	return runtime.NumCPU()
}
