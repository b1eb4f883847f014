/*
 * syscall: what one system call costs on this machine, in nanoseconds: the
 * mean of a million getppid() calls made through syscall(2), so that no
 * library caches the answer. bench/run.sh prints it beside the results: a
 * server that makes two system calls per response (coturn: recvmsg and
 * sendto) pays it twice per response, a batching one (stund, the floor)
 * twice per batch of up to 64, so the ratios between them depend on it.
 *
 * Usage: syscall
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CALLS 1000000

int main(void) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < CALLS; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.0f\n", ns / CALLS);
	return 0;
}
