/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for kernel APIs that are static inline functions or macros, which Rust
 * cannot call directly. Each is a one-line wrapper; the Rust side lives in rust/.
 */
#ifndef EBB_HELPERS_H
#define EBB_HELPERS_H

#include <linux/gfp_types.h>
#include <linux/types.h>
#include <linux/workqueue_types.h>
#include <xen/interface/xen.h>

struct page;
struct xenbus_watch;

/* The Xen guest environment (xen/xen.h). */
bool ebb_helper_xen_domain(void);
bool ebb_helper_xen_pv_domain(void);
bool ebb_helper_xen_pvh_domain(void);

/* Memory reservation hypercalls for DOMID_SELF (HYPERVISOR_memory_op). */
long ebb_helper_reservation_op(unsigned int cmd, xen_pfn_t *frames,
			       unsigned long nr_extents, unsigned int extent_order);
long ebb_helper_domain_memory_op(unsigned int cmd);
unsigned long ebb_helper_pfn_to_gfn(unsigned long pfn);

/* PV only (no-ops elsewhere): the guest's own p2m and kernel mapping of a page. */
void ebb_helper_pv_unmap_page(struct page *page);
void ebb_helper_pv_flush_tlbs(void);
void ebb_helper_pv_map_page(struct page *page, xen_pfn_t frame);
int ebb_helper_pv_p2m_prepare(unsigned long pfn, unsigned long nr_pages);
unsigned long ebb_helper_pv_p2m_take(unsigned long pfn);
void ebb_helper_pv_p2m_put(unsigned long pfn, unsigned long mfn);

/* Pages. */
struct page *ebb_helper_alloc_pages(gfp_t gfp, unsigned int order);
void ebb_helper_free_page(struct page *page);
unsigned long ebb_helper_page_to_pfn(struct page *page);
struct page *ebb_helper_pfn_to_page(unsigned long pfn);
void ebb_helper_clear_highpage(struct page *page);
void ebb_helper_set_page_offline(struct page *page);
void ebb_helper_clear_page_offline(struct page *page);
bool ebb_helper_pages_put_offline_refs(unsigned long pfn, unsigned long nr_pages);
int ebb_helper_offline_and_remove_within(u64 start, u64 size, unsigned int timeout_ms);
void ebb_helper_pages_get_offline_refs(unsigned long pfn, unsigned long nr_pages);
unsigned long ebb_helper_totalram_pages(void);
unsigned long ebb_helper_present_pages(void);
unsigned long ebb_helper_free_pages(void);

/* Memory hotplug: the node of a guest-physical address (0 without NUMA). */
int ebb_helper_phys_to_nid(u64 phys);
bool ebb_helper_ram_present(u64 start, u64 size);
const char *ebb_helper_zone_name(unsigned long pfn);

/* Linux's handling of lost memory (a no-op error without CONFIG_MEMORY_FAILURE). */
bool ebb_helper_memory_failure_supported(void);
int ebb_helper_memory_failure(unsigned long pfn);

/* Delayed work on the freezable system workqueue. */
void ebb_helper_init_delayed_work(struct delayed_work *dwork, work_func_t fn);
struct delayed_work *ebb_helper_to_delayed_work(struct work_struct *work);
void ebb_helper_mod_delayed_work(struct delayed_work *dwork, unsigned long delay);
void ebb_helper_queue_delayed_work(struct delayed_work *dwork, unsigned long delay);

/* xenstore access without a transaction. */
int ebb_helper_xenbus_read(const char *dir, const char *node, char *buf, size_t size);
int ebb_helper_xenbus_write(const char *dir, const char *node, const char *value);
int ebb_helper_xenbus_rm(const char *dir, const char *node);
int ebb_helper_xenbus_directory(const char *dir, const char *node, char *buf, size_t size);
void ebb_helper_xenbus_watch_init(struct xenbus_watch *watch, const char *node,
				  void (*callback)(struct xenbus_watch *, const char *,
						   const char *));

#endif
