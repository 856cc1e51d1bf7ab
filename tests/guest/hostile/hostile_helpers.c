// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for the static inline kernel APIs ebb_hostile uses, for
 * ioremap, whose __iomem pointer Rust sees as an address, and a private chain of
 * page tables (see hostile_main.rs, which declares them).
 */
#include <linux/types.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/random.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <asm/msr.h>
#include <asm/special_insns.h>
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

u64 ebb_hostile_virt_to_phys(u64 virt)
{
	return __pa(virt);
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

/*
 * A private chain of page tables mapping one page: a free user-half slot of the
 * active PML4 points at zeroed PDPT, PD and PT pages, all supervisor-only. Nothing
 * on this CPU touches the addresses it maps; only ebbhv's walker reads the chain,
 * for a hypercall buffer there. Preemption stays off while it is installed, so
 * that the hypercalls walk the page tables it is installed in.
 */
static struct {
	u64 *pml4e;
	u64 pdpt_entry;
	unsigned long pages[3];
} chain;

#define CHAIN_TABLE (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED)

u64 ebb_hostile_chain_map(u64 phys)
{
	u64 *pml4, *pdpt, *pd, *pt;
	int slot, i;

	for (i = 0; i < 3; i++) {
		chain.pages[i] = get_zeroed_page(GFP_KERNEL);
		if (!chain.pages[i]) {
			while (i--)
				free_page(chain.pages[i]);
			return 0;
		}
	}
	pdpt = (u64 *)chain.pages[0];
	pd = (u64 *)chain.pages[1];
	pt = (u64 *)chain.pages[2];
	pdpt[0] = __pa(pd) | CHAIN_TABLE;
	pd[0] = __pa(pt) | CHAIN_TABLE;
	pt[0] = (phys & PAGE_MASK) | CHAIN_TABLE | _PAGE_DIRTY;
	preempt_disable();
	pml4 = __va(read_cr3_pa());
	/* Slot 0 holds the first 512 GiB a process may map; 255 its stack. */
	for (slot = 1; slot < 255 && pml4[slot]; slot++)
		;
	if (slot == 255) {
		preempt_enable();
		for (i = 0; i < 3; i++)
			free_page(chain.pages[i]);
		return 0;
	}
	chain.pml4e = &pml4[slot];
	chain.pdpt_entry = __pa(pdpt) | CHAIN_TABLE;
	WRITE_ONCE(*chain.pml4e, chain.pdpt_entry);
	return ((u64)slot << 39) | (phys & ~PAGE_MASK);
}

void ebb_hostile_chain_pml4_bits(u64 bits)
{
	WRITE_ONCE(*chain.pml4e, chain.pdpt_entry | bits);
}

void ebb_hostile_chain_unmap(void)
{
	int i;

	WRITE_ONCE(*chain.pml4e, 0);
	/*
	 * The CPU never used the chain, but a speculative walk may have cached it:
	 * reloading CR3 drops this address space's non-global translations.
	 */
	write_cr3(__read_cr3());
	preempt_enable();
	for (i = 0; i < 3; i++)
		free_page(chain.pages[i]);
}
