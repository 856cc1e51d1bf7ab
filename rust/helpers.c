// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inline and macro kernel APIs (see helpers.h).
 */
#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/vmstat.h>
#include <linux/workqueue.h>
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#include <xen/interface/memory.h>
#include <xen/mem-reservation.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "helpers.h"

bool ebb_helper_xen_domain(void)
{
	return xen_domain();
}

bool ebb_helper_xen_pv_domain(void)
{
	return xen_pv_domain();
}

bool ebb_helper_xen_pvh_domain(void)
{
	return xen_pvh_domain();
}

long ebb_helper_reservation_op(unsigned int cmd, xen_pfn_t *frames,
			       unsigned long nr_extents, unsigned int extent_order)
{
	struct xen_memory_reservation reservation = {
		.nr_extents = nr_extents,
		.extent_order = extent_order,
		.domid = DOMID_SELF,
	};

	set_xen_guest_handle(reservation.extent_start, frames);
	return HYPERVISOR_memory_op(cmd, &reservation);
}

long ebb_helper_domain_memory_op(unsigned int cmd)
{
	domid_t domid = DOMID_SELF;

	return HYPERVISOR_memory_op(cmd, &domid);
}

unsigned long ebb_helper_pfn_to_gfn(unsigned long pfn)
{
	return pfn_to_gfn(pfn);
}

void ebb_helper_pv_unmap_page(struct page *page)
{
	xenmem_reservation_va_mapping_reset(1, &page);
}

/*
 * ebb_helper_pv_unmap_page() flushes no TLB, so on a PV guest with several vCPUs
 * another vCPU may still reach the old machine frame through the page's kernel
 * mapping after the frame went back to Xen, and keep reading and writing it after
 * the page is repopulated with another frame. The C driver calls flush_tlb_all(),
 * which modules cannot; MMUEXT_TLB_FLUSH_ALL flushes every vCPU of the domain, which
 * covers the kernel's mappings because a PV guest runs without global pages (Xen PV
 * clears CR4.PGE). Nothing to do on PVH or HVM, where the kernel mapping stays.
 */
void ebb_helper_pv_flush_tlbs(void)
{
	struct mmuext_op op = { .cmd = MMUEXT_TLB_FLUSH_ALL };

	if (xen_pv_domain())
		WARN_ON_ONCE(HYPERVISOR_mmuext_op(&op, 1, NULL, DOMID_SELF));
}

void ebb_helper_pv_map_page(struct page *page, xen_pfn_t frame)
{
	xenmem_reservation_va_mapping_update(1, &page, &frame);
}

/*
 * PV: the kernel maps every pfn above its RAM to the machine frame of the same
 * number at boot (identity, for PCI BARs), and memory ebb hot-adds lies there.
 * Before a block is added, its p2m leaves are allocated (so that mapping a frame
 * there later cannot fail for want of memory, which the kernel's mapping helper
 * would not report) and its identity entries become invalid, as the C driver makes
 * them: the kernel's direct map of the new block then starts out not present
 * instead of mapping machine frames the domain does not own. -EEXIST if a frame is
 * mapped there.
 */
int ebb_helper_pv_p2m_prepare(unsigned long pfn, unsigned long nr_pages)
{
#ifdef CONFIG_XEN_PV
	unsigned long i, mfn;
	int err;

	for (i = 0; i < nr_pages; i += P2M_PER_PAGE) {
		err = xen_alloc_p2m_entry(pfn + i);
		if (err)
			return err;
	}
	for (i = 0; i < nr_pages; i++) {
		mfn = get_phys_to_machine(pfn + i);
		if (mfn != INVALID_P2M_ENTRY && !(mfn & IDENTITY_FRAME_BIT))
			return -EEXIST;
	}
	for (i = 0; i < nr_pages; i++)
		WRITE_ONCE(xen_p2m_addr[pfn + i], INVALID_P2M_ENTRY);
	return 0;
#else
	return -EOPNOTSUPP;
#endif
}

/*
 * PV: the machine frame backing a pfn of a removed ebb block (whose kernel mapping
 * went with the block), dropped from the p2m. The leaf is one ebb allocated
 * (ebb_helper_pv_p2m_prepare()), so a plain atomic store updates it, as the
 * kernel's own fast path does.
 */
unsigned long ebb_helper_pv_p2m_take(unsigned long pfn)
{
#ifdef CONFIG_XEN_PV
	unsigned long mfn = get_phys_to_machine(pfn);

	WRITE_ONCE(xen_p2m_addr[pfn], INVALID_P2M_ENTRY);
	return mfn;
#else
	return INVALID_P2M_ENTRY;
#endif
}

/* PV: undoes ebb_helper_pv_p2m_take() for a frame the hypervisor did not take. */
void ebb_helper_pv_p2m_put(unsigned long pfn, unsigned long mfn)
{
#ifdef CONFIG_XEN_PV
	WRITE_ONCE(xen_p2m_addr[pfn], mfn);
#endif
}

struct page *ebb_helper_alloc_pages(gfp_t gfp, unsigned int order)
{
	return alloc_pages(gfp, order);
}

void ebb_helper_free_page(struct page *page)
{
	__free_page(page);
}

unsigned long ebb_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

struct page *ebb_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

void ebb_helper_clear_highpage(struct page *page)
{
	clear_highpage(page);
}

void ebb_helper_set_page_offline(struct page *page)
{
	__SetPageOffline(page);
}

void ebb_helper_clear_page_offline(struct page *page)
{
	__ClearPageOffline(page);
}

/*
 * Drops the reference that onlining left on each PageOffline page of the range, so
 * that offlining skips them (see PageOffline in linux/page-flags.h). Returns false,
 * with every reference restored, if a page is referenced by someone else too.
 */
bool ebb_helper_pages_put_offline_refs(unsigned long pfn, unsigned long nr_pages)
{
	unsigned long i;

	for (i = 0; i < nr_pages; i++) {
		if (!page_ref_dec_and_test(pfn_to_page(pfn + i))) {
			ebb_helper_pages_get_offline_refs(pfn, i + 1);
			return false;
		}
	}
	return true;
}

/* Takes back the references that ebb_helper_pages_put_offline_refs() dropped. */
void ebb_helper_pages_get_offline_refs(unsigned long pfn, unsigned long nr_pages)
{
	unsigned long i;

	for (i = 0; i < nr_pages; i++)
		page_ref_inc(pfn_to_page(pfn + i));
}

struct ebb_removal {
	u64 start;
	u64 size;
	int rc;
	struct completion done;
};

static int ebb_removal_thread(void *data)
{
	struct ebb_removal *removal = data;

	/* offline_pages() gives up with -EINTR once a signal is pending. */
	allow_signal(SIGKILL);
	removal->rc = offline_and_remove_memory(removal->start, removal->size);
	kthread_complete_and_exit(&removal->done, 0);
}

/*
 * offline_and_remove_memory(), given up after timeout_ms. An offline retries
 * migrating the pages it holds until a signal is pending: in a kernel worker, which no
 * signal reaches, a page that never moves would keep it (and rmmod, which waits for
 * the worker) forever. So the removal runs in a thread of its own that accepts
 * SIGKILL, and gets one when the time is up: the offline then fails with -EINTR and
 * rolls back, and the block stays as it was.
 */
int ebb_helper_offline_and_remove_within(u64 start, u64 size, unsigned int timeout_ms)
{
	struct ebb_removal removal = { .start = start, .size = size };
	struct task_struct *task;

	init_completion(&removal.done);
	task = kthread_create(ebb_removal_thread, &removal, "ebb-remove");
	if (IS_ERR(task))
		return PTR_ERR(task);
	get_task_struct(task);
	wake_up_process(task);
	if (!wait_for_completion_timeout(&removal.done, msecs_to_jiffies(timeout_ms))) {
		send_sig(SIGKILL, task, 1);
		wait_for_completion(&removal.done);
	}
	put_task_struct(task);
	return removal.rc;
}

unsigned long ebb_helper_totalram_pages(void)
{
	return totalram_pages();
}

unsigned long ebb_helper_present_pages(void)
{
	return get_num_physpages();
}

unsigned long ebb_helper_free_pages(void)
{
	return global_zone_page_state(NR_FREE_PAGES);
}

int ebb_helper_phys_to_nid(u64 phys)
{
	return memory_add_physaddr_to_nid(phys);
}

bool ebb_helper_ram_present(u64 start, u64 size)
{
	return region_intersects(start, size, IORESOURCE_SYSTEM_RAM, IORES_DESC_NONE) !=
	       REGION_DISJOINT;
}

/* The name of the zone of an online page, or NULL when the page is not online. */
const char *ebb_helper_zone_name(unsigned long pfn)
{
	struct page *page = pfn_to_online_page(pfn);

	return page ? page_zone(page)->name : NULL;
}

void ebb_helper_init_delayed_work(struct delayed_work *dwork, work_func_t fn)
{
	INIT_DELAYED_WORK(dwork, fn);
}

struct delayed_work *ebb_helper_to_delayed_work(struct work_struct *work)
{
	return to_delayed_work(work);
}

void ebb_helper_mod_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	mod_delayed_work(system_freezable_wq, dwork, delay);
}

void ebb_helper_queue_delayed_work(struct delayed_work *dwork, unsigned long delay)
{
	queue_delayed_work(system_freezable_wq, dwork, delay);
}

/*
 * Copies the value of dir/node into buf (no NUL added); returns its length, or
 * -E2BIG when it does not fit. The caller parses it: xenbus_scanf would take "12abc"
 * as 12.
 */
int ebb_helper_xenbus_read(const char *dir, const char *node, char *buf, size_t size)
{
	unsigned int len;
	char *value = xenbus_read(XBT_NIL, dir, node, &len);
	int ret = len;

	if (IS_ERR(value))
		return PTR_ERR(value);
	if (len > size)
		ret = -E2BIG;
	else
		memcpy(buf, value, len);
	kfree(value);
	return ret;
}

int ebb_helper_xenbus_write(const char *dir, const char *node, const char *value)
{
	return xenbus_write(XBT_NIL, dir, node, value);
}

int ebb_helper_xenbus_rm(const char *dir, const char *node)
{
	return xenbus_rm(XBT_NIL, dir, node);
}

/*
 * Lists the children of dir/node into buf as NUL-terminated names one after the
 * other; returns the bytes used, or -E2BIG when they do not fit.
 */
int ebb_helper_xenbus_directory(const char *dir, const char *node, char *buf, size_t size)
{
	unsigned int count, i;
	char **names = xenbus_directory(XBT_NIL, dir, node, &count);
	size_t used = 0;
	int ret = 0;

	if (IS_ERR(names))
		return PTR_ERR(names);
	for (i = 0; i < count; i++) {
		size_t len = strlen(names[i]) + 1;

		if (len > size - used || used + len > INT_MAX) {
			ret = -E2BIG;
			break;
		}
		memcpy(buf + used, names[i], len);
		used += len;
	}
	kfree(names);
	return ret ? ret : (int)used;
}

/*
 * The frame behind pfn lost its contents: memory_failure() kills the processes that
 * map it (now or, late kill, when they touch it), drops a clean page-cache page and
 * takes a free page out of the allocator. Without CONFIG_MEMORY_FAILURE the kernel
 * cannot, and the caller must not give the frame away.
 */
bool ebb_helper_memory_failure_supported(void)
{
	return IS_ENABLED(CONFIG_MEMORY_FAILURE);
}

int ebb_helper_memory_failure(unsigned long pfn)
{
	if (!IS_ENABLED(CONFIG_MEMORY_FAILURE))
		return -EOPNOTSUPP;
	return memory_failure(pfn, 0);
}

void ebb_helper_xenbus_watch_init(struct xenbus_watch *watch, const char *node,
				  void (*callback)(struct xenbus_watch *, const char *,
						   const char *))
{
	*watch = (struct xenbus_watch){ .node = node, .callback = callback };
}
