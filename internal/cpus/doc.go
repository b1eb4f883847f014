// Package cpus tells how many CPUs this process may really keep busy: the
// CPUs of its affinity mask, lowered to its cgroup CPU limit (v1 or v2, its
// own cgroup's or an ancestor's) rounded down, and at least one.
//
// It exists because Go's runtime rounds a cgroup limit up, and to at least
// 2, when it sets GOMAXPROCS: a pod limited to 1 CPU gets GOMAXPROCS 2, and
// a worker per GOMAXPROCS would have two busy workers share one CPU of quota
// and be throttled.
package cpus
