// SPDX-License-Identifier: GPL-2.0
/*
 * memcheck: fills memory with pages whose contents are a function of their index,
 * runs a command (which balloons the guest down and up) several times, and verifies
 * every page after each run.
 *
 *   memcheck MIB ROUNDS COMMAND
 *
 * COMMAND runs through /bin/sh with the round number as $1. Prints one line per
 * round with the number of mismatching pages (and one when the round's command
 * failed); exits 0 only if every command succeeded and no page mismatched, 1
 * otherwise, 2 on a usage or allocation error. A command that fails is a failed
 * round: pages that stayed intact because the balloon never moved prove nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE_BYTES 4096
#define WORDS_PER_PAGE (PAGE_BYTES / sizeof(uint64_t))

/* splitmix64: a cheap, well-mixed function of the page and word index. */
static uint64_t pattern(uint64_t page, uint64_t word)
{
	uint64_t z = (page << 9 | word) + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Every word but the last holds the pattern; the last holds their sum. */
static void fill_page(uint64_t *words, uint64_t page)
{
	uint64_t sum = 0;

	for (size_t w = 0; w < WORDS_PER_PAGE - 1; w++) {
		words[w] = pattern(page, w);
		sum += words[w];
	}
	words[WORDS_PER_PAGE - 1] = sum;
}

static int page_intact(const uint64_t *words, uint64_t page)
{
	uint64_t sum = 0;

	for (size_t w = 0; w < WORDS_PER_PAGE - 1; w++) {
		if (words[w] != pattern(page, w))
			return 0;
		sum += words[w];
	}
	return words[WORDS_PER_PAGE - 1] == sum;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s MIB ROUNDS COMMAND\n", argv[0]);
		return 2;
	}
	size_t pages = strtoull(argv[1], NULL, 10) * (1 << 20) / PAGE_BYTES;
	int rounds = atoi(argv[2]);
	uint64_t *mem = mmap(NULL, pages * PAGE_BYTES, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (pages == 0 || rounds <= 0 || mem == MAP_FAILED) {
		perror("memcheck: mmap");
		return 2;
	}
	for (size_t p = 0; p < pages; p++)
		fill_page(mem + p * WORDS_PER_PAGE, p);
	printf("memcheck: filled %zu pages\n", pages);

	size_t total_bad = 0;
	int failed_rounds = 0;

	for (int r = 1; r <= rounds; r++) {
		char cmd[4096];

		snprintf(cmd, sizeof(cmd), "set -- %d; %s", r, argv[3]);
		fflush(stdout);
		int status = system(cmd);

		if (status != 0) {
			printf("memcheck: round %d: command failed (status %#x)\n", r, status);
			failed_rounds++;
		}
		size_t bad = 0;

		for (size_t p = 0; p < pages; p++)
			bad += !page_intact(mem + p * WORDS_PER_PAGE, p);
		printf("memcheck: round %d: %zu of %zu pages mismatch\n", r, bad, pages);
		total_bad += bad;
	}
	if (failed_rounds)
		printf("memcheck: %d of %d rounds' commands failed\n", failed_rounds, rounds);
	return total_bad || failed_rounds ? 1 : 0;
}
