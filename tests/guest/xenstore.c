// SPDX-License-Identifier: GPL-2.0
/*
 * xenstore: read, write and list xenstore keys from inside the guest through the
 * kernel's /dev/xen/xenbus (the xenstore wire protocol, one request at a time), so
 * that kselftests can check what the host sets and what ebb publishes.
 *
 *   xenstore read PATH          prints the value
 *   xenstore write PATH VALUE
 *   xenstore ls PATH            prints one child per line
 *   xenstore wait PATH VALUE SECONDS
 *                               polls until PATH reads VALUE; exit 1 on timeout
 *   xenstore rm PATH            removes PATH and everything below it
 *   xenstore flood PATH         writes PATH/n0, PATH/n1, ... with 2048-byte values
 *                               (the largest a guest may write) until the store
 *                               refuses; prints how many and the error
 *   xenstore transactions       starts transactions (left open until exit) until
 *                               the store refuses; prints how many and the error
 *
 * flood and transactions are a hostile guest's attack on the store's memory: they
 * exit 0 when the store ended them with an error, 1 when it did not within a bound
 * far above every quota.
 * Relative paths are relative to the domain's home (/local/domain/<id>). Exit status:
 * 0 success, 1 the store answered with an error (printed), 2 bad usage or I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum xs_type {
	XS_DIRECTORY = 1,
	XS_READ = 2,
	XS_TRANSACTION_START = 6,
	XS_WRITE = 11,
	XS_RM = 13,
	XS_ERROR = 16,
};

/* The most nodes or transactions a flood tries: far above Xen's quotas (1000 nodes,
 * 10 transactions per domain). */
#define FLOOD_MAX 100000
#define TRANSACTIONS_MAX 1000

struct xs_header {
	uint32_t type;
	uint32_t req_id;
	uint32_t tx_id;
	uint32_t len;
};

#define XS_PAYLOAD_MAX 4096

static int xs_fd = -1;

/* Sends one request; returns the reply's type and fills body (NUL-terminated). */
static int xs_request(uint32_t type, const char *a, size_t alen, const char *b,
		      size_t blen, char *body, size_t *body_len)
{
	char msg[sizeof(struct xs_header) + XS_PAYLOAD_MAX];
	struct xs_header hdr = { .type = type, .len = alen + blen };
	ssize_t n;

	if (hdr.len > XS_PAYLOAD_MAX) {
		fprintf(stderr, "xenstore: request too long\n");
		exit(2);
	}
	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), a, alen);
	if (blen)
		memcpy(msg + sizeof(hdr) + alen, b, blen);
	if (write(xs_fd, msg, sizeof(hdr) + hdr.len) < 0) {
		perror("xenstore: write /dev/xen/xenbus");
		exit(2);
	}
	n = read(xs_fd, msg, sizeof(msg));
	if (n < (ssize_t)sizeof(hdr)) {
		perror("xenstore: read /dev/xen/xenbus");
		exit(2);
	}
	memcpy(&hdr, msg, sizeof(hdr));
	if (hdr.len > (size_t)n - sizeof(hdr))
		hdr.len = n - sizeof(hdr);
	memcpy(body, msg + sizeof(hdr), hdr.len);
	body[hdr.len] = '\0';
	*body_len = hdr.len;
	return hdr.type;
}

static int xs_read(const char *path, char *value, size_t *len)
{
	return xs_request(XS_READ, path, strlen(path) + 1, NULL, 0, value, len);
}

static int usage(void)
{
	fprintf(stderr, "usage: xenstore read PATH | write PATH VALUE | ls PATH | "
			"wait PATH VALUE SECONDS | rm PATH | flood PATH | transactions\n");
	return 2;
}

/* Writes big nodes under path until the store refuses one. */
static int flood(const char *path)
{
	static char value[2048];
	char node[256], body[XS_PAYLOAD_MAX + 1];
	size_t len;
	int i;

	memset(value, 'x', sizeof(value));
	for (i = 0; i < FLOOD_MAX; i++) {
		snprintf(node, sizeof(node), "%s/n%d", path, i);
		if (xs_request(XS_WRITE, node, strlen(node) + 1, value, sizeof(value),
			       body, &len) == XS_ERROR) {
			printf("flood: %d nodes written, then %s\n", i, body);
			return 0;
		}
	}
	printf("flood: %d nodes written, no refusal\n", i);
	return 1;
}

/* Starts transactions until the store refuses one. */
static int transactions(void)
{
	char body[XS_PAYLOAD_MAX + 1];
	size_t len;
	int i;

	for (i = 0; i < TRANSACTIONS_MAX; i++) {
		if (xs_request(XS_TRANSACTION_START, "", 1, NULL, 0, body, &len) ==
		    XS_ERROR) {
			printf("transactions: %d started, then %s\n", i, body);
			return 0;
		}
	}
	printf("transactions: %d started, no refusal\n", i);
	return 1;
}

int main(int argc, char **argv)
{
	char body[XS_PAYLOAD_MAX + 1];
	size_t len;
	int type;

	if (argc < 2)
		return usage();
	xs_fd = open("/dev/xen/xenbus", O_RDWR);
	if (xs_fd < 0) {
		perror("xenstore: open /dev/xen/xenbus");
		return 2;
	}

	if (!strcmp(argv[1], "read") && argc == 3) {
		type = xs_read(argv[2], body, &len);
	} else if (!strcmp(argv[1], "write") && argc == 4) {
		type = xs_request(XS_WRITE, argv[2], strlen(argv[2]) + 1, argv[3],
				  strlen(argv[3]), body, &len);
		len = 0;
	} else if (!strcmp(argv[1], "ls") && argc == 3) {
		type = xs_request(XS_DIRECTORY, argv[2], strlen(argv[2]) + 1, NULL, 0,
				  body, &len);
		for (size_t i = 0; type != XS_ERROR && i < len; i++)
			if (body[i] == '\0')
				body[i] = '\n';
	} else if (!strcmp(argv[1], "rm") && argc == 3) {
		type = xs_request(XS_RM, argv[2], strlen(argv[2]) + 1, NULL, 0, body,
				  &len);
		len = 0;
	} else if (!strcmp(argv[1], "flood") && argc == 3) {
		return flood(argv[2]);
	} else if (!strcmp(argv[1], "transactions") && argc == 2) {
		return transactions();
	} else if (!strcmp(argv[1], "wait") && argc == 5) {
		time_t deadline = time(NULL) + atoi(argv[4]);

		for (;;) {
			type = xs_read(argv[2], body, &len);
			if (type != XS_ERROR && !strcmp(body, argv[3]))
				return 0;
			if (time(NULL) >= deadline) {
				fprintf(stderr, "xenstore: %s is '%s', not '%s', after %s s\n",
					argv[2], type == XS_ERROR ? "(error)" : body,
					argv[3], argv[4]);
				return 1;
			}
			usleep(100000);
		}
	} else {
		return usage();
	}

	if (type == XS_ERROR) {
		fprintf(stderr, "xenstore: %s %s: %s\n", argv[1], argv[2], body);
		return 1;
	}
	if (len)
		printf("%.*s%s", (int)len, body, body[len - 1] == '\n' ? "" : "\n");
	return 0;
}
