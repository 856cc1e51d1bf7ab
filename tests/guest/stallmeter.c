// SPDX-License-Identifier: GPL-2.0
/*
 * stallmeter: how long the guest stops running, seen from inside it. Reads
 * CLOCK_MONOTONIC in a tight loop and reports the gaps between two reads: a
 * hypervisor that pauses the vCPU (a page offline, a superpage merge), a timer
 * interrupt or another task taking the CPU all show up as one gap.
 *
 *   stallmeter SECONDS [STOPFILE]
 *
 * Runs for SECONDS, or until STOPFILE exists (checked every 10 ms). Prints one
 * line: the time measured, the largest gap, and the gaps of at least 100 us, 1 ms
 * and 10 ms (count and total), all in microseconds. Exit 0, or 2 on bad usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const uint64_t bounds_us[] = { 100, 1000, 10000 };
	uint64_t count[3] = { 0 }, total_us[3] = { 0 };
	uint64_t start, end, last, next_check, max_gap = 0;
	const char *stop;
	long seconds;
	int i;

	if (argc < 2 || argc > 3 || (seconds = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: stallmeter SECONDS [STOPFILE]\n");
		return 2;
	}
	stop = argc == 3 ? argv[2] : NULL;
	start = last = now_ns();
	end = start + (uint64_t)seconds * 1000000000ull;
	next_check = start + 10000000ull;
	for (;;) {
		uint64_t t = now_ns(), gap_us = (t - last) / 1000;

		if (t - last > max_gap)
			max_gap = t - last;
		for (i = 0; i < 3; i++) {
			if (gap_us >= bounds_us[i]) {
				count[i]++;
				total_us[i] += gap_us;
			}
		}
		if (t >= end)
			break;
		if (stop && t >= next_check) {
			if (access(stop, F_OK) == 0)
				break;
			next_check = now_ns() + 10000000ull;
		}
		last = now_ns();
	}
	printf("stallmeter: measured_us=%llu max_gap_us=%llu",
	       (unsigned long long)((last - start) / 1000),
	       (unsigned long long)(max_gap / 1000));
	for (i = 0; i < 3; i++)
		printf(" gaps_%lluus=%llu gaps_%lluus_total_us=%llu",
		       (unsigned long long)bounds_us[i], (unsigned long long)count[i],
		       (unsigned long long)bounds_us[i], (unsigned long long)total_us[i]);
	printf("\n");
	return 0;
}
