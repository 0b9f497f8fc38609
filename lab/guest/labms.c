/* labms: prints milliseconds for the lab's guest scripts, which busybox `date` cannot (no %N).
 * `labms` prints CLOCK_MONOTONIC ms (for intervals), `labms -r` CLOCK_REALTIME ms (to compare
 * with graced's timestamps). */
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	struct timespec ts;
	clock_gettime(argc > 1 && strcmp(argv[1], "-r") == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
	printf("%lld\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	return 0;
}
