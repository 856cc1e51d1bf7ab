// SPDX-License-Identifier: GPL-2.0
/*
 * dropcap: runs a command as root without one capability, to test that a file
 * checks that capability rather than only its mode (busybox's setpriv cannot drop
 * capabilities of root).
 *
 *   dropcap CAP_NUMBER COMMAND [ARGS...]
 *
 * The capability leaves the bounding, effective, permitted and inheritable sets, so
 * the command cannot regain it. Exits 2 on a usage or system-call error, else with
 * the command's status (exec).
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	char *end;
	long cap;

	if (argc < 3) {
		fprintf(stderr, "usage: dropcap CAP_NUMBER COMMAND [ARGS...]\n");
		return 2;
	}
	errno = 0;
	cap = strtol(argv[1], &end, 10);
	if (errno || *end || cap < 0 || cap > CAP_LAST_CAP) {
		fprintf(stderr, "dropcap: '%s' is not a capability number\n", argv[1]);
		return 2;
	}
	if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) ||
	    syscall(SYS_capget, &header, data)) {
		perror("dropcap");
		return 2;
	}
	data[cap / 32].effective &= ~(1u << (cap % 32));
	data[cap / 32].permitted &= ~(1u << (cap % 32));
	data[cap / 32].inheritable &= ~(1u << (cap % 32));
	if (syscall(SYS_capset, &header, data)) {
		perror("dropcap: capset");
		return 2;
	}
	execvp(argv[2], argv + 2);
	fprintf(stderr, "dropcap: %s: %s\n", argv[2], strerror(errno));
	return 2;
}
