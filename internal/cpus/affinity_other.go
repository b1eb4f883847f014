//go:build !linux

package cpus

import "runtime"

// affinity is runtime.NumCPU(): there is no sched_getaffinity here.
func affinity() int {
	return runtime.NumCPU()
}
