/* The bare loop the probe's overhead is measured against: the same
   getaddrinfo call as the probe's glibc back end, timed the same way, no
   output until the end. Usage: gai_loop NAME COUNT; prints one duration in
   microseconds per line. */
#define _GNU_SOURCE
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: gai_loop NAME COUNT\n");
		return 2;
	}
	int n = atoi(argv[2]);
	long long *took = calloc(n, sizeof *took);
	long long *start = calloc(n, sizeof *start);
	for (int i = 0; i < n; i++) {
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		start[i] = now_ns();
		int rc = getaddrinfo(argv[1], NULL, &hints, &res);
		took[i] = now_ns() - start[i];
		if (rc != 0) {
			fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(rc));
			return 1;
		}
		freeaddrinfo(res);
	}
	for (int i = 0; i < n; i++)
		printf("%lld %lld\n", start[i], took[i] / 1000);
	return 0;
}
