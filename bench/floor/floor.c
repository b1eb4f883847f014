/*
 * floor: the least work a STUN Binding server can do, as a reference for
 * bench/run.sh. It receives datagrams in batches with recvmmsg, turns each
 * Binding request into a success response in place (message type, length,
 * and one XOR-MAPPED-ADDRESS appended) and sends the batch back with
 * sendmmsg. No validation beyond the header, no SOFTWARE, no FINGERPRINT,
 * no metrics: it is not a server to deploy, only the cost floor that a
 * real server is compared with.
 *
 * Usage: floor IP PORT    (IPv4 or IPv6 literal; one socket, one thread)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define BUFSZ 1500
#define COOKIE 0x2112A442u

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: floor IP PORT\n");
		return 2;
	}
	struct sockaddr_storage bind_addr;
	socklen_t bind_len;
	memset(&bind_addr, 0, sizeof bind_addr);
	int port = atoi(argv[2]);
	struct sockaddr_in *b4 = (struct sockaddr_in *)&bind_addr;
	struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&bind_addr;
	if (inet_pton(AF_INET, argv[1], &b4->sin_addr) == 1) {
		b4->sin_family = AF_INET;
		b4->sin_port = htons(port);
		bind_len = sizeof *b4;
	} else if (inet_pton(AF_INET6, argv[1], &b6->sin6_addr) == 1) {
		b6->sin6_family = AF_INET6;
		b6->sin6_port = htons(port);
		bind_len = sizeof *b6;
	} else {
		fprintf(stderr, "floor: %s is not an IP address\n", argv[1]);
		return 2;
	}
	int fd = socket(bind_addr.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&bind_addr, bind_len) < 0) {
		perror("floor: bind");
		return 1;
	}
	int sz = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: recvmmsg returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	static unsigned char bufs[BATCH][BUFSZ];
	static struct sockaddr_storage names[BATCH];
	static struct iovec riov[BATCH], siov[BATCH];
	static struct mmsghdr rmsg[BATCH], smsg[BATCH];
	for (int i = 0; i < BATCH; i++) {
		riov[i].iov_base = bufs[i];
		riov[i].iov_len = BUFSZ;
		rmsg[i].msg_hdr.msg_iov = &riov[i];
		rmsg[i].msg_hdr.msg_iovlen = 1;
		rmsg[i].msg_hdr.msg_name = &names[i];
	}
	printf("floor listening udp %s:%d\n", argv[1], port);
	fflush(stdout);

	while (!stop) {
		for (int i = 0; i < BATCH; i++)
			rmsg[i].msg_hdr.msg_namelen = sizeof names[i];
		int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("floor: recvmmsg");
			return 1;
		}
		int out = 0;
		for (int i = 0; i < n; i++) {
			unsigned char *m = bufs[i];
			uint32_t cookie;
			memcpy(&cookie, m + 4, 4);
			/* A Binding request with the magic cookie, nothing else. */
			if (rmsg[i].msg_len < 20 || m[0] != 0x00 || m[1] != 0x01 || cookie != htonl(COOKIE))
				continue;
			struct sockaddr_storage *src = &names[i];
			unsigned char *a = m + 20;
			uint16_t xport;
			int alen;
			if (src->ss_family == AF_INET) {
				struct sockaddr_in *s4 = (struct sockaddr_in *)src;
				xport = ntohs(s4->sin_port) ^ (COOKIE >> 16);
				uint32_t xaddr = ntohl(s4->sin_addr.s_addr) ^ COOKIE;
				a[0] = 0x00; a[1] = 0x20; a[2] = 0; a[3] = 8;
				a[4] = 0; a[5] = 0x01;
				a[6] = xport >> 8; a[7] = xport & 0xff;
				a[8] = xaddr >> 24; a[9] = xaddr >> 16; a[10] = xaddr >> 8; a[11] = xaddr;
				alen = 12;
			} else {
				struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
				xport = ntohs(s6->sin6_port) ^ (COOKIE >> 16);
				a[0] = 0x00; a[1] = 0x20; a[2] = 0; a[3] = 20;
				a[4] = 0; a[5] = 0x02;
				a[6] = xport >> 8; a[7] = xport & 0xff;
				/* XOR with the cookie and transaction ID (bytes 4..19). */
				for (int k = 0; k < 16; k++)
					a[8 + k] = s6->sin6_addr.s6_addr[k] ^ m[4 + k];
				alen = 24;
			}
			m[0] = 0x01; m[1] = 0x01; /* Binding success response */
			m[2] = 0; m[3] = alen;    /* attributes of the request are dropped */
			siov[out].iov_base = m;
			siov[out].iov_len = 20 + alen;
			smsg[out].msg_hdr = (struct msghdr){
				.msg_name = src, .msg_namelen = rmsg[i].msg_hdr.msg_namelen,
				.msg_iov = &siov[out], .msg_iovlen = 1,
			};
			out++;
		}
		for (int off = 0; off < out;) {
			int s = sendmmsg(fd, smsg + off, out - off, 0);
			if (s < 0) {
				if (errno == EINTR && !stop)
					continue;
				off++; /* skip a datagram the kernel refused */
				continue;
			}
			off += s;
		}
	}
	close(fd);
	return 0;
}
