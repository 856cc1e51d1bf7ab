// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for the static inline kernel APIs ebb_hostile uses, and for
 * ioremap, whose __iomem pointer Rust sees as an address (see hostile_main.rs,
 * which declares them).
 */
#include <linux/types.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <asm/msr.h>
#include <asm/page.h>
#include <xen/xen.h>

#include "hostile_helpers.h"

bool ebb_hostile_xen_pvh_domain(void)
{
	return xen_pvh_domain();
}

int ebb_hostile_rdmsr_safe(u32 msr, u64 *value)
{
	return rdmsrq_safe(msr, value);
}

int ebb_hostile_wrmsr_safe(u32 msr, u64 value)
{
	return wrmsrq_safe(msr, value);
}

u64 ebb_hostile_phys_to_virt(u64 phys)
{
	return (u64)__va(phys);
}

u64 ebb_hostile_ioremap(u64 phys, u64 size)
{
	return (u64)ioremap(phys, size);
}

void ebb_hostile_iounmap(u64 virt)
{
	iounmap((void __iomem *)virt);
}

u64 ebb_hostile_random(void)
{
	return get_random_u64();
}

u64 ebb_hostile_now_ms(void)
{
	return ktime_get_ns() / NSEC_PER_MSEC;
}

void ebb_hostile_cond_resched(void)
{
	cond_resched();
}
