// SPDX-License-Identifier: GPL-2.0
/*
 * The xen_memory subsystem and its xen_memory0 device, with the files of the table
 * the Rust side passes in (the C driver's, with their names, modes and directories,
 * plus ebb's status under ebb/). Every show and store is forwarded to Rust with the
 * file's index in that table; no policy lives here.
 */
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "sysfs_shim.h"

struct ebb_sysfs_attribute {
	struct device_attribute attr;
	size_t file;
};

struct ebb_sysfs {
	struct device dev;
	/* Completed by the device's release; see ebb_sysfs_unregister(). */
	struct completion released;
	void *ctx;
	ebb_sysfs_show_t show;
	ebb_sysfs_store_t store;
	/* One attribute per file of the table. */
	struct ebb_sysfs_attribute *attrs;
	/* One group per directory, and the NULL-terminated lists that the device takes. */
	struct attribute_group *groups;
	const struct attribute_group **group_list;
	struct attribute **attr_lists;
};

static const struct bus_type ebb_sysfs_subsys = {
	.name = "xen_memory",
	.dev_name = "xen_memory",
};

static ssize_t ebb_sysfs_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	struct ebb_sysfs *sysfs = container_of(dev, struct ebb_sysfs, dev);
	struct ebb_sysfs_attribute *a = container_of(attr, struct ebb_sysfs_attribute, attr);

	return sysfs->show(sysfs->ctx, a->file, buf);
}

static ssize_t ebb_sysfs_store(struct device *dev, struct device_attribute *attr,
			       const char *buf, size_t len)
{
	struct ebb_sysfs *sysfs = container_of(dev, struct ebb_sysfs, dev);
	struct ebb_sysfs_attribute *a = container_of(attr, struct ebb_sysfs_attribute, attr);

	/* As the C driver: a target is the administrator's to set, not any root's. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return sysfs->store(sysfs->ctx, a->file, buf, len);
}

static bool ebb_sysfs_same_dir(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/*
 * Builds the attributes and their groups from the table: one group per directory, in
 * the order the table first names it, with its files in table order. Every file has
 * the store callback, so that a write to a read-only one (which root may open) gets
 * the Rust side's answer.
 */
static int ebb_sysfs_build(struct ebb_sysfs *sysfs, const struct ebb_sysfs_file *files,
			   size_t nr_files)
{
	size_t i, j, g, nr_groups = 0, slot = 0;

	sysfs->attrs = kcalloc(nr_files, sizeof(*sysfs->attrs), GFP_KERNEL);
	sysfs->groups = kcalloc(nr_files, sizeof(*sysfs->groups), GFP_KERNEL);
	sysfs->group_list = kcalloc(nr_files + 1, sizeof(*sysfs->group_list), GFP_KERNEL);
	/* Every file once, and a NULL after each group's: at most one group per file. */
	sysfs->attr_lists = kcalloc(2 * nr_files, sizeof(*sysfs->attr_lists), GFP_KERNEL);
	if (!sysfs->attrs || !sysfs->groups || !sysfs->group_list || !sysfs->attr_lists)
		return -ENOMEM;

	for (i = 0; i < nr_files; i++) {
		struct ebb_sysfs_attribute *a = &sysfs->attrs[i];

		sysfs_attr_init(&a->attr.attr);
		a->attr.attr.name = files[i].name;
		a->attr.attr.mode = files[i].writable ? 0644 : 0444;
		a->attr.show = ebb_sysfs_show;
		a->attr.store = ebb_sysfs_store;
		a->file = i;
	}
	for (i = 0; i < nr_files; i++) {
		for (g = 0; g < nr_groups; g++)
			if (ebb_sysfs_same_dir(sysfs->groups[g].name, files[i].dir))
				break;
		if (g < nr_groups)
			continue;
		sysfs->groups[g].name = files[i].dir;
		sysfs->groups[g].attrs = &sysfs->attr_lists[slot];
		for (j = i; j < nr_files; j++)
			if (ebb_sysfs_same_dir(files[j].dir, files[i].dir))
				sysfs->attr_lists[slot++] = &sysfs->attrs[j].attr.attr;
		sysfs->attr_lists[slot++] = NULL;
		sysfs->group_list[nr_groups++] = &sysfs->groups[g];
	}
	sysfs->dev.groups = sysfs->group_list;
	return 0;
}

static void ebb_sysfs_free(struct ebb_sysfs *sysfs)
{
	kfree(sysfs->attr_lists);
	kfree(sysfs->group_list);
	kfree(sysfs->groups);
	kfree(sysfs->attrs);
	kfree(sysfs);
}

static void ebb_sysfs_release(struct device *dev)
{
	complete(&container_of(dev, struct ebb_sysfs, dev)->released);
}

struct ebb_sysfs *ebb_sysfs_register(void *ctx, ebb_sysfs_show_t show,
				     ebb_sysfs_store_t store,
				     const struct ebb_sysfs_file *files, size_t nr_files)
{
	struct ebb_sysfs *sysfs;
	int err;

	err = subsys_system_register(&ebb_sysfs_subsys, NULL);
	if (err)
		return ERR_PTR(err);

	sysfs = kzalloc(sizeof(*sysfs), GFP_KERNEL);
	if (!sysfs) {
		bus_unregister(&ebb_sysfs_subsys);
		return ERR_PTR(-ENOMEM);
	}
	init_completion(&sysfs->released);
	sysfs->ctx = ctx;
	sysfs->show = show;
	sysfs->store = store;
	err = ebb_sysfs_build(sysfs, files, nr_files);
	if (err) {
		ebb_sysfs_free(sysfs);
		bus_unregister(&ebb_sysfs_subsys);
		return ERR_PTR(err);
	}
	sysfs->dev.id = 0;
	sysfs->dev.bus = &ebb_sysfs_subsys;
	sysfs->dev.release = ebb_sysfs_release;

	err = device_register(&sysfs->dev);
	if (err) {
		put_device(&sysfs->dev);
		wait_for_completion(&sysfs->released);
		ebb_sysfs_free(sysfs);
		bus_unregister(&ebb_sysfs_subsys);
		return ERR_PTR(err);
	}
	return sysfs;
}

/*
 * The release callback is this module's code, and the last reference to the device
 * may go later than device_unregister() (a reader holding it; always, by seconds,
 * under CONFIG_DEBUG_KOBJECT_RELEASE): wait for it, so that it never runs after the
 * module is gone, and free the device here.
 */
void ebb_sysfs_unregister(struct ebb_sysfs *sysfs)
{
	device_unregister(&sysfs->dev);
	wait_for_completion(&sysfs->released);
	ebb_sysfs_free(sysfs);
	bus_unregister(&ebb_sysfs_subsys);
}
