/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C helpers of ebb_xenmem; xenmem_main.rs declares the same functions in its
 * `extern "C"` block.
 */
#ifndef EBB_XENMEM_HELPERS_H
#define EBB_XENMEM_HELPERS_H

#include <linux/types.h>

bool ebb_xenmem_xen_pvh_domain(void);
int ebb_xenmem_extraversion(char *version);
s64 ebb_xenmem_memory_op(unsigned int cmd, void *arg);
int ebb_xenmem_store_pfn(u64 *pfn);
int ebb_xenmem_alloc(unsigned int order, u64 *pfn);
void ebb_xenmem_free(u64 pfn, unsigned int order);
u64 ebb_xenmem_pfn_to_virt(u64 pfn);

#endif
