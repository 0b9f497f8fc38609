/* labhttp: a tiny HTTP/1.0 client for the lab guest.
 *
 *   labhttp METHOD PATH [BODY]   talks to 127.0.0.1:8080 (LABHTTP_PORT overrides the port)
 *
 * Writes the response body to /tmp/lab-body and prints "STATUS MILLISECONDS" (the time from
 * connect to the last byte). Why not curl: under TCG a dynamically linked curl takes about
 * 250 ms just to start, which swamps the latencies the lab measures; this is static and tiny.
 * HTTP/1.0 keeps the server from answering with chunked encoding. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	static char response[4 << 20];
	char request[65536];
	const char *body = argc > 3 ? argv[3] : NULL;
	const char *port = getenv("LABHTTP_PORT");
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port ? atoi(port) : 8080) };
	size_t used = 0;
	ssize_t n;
	int fd, length, status = 0;
	long long started;

	if (argc < 3) {
		fprintf(stderr, "usage: labhttp METHOD PATH [BODY]\n");
		return 2;
	}
	inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
	if (body)
		length = snprintf(request, sizeof request,
				  "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: */*\r\n"
				  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
				  argv[1], argv[2], strlen(body), body);
	else
		length = snprintf(request, sizeof request, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n",
				  argv[1], argv[2]);
	if (length < 0 || length >= (int)sizeof request)
		return 2;
	started = now_us();
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
		printf("000 0\n");
		return 1;
	}
	if (write(fd, request, length) != length) {
		printf("000 0\n");
		return 1;
	}
	while (used < sizeof response - 1 && (n = read(fd, response + used, sizeof response - 1 - used)) > 0)
		used += n;
	response[used] = 0;
	close(fd);
	sscanf(response, "HTTP/%*s %d", &status);
	char *payload = strstr(response, "\r\n\r\n");
	FILE *out = fopen("/tmp/lab-body", "w");
	if (out) {
		if (payload)
			fwrite(payload + 4, 1, used - (payload + 4 - response), out);
		fclose(out);
	}
	printf("%03d %lld\n", status, (now_us() - started) / 1000);
	return 0;
}
