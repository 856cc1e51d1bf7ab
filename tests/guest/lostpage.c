// SPDX-License-Identifier: GPL-2.0
/*
 * lostpage: the process whose page the host breaks, for the broken.sh kselftest.
 *
 *   lostpage
 *
 * Maps one anonymous page, locks it in memory, fills it with a pattern and prints its
 * page frame number (from /proc/self/pagemap, so run it as root) on one line. Then
 * waits for a line on stdin and reads the page again:
 *   - "sigbus code=C addr=ok|other", exit 3: the read raised SIGBUS (code 4,
 *     BUS_MCEERR_AR, is Linux's memory-failure handling killing the process that
 *     touches a poisoned page; addr=ok when the fault names this page);
 *   - "intact", exit 0: the pattern is still there;
 *   - "changed", exit 1: the page was readable but its contents differ;
 *   exit 2 on a set-up error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_BYTES 4096
#define PATTERN 0x6c6f737470616765ull /* "lostpage" */

static volatile uint64_t *page;

static void on_sigbus(int sig, siginfo_t *info, void *context)
{
	char line[64];
	int len;

	(void)sig;
	(void)context;
	len = snprintf(line, sizeof(line), "sigbus code=%d addr=%s\n", info->si_code,
		       (uintptr_t)info->si_addr / PAGE_BYTES ==
				       (uintptr_t)page / PAGE_BYTES ?
			       "ok" :
			       "other");
	if (write(STDOUT_FILENO, line, len) != len)
		_exit(2);
	_exit(3);
}

/* The pfn behind page, or 0 when pagemap does not say (not root, not present). */
static uint64_t page_frame(void)
{
	uint64_t entry = 0;
	off_t offset = (uintptr_t)page / PAGE_BYTES * sizeof(entry);
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), offset) != sizeof(entry))
		entry = 0;
	close(fd);
	if (!(entry >> 63 & 1))
		return 0;
	return entry & ((1ull << 55) - 1);
}

int main(void)
{
	struct sigaction action = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
	char line[16];
	uint64_t pfn;
	size_t i;

	page = mmap(NULL, PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	if (page == MAP_FAILED || mlock((void *)page, PAGE_BYTES) != 0) {
		perror("lostpage: mmap/mlock");
		return 2;
	}
	for (i = 0; i < PAGE_BYTES / sizeof(*page); i++)
		page[i] = PATTERN ^ i;
	pfn = page_frame();
	if (!pfn || sigaction(SIGBUS, &action, NULL) != 0) {
		fprintf(stderr, "lostpage: no pfn for the page (not root?)\n");
		return 2;
	}
	printf("%llu\n", (unsigned long long)pfn);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin)) {
		fprintf(stderr, "lostpage: stdin closed before the go\n");
		return 2;
	}
	for (i = 0; i < PAGE_BYTES / sizeof(*page); i++) {
		if (page[i] != (PATTERN ^ i)) {
			printf("changed\n");
			return 1;
		}
	}
	printf("intact\n");
	return 0;
}
