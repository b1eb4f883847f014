/*
 * gen: a second load generator for bench/run.sh (--generator c), written
 * apart from stuncheck so that a figure can be checked with a harness that
 * shares no code with the one that produced it.
 *
 * SOCKETS connected UDP sockets to 127.0.0.1:PORT each keep WINDOW Binding
 * requests in flight (closed loop). One thread polls the sockets with
 * non-blocking recvmmsg and never sleeps; each valid answer is replaced by
 * a new request, sent in a batch per socket with sendmmsg. An answer is
 * valid when it is a Binding success response to a request in flight
 * (transaction ID: socket, slot and sequence number), with an
 * XOR-MAPPED-ADDRESS equal to the socket's own address and, when it
 * carries one, a correct FINGERPRINT. After SECONDS, sending stops and
 * answers are awaited for 200 ms; what is still in flight is lost.
 *
 * Usage: gen PORT SOCKETS WINDOW SECONDS bare|fingerprint
 * Prints one JSON object with the fields of `stuncheck load -o json` that
 * bench/run.sh reads.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXSOCK 256
#define MAXWIN 4096
#define HIST_US 1000000 /* RTTs are kept per microsecond up to 1 s */
#define COOKIE 0x2112A442u
#define FP_XOR 0x5354554eu

static uint32_t crc_table[256];

static void crc_init(void) {
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const unsigned char *p, size_t n) {
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void put32(unsigned char *p, uint32_t v) {
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get32(const unsigned char *p) {
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int fingerprint; /* requests carry FINGERPRINT */
static int reqlen;      /* 20, or 28 with FINGERPRINT */

/* build writes the request for socket s, slot w, sequence seq into m. */
static void build(unsigned char *m, uint32_t s, uint32_t w, uint32_t seq) {
	m[0] = 0x00; m[1] = 0x01;
	m[2] = 0; m[3] = fingerprint ? 8 : 0;
	put32(m + 4, COOKIE);
	put32(m + 8, s); put32(m + 12, w); put32(m + 16, seq);
	if (fingerprint) {
		m[20] = 0x80; m[21] = 0x28; m[22] = 0; m[23] = 4;
		put32(m + 24, crc32(m, 20) ^ FP_XOR);
	}
}

/* valid reports whether answer m of n bytes carries XOR-MAPPED-ADDRESS
 * addr:port and, if it has a FINGERPRINT, a right one. */
static int valid(const unsigned char *m, int n, uint32_t addr, uint16_t port) {
	int alen = m[2] << 8 | m[3], found = 0;
	if (20 + alen != n)
		return 0;
	for (int off = 20; off + 4 <= n;) {
		int type = m[off] << 8 | m[off + 1], len = m[off + 2] << 8 | m[off + 3];
		if (off + 4 + len > n)
			return 0;
		if (type == 0x0020 && len == 8 && m[off + 5] == 0x01) {
			uint16_t xp = (uint16_t)((m[off + 6] << 8 | m[off + 7]) ^ (COOKIE >> 16));
			uint32_t xa = get32(m + off + 8) ^ COOKIE;
			found = xp == port && xa == addr;
		}
		if (type == 0x8028) {
			if (len != 4 || off + 8 != n || get32(m + off + 4) != (crc32(m, off) ^ FP_XOR))
				return 0;
		}
		off += 4 + ((len + 3) & ~3);
	}
	return found;
}

int main(int argc, char **argv) {
	if (argc != 6) {
		fprintf(stderr, "usage: gen PORT SOCKETS WINDOW SECONDS bare|fingerprint\n");
		return 2;
	}
	int port = atoi(argv[1]), nsock = atoi(argv[2]), win = atoi(argv[3]);
	double secs = atof(argv[4]);
	if (strcmp(argv[5], "fingerprint") == 0)
		fingerprint = 1;
	else if (strcmp(argv[5], "bare") != 0) {
		fprintf(stderr, "gen: request shape %s: want bare or fingerprint\n", argv[5]);
		return 2;
	}
	if (port < 1 || port > 65535 || nsock < 1 || nsock > MAXSOCK || win < 1 || win > MAXWIN || !(secs > 0)) {
		fprintf(stderr, "gen: PORT 1-65535, SOCKETS 1-%d, WINDOW 1-%d, SECONDS > 0\n", MAXSOCK, MAXWIN);
		return 2;
	}
	reqlen = fingerprint ? 28 : 20;
	crc_init();

	static int fd[MAXSOCK];
	static uint32_t laddr[MAXSOCK];
	static uint16_t lport[MAXSOCK];
	uint32_t *inflight = calloc((size_t)nsock * win, sizeof *inflight); /* sequence, 0 = free */
	uint64_t *sent_at = calloc((size_t)nsock * win, sizeof *sent_at);
	uint32_t *hist = calloc(HIST_US + 1, sizeof *hist);
	if (!inflight || !sent_at || !hist) {
		perror("gen: calloc");
		return 1;
	}
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	for (int i = 0; i < nsock; i++) {
		struct sockaddr_in l;
		socklen_t ll = sizeof l;
		int sz = 4 << 20;
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&dst, sizeof dst) < 0 ||
		    getsockname(fd[i], (struct sockaddr *)&l, &ll) < 0) {
			perror("gen: socket");
			return 1;
		}
		setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
		setsockopt(fd[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		laddr[i] = ntohl(l.sin_addr.s_addr);
		lport[i] = ntohs(l.sin_port);
	}

	static unsigned char sbuf[BATCH][28], rbuf[BATCH][1500];
	static struct iovec siov[BATCH], riov[BATCH];
	static struct mmsghdr smsg[BATCH], rmsg[BATCH];
	for (int k = 0; k < BATCH; k++) {
		siov[k] = (struct iovec){.iov_base = sbuf[k], .iov_len = (size_t)reqlen};
		smsg[k].msg_hdr = (struct msghdr){.msg_iov = &siov[k], .msg_iovlen = 1};
		riov[k] = (struct iovec){.iov_base = rbuf[k], .iov_len = sizeof rbuf[k]};
		rmsg[k].msg_hdr = (struct msghdr){.msg_iov = &riov[k], .msg_iovlen = 1};
	}

	uint32_t seq = 1;
	uint64_t sent = 0, responses = 0, invalid = 0, answered = 0;
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t start = now_ns(), stop = start + (uint64_t)(secs * 1e9), stopped = 0;
	for (int i = 0; i < nsock; i++) {
		for (int w = 0; w < win;) {
			int n = 0;
			for (; n < BATCH && w < win; n++, w++) {
				build(sbuf[n], (uint32_t)i, (uint32_t)w, seq);
				inflight[i * win + w] = seq++;
				sent_at[i * win + w] = now_ns();
			}
			if (sendmmsg(fd[i], smsg, n, 0) == n)
				sent += n;
		}
	}
	for (;;) {
		uint64_t t = now_ns();
		if (!stopped && t >= stop)
			stopped = t;
		if (stopped && (t >= stopped + 200000000u || answered == sent))
			break;
		for (int i = 0; i < nsock; i++) {
			int r = recvmmsg(fd[i], rmsg, BATCH, MSG_DONTWAIT, NULL);
			if (r <= 0)
				continue;
			uint64_t tr = now_ns();
			int n = 0;
			for (int k = 0; k < r; k++) {
				const unsigned char *m = rbuf[k];
				int len = (int)rmsg[k].msg_len;
				if (len < 20 || m[0] != 0x01 || m[1] != 0x01 || get32(m + 4) != COOKIE) {
					invalid++;
					continue;
				}
				uint32_t s = get32(m + 8), w = get32(m + 12), q = get32(m + 16);
				if (s != (uint32_t)i || w >= (uint32_t)win || inflight[i * win + w] != q) {
					invalid++;
					continue;
				}
				inflight[i * win + w] = 0;
				answered++;
				if (!valid(m, len, laddr[i], lport[i])) {
					invalid++;
					continue;
				}
				if (stopped)
					continue;
				responses++;
				uint64_t us = (tr - sent_at[i * win + w]) / 1000;
				hist[us > HIST_US ? HIST_US : us]++;
				build(sbuf[n], (uint32_t)i, w, seq);
				inflight[i * win + w] = seq++;
				sent_at[i * win + w] = now_ns();
				n++;
			}
			if (n > 0 && sendmmsg(fd[i], smsg, n, 0) == n)
				sent += n;
		}
	}
	getrusage(RUSAGE_SELF, &ru1);
	double dur = (double)((stopped ? stopped : now_ns()) - start) / 1e9;
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
	double q[2] = {0.50, 0.99}, v[2] = {0, 0};
	for (int j = 0; j < 2; j++) {
		uint64_t acc = 0;
		for (int u = 0; u <= HIST_US; u++) {
			acc += hist[u];
			if (responses > 0 && (double)acc >= q[j] * (double)responses) {
				v[j] = u / 1000.0;
				break;
			}
		}
	}
	printf("{\"generator\":\"gen.c\",\"request\":\"%s\",\"duration_s\":%.6f,\"sent\":%llu,\"responses\":%llu,"
	       "\"responses_per_s\":%.1f,\"invalid\":%llu,\"lost\":%llu,\"rtt_ms\":{\"p50\":%.3f,\"p99\":%.3f},"
	       "\"client_cpu_s\":%.3f}\n",
	       argv[5], dur, (unsigned long long)sent, (unsigned long long)responses, responses / dur,
	       (unsigned long long)invalid, (unsigned long long)(sent - answered), v[0], v[1], cpu);
	return 0;
}
