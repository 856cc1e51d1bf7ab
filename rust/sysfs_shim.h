/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C balloon driver's sysfs device, /sys/devices/system/xen_memory/xen_memory0/,
 * registered in C (the Rust kernel crate has no attribute groups) and served by
 * Rust callbacks. The handle is opaque to Rust.
 */
#ifndef EBB_SYSFS_SHIM_H
#define EBB_SYSFS_SHIM_H

#include <linux/types.h>

/* Every file of the device; the C driver's first, then ebb's own (under ebb/). */
enum ebb_sysfs_attr {
	EBB_SYSFS_TARGET_KB,
	EBB_SYSFS_TARGET,
	EBB_SYSFS_SCHEDULE_DELAY,
	EBB_SYSFS_MAX_SCHEDULE_DELAY,
	EBB_SYSFS_RETRY_COUNT,
	EBB_SYSFS_MAX_RETRY_COUNT,
	EBB_SYSFS_SCRUB_PAGES,
	EBB_SYSFS_CURRENT_KB,
	EBB_SYSFS_LOW_KB,
	EBB_SYSFS_HIGH_KB,
	EBB_SYSFS_STATE,
	EBB_SYSFS_REASON,
	EBB_SYSFS_REQUESTED_KB,
	EBB_SYSFS_FLOOR_KB,
	EBB_SYSFS_MAX_KB,
	EBB_SYSFS_BALLOONED_PAGES,
	EBB_SYSFS_HYPERCALLS,
	EBB_SYSFS_PAGES_OUT,
	EBB_SYSFS_PAGES_IN,
	EBB_SYSFS_FAILURES,
	EBB_SYSFS_OOM_DEFLATED_PAGES,
	EBB_SYSFS_REJECTED_TARGETS,
	EBB_SYSFS_HOTPLUG_BLOCKS,
	EBB_SYSFS_HOTPLUG_ONLINED,
	EBB_SYSFS_HOTPLUG_BACKED_PAGES,
	EBB_SYSFS_HOTPLUG_BALLOONED_PAGES,
	EBB_SYSFS_HOTPLUG_UNREMOVABLE,
	EBB_SYSFS_HOTPLUG_BLOCK_LIST,
};

struct ebb_sysfs;

/* Fill @buf (PAGE_SIZE bytes) and return the length, or a negative errno. */
typedef ssize_t (*ebb_sysfs_show_t)(void *ctx, enum ebb_sysfs_attr attr, char *buf);
/* Parse @len bytes of @buf; return @len or a negative errno. */
typedef ssize_t (*ebb_sysfs_store_t)(void *ctx, enum ebb_sysfs_attr attr,
				     const char *buf, size_t len);

/* Returns the handle or an ERR_PTR; @ctx is passed to both callbacks. */
struct ebb_sysfs *ebb_sysfs_register(void *ctx, ebb_sysfs_show_t show,
				     ebb_sysfs_store_t store);
/* Removes the files; no callback runs once this returns. */
void ebb_sysfs_unregister(struct ebb_sysfs *sysfs);

#endif
