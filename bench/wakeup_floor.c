/* The machine's floor for timed wake-ups, measured alongside the cluster: a bare thread that waits
 * for absolute CLOCK_MONOTONIC deadlines exactly as kvnode's timing thread does (1 ns timer slack,
 * sleep until spin_us before the deadline, then spin), and prints how late each wake-up was.
 * usage: wakeup_floor COUNT PERIOD_US SPIN_US  ->  one lateness in ns per line */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: wakeup_floor COUNT PERIOD_US SPIN_US\n"); return 2; }
    int count = atoi(argv[1]);
    long long period = atoll(argv[2]) * 1000, spin = atoll(argv[3]) * 1000;
    prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
    long long deadline = now_ns();
    for (int i = 0; i < count; i++) {
        deadline += period;
        long long wake = deadline - spin;
        struct timespec t = { wake / 1000000000LL, wake % 1000000000LL };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) != 0) {}
        long long n;
        while ((n = now_ns()) < deadline) {}
        printf("%lld\n", n - deadline);
    }
    return 0;
}
