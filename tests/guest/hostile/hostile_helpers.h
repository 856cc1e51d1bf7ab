/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C helpers of ebb_hostile; hostile_main.rs declares the same functions in its
 * `extern "C"` block.
 */
#ifndef EBB_HOSTILE_HELPERS_H
#define EBB_HOSTILE_HELPERS_H

#include <linux/types.h>

bool ebb_hostile_xen_pvh_domain(void);
int ebb_hostile_rdmsr_safe(u32 msr, u64 *value);
int ebb_hostile_wrmsr_safe(u32 msr, u64 value);
u64 ebb_hostile_phys_to_virt(u64 phys);
u64 ebb_hostile_virt_to_phys(u64 virt);
u64 ebb_hostile_ioremap(u64 phys, u64 size);
void ebb_hostile_iounmap(u64 virt);
u64 ebb_hostile_random(void);
u64 ebb_hostile_now_ms(void);
void ebb_hostile_cond_resched(void);
u64 ebb_hostile_chain_map(u64 phys);
void ebb_hostile_chain_pml4_bits(u64 bits);
void ebb_hostile_chain_unmap(void);

#endif
