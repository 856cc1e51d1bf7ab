// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for the static inline kernel APIs and macros ebb_xenmem uses
 * (see xenmem_main.rs, which declares them).
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/types.h>
#include <xen/xen.h>
#include <xen/hvm.h>
#include <xen/interface/hvm/params.h>
#include <xen/interface/version.h>
#include <asm/xen/hypercall.h>

#include "xenmem_helpers.h"

bool ebb_xenmem_xen_pvh_domain(void)
{
	return xen_pvh_domain();
}

/* @version: room for a xen_extraversion_t (16 bytes). */
int ebb_xenmem_extraversion(char *version)
{
	return HYPERVISOR_xen_version(XENVER_extraversion, version);
}

s64 ebb_xenmem_memory_op(unsigned int cmd, void *arg)
{
	return HYPERVISOR_memory_op(cmd, arg);
}

int ebb_xenmem_store_pfn(u64 *pfn)
{
	return hvm_get_parameter(HVM_PARAM_STORE_PFN, pfn);
}

/* A naturally aligned block of 2^@order pages, by its first pfn. */
int ebb_xenmem_alloc(unsigned int order, u64 *pfn)
{
	struct page *page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);

	if (!page)
		return -ENOMEM;
	*pfn = page_to_pfn(page);
	return 0;
}

void ebb_xenmem_free(u64 pfn, unsigned int order)
{
	__free_pages(pfn_to_page(pfn), order);
}

u64 ebb_xenmem_pfn_to_virt(u64 pfn)
{
	return (u64)pfn_to_kaddr(pfn);
}
