/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C balloon driver's sysfs device, /sys/devices/system/xen_memory/xen_memory0/,
 * registered in C (the Rust kernel crate has no attribute groups) and served by
 * Rust callbacks. Its files come from a table the Rust side passes in (each file
 * declared once, in xen-balloon/balloon/files.rs); callbacks name a file by its index
 * in that table. The handle is opaque to Rust.
 */
#ifndef EBB_SYSFS_SHIM_H
#define EBB_SYSFS_SHIM_H

#include <linux/types.h>

/* One file: its name, its subdirectory (NULL: the device's own), and its mode. */
struct ebb_sysfs_file {
	const char *name;
	const char *dir;
	/* Mode 0644 (and the store callback) when true, 0444 when false. */
	bool writable;
};

struct ebb_sysfs;

/* Fill @buf (PAGE_SIZE bytes) and return the length, or a negative errno. */
typedef ssize_t (*ebb_sysfs_show_t)(void *ctx, size_t file, char *buf);
/* Parse @len bytes of @buf; return @len or a negative errno. */
typedef ssize_t (*ebb_sysfs_store_t)(void *ctx, size_t file, const char *buf, size_t len);

/*
 * Returns the handle or an ERR_PTR; @ctx is passed to both callbacks. @files (and
 * the strings it points to) must stay valid until ebb_sysfs_unregister() returns.
 */
struct ebb_sysfs *ebb_sysfs_register(void *ctx, ebb_sysfs_show_t show,
				     ebb_sysfs_store_t store,
				     const struct ebb_sysfs_file *files, size_t nr_files);
/* Removes the files; no callback runs once this returns. */
void ebb_sysfs_unregister(struct ebb_sysfs *sysfs);

#endif
