// SPDX-License-Identifier: GPL-2.0
/*
 * vmmcall: makes every Xen hypercall (numbers 0..63) from user space, with garbage
 * arguments, and checks that the hypervisor refuses each one with -EPERM, as Xen
 * does for HVM and PVH guests: only the guest's kernel (CPL 0) may call, else a
 * user process could name kernel addresses as buffers, balloon out kernel frames or
 * power the machine off (KVM's CVE-2009-3290).
 *
 *   vmmcall
 *
 * Run as root, it first becomes nobody (uid and gid 65534), so that the calls come
 * from an unprivileged process; CPL is 3 for any user process, so the check is the
 * same either way. Prints one line per call that was not refused. Exits 0 when every
 * call returned -EPERM, 1 when some did not, 2 on a system-call error, 4 when VMMCALL
 * raised #UD (SIGILL): no hypervisor, e.g. plain QEMU.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NR_HYPERCALLS 64
#define XEN_EPERM 1
#define NO_HYPERVISOR 4
#define NOBODY 65534

/*
 * Arguments a hostile caller would pass: the kernel's text and direct map (a
 * hypervisor serving the call would write there), a non-canonical address, the top
 * of the address space (wraps when a length is added) and zero.
 */
static const unsigned long garbage[][5] = {
	{ 0xffffffff81000000ul, 0xffff888000000000ul, 0x1000, 0xffffffff81000000ul, 1 },
	{ 0, 0xffffffff81000000ul, 0x8000000000000000ul, ~0ul, 0xffff888000001000ul },
	{ ~0ul, ~0ul, ~0ul, ~0ul, ~0ul },
};

/* The Xen HVM ABI on AMD: number in rax, arguments in rdi rsi rdx r10 r8. */
static long vmmcall(unsigned long nr, const unsigned long a[5])
{
	register unsigned long r10 asm("r10") = a[3];
	register unsigned long r8 asm("r8") = a[4];
	unsigned long rdi = a[0], rsi = a[1], rdx = a[2];
	unsigned long rax = nr;

	asm volatile("vmmcall"
		     : "+a"(rax), "+D"(rdi), "+S"(rsi), "+d"(rdx), "+r"(r10), "+r"(r8)
		     :
		     : "memory");
	return (long)rax;
}

static void no_hypervisor(int sig)
{
	static const char msg[] = "vmmcall: VMMCALL raised #UD: no hypervisor\n";

	(void)sig;
	/* Only async-signal-safe calls here. */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(NO_HYPERVISOR);
	_exit(NO_HYPERVISOR);
}

int main(void)
{
	struct sigaction sa;
	unsigned long nr;
	unsigned int set, failed = 0, calls = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = no_hypervisor;
	if (sigaction(SIGILL, &sa, NULL)) {
		perror("vmmcall: sigaction");
		return 2;
	}
	/* Group first: once the uid is dropped, the gid can no longer change. */
	if (geteuid() == 0 && (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
			       setresuid(NOBODY, NOBODY, NOBODY))) {
		perror("vmmcall: becoming nobody");
		return 2;
	}
	for (nr = 0; nr < NR_HYPERCALLS; nr++) {
		for (set = 0; set < sizeof(garbage) / sizeof(garbage[0]); set++) {
			long ret = vmmcall(nr, garbage[set]);

			calls++;
			if (ret != -XEN_EPERM) {
				printf("hypercall %lu (arguments %u) from uid %u: returned %ld, not -EPERM\n",
				       nr, set, getuid(), ret);
				failed++;
			}
		}
	}
	printf("vmmcall: %u of %u calls from uid %u refused with -EPERM\n", calls - failed,
	       calls, getuid());
	return failed ? 1 : 0;
}
