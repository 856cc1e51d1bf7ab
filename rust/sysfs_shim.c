// SPDX-License-Identifier: GPL-2.0
/*
 * The xen_memory subsystem and its xen_memory0 device with the C driver's files (same
 * names, modes and directory layout) plus ebb's status under ebb/. Every show and
 * store is forwarded to Rust with the attribute's id; no policy lives here.
 */
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "sysfs_shim.h"

struct ebb_sysfs {
	struct device dev;
	/* Completed by the device's release; see ebb_sysfs_unregister(). */
	struct completion released;
	void *ctx;
	ebb_sysfs_show_t show;
	ebb_sysfs_store_t store;
};

struct ebb_sysfs_attribute {
	struct device_attribute attr;
	enum ebb_sysfs_attr id;
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

	return sysfs->show(sysfs->ctx, a->id, buf);
}

static ssize_t ebb_sysfs_store(struct device *dev, struct device_attribute *attr,
			       const char *buf, size_t len)
{
	struct ebb_sysfs *sysfs = container_of(dev, struct ebb_sysfs, dev);
	struct ebb_sysfs_attribute *a = container_of(attr, struct ebb_sysfs_attribute, attr);

	/* As the C driver: a target is the administrator's to set, not any root's. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return sysfs->store(sysfs->ctx, a->id, buf, len);
}

#define EBB_ATTR(_name, _mode, _id)					\
	static struct ebb_sysfs_attribute ebb_attr_##_name = {		\
		.attr = __ATTR(_name, _mode, ebb_sysfs_show, ebb_sysfs_store), \
		.id = _id,						\
	}

EBB_ATTR(target_kb, 0644, EBB_SYSFS_TARGET_KB);
EBB_ATTR(target, 0644, EBB_SYSFS_TARGET);
EBB_ATTR(schedule_delay, 0444, EBB_SYSFS_SCHEDULE_DELAY);
EBB_ATTR(max_schedule_delay, 0644, EBB_SYSFS_MAX_SCHEDULE_DELAY);
EBB_ATTR(retry_count, 0444, EBB_SYSFS_RETRY_COUNT);
EBB_ATTR(max_retry_count, 0644, EBB_SYSFS_MAX_RETRY_COUNT);
EBB_ATTR(scrub_pages, 0644, EBB_SYSFS_SCRUB_PAGES);
EBB_ATTR(current_kb, 0444, EBB_SYSFS_CURRENT_KB);
EBB_ATTR(low_kb, 0444, EBB_SYSFS_LOW_KB);
EBB_ATTR(high_kb, 0444, EBB_SYSFS_HIGH_KB);
EBB_ATTR(state, 0444, EBB_SYSFS_STATE);
EBB_ATTR(reason, 0444, EBB_SYSFS_REASON);
EBB_ATTR(requested_kb, 0444, EBB_SYSFS_REQUESTED_KB);
EBB_ATTR(floor_kb, 0444, EBB_SYSFS_FLOOR_KB);
EBB_ATTR(max_kb, 0444, EBB_SYSFS_MAX_KB);
EBB_ATTR(ballooned_pages, 0444, EBB_SYSFS_BALLOONED_PAGES);
EBB_ATTR(hypercalls, 0444, EBB_SYSFS_HYPERCALLS);
EBB_ATTR(pages_out, 0444, EBB_SYSFS_PAGES_OUT);
EBB_ATTR(pages_in, 0444, EBB_SYSFS_PAGES_IN);
EBB_ATTR(failures, 0444, EBB_SYSFS_FAILURES);
EBB_ATTR(oom_deflated_pages, 0444, EBB_SYSFS_OOM_DEFLATED_PAGES);
EBB_ATTR(rejected_targets, 0444, EBB_SYSFS_REJECTED_TARGETS);
EBB_ATTR(hotplug_blocks, 0444, EBB_SYSFS_HOTPLUG_BLOCKS);
EBB_ATTR(hotplug_onlined, 0444, EBB_SYSFS_HOTPLUG_ONLINED);
EBB_ATTR(hotplug_backed_pages, 0444, EBB_SYSFS_HOTPLUG_BACKED_PAGES);
EBB_ATTR(hotplug_ballooned_pages, 0444, EBB_SYSFS_HOTPLUG_BALLOONED_PAGES);
EBB_ATTR(hotplug_unremovable, 0444, EBB_SYSFS_HOTPLUG_UNREMOVABLE);
EBB_ATTR(hotplug_block_list, 0444, EBB_SYSFS_HOTPLUG_BLOCK_LIST);

static struct attribute *ebb_sysfs_main_attrs[] = {
	&ebb_attr_target_kb.attr.attr,
	&ebb_attr_target.attr.attr,
	&ebb_attr_schedule_delay.attr.attr,
	&ebb_attr_max_schedule_delay.attr.attr,
	&ebb_attr_retry_count.attr.attr,
	&ebb_attr_max_retry_count.attr.attr,
	&ebb_attr_scrub_pages.attr.attr,
	NULL
};

static struct attribute *ebb_sysfs_info_attrs[] = {
	&ebb_attr_current_kb.attr.attr,
	&ebb_attr_low_kb.attr.attr,
	&ebb_attr_high_kb.attr.attr,
	NULL
};

static struct attribute *ebb_sysfs_status_attrs[] = {
	&ebb_attr_state.attr.attr,
	&ebb_attr_reason.attr.attr,
	&ebb_attr_requested_kb.attr.attr,
	&ebb_attr_floor_kb.attr.attr,
	&ebb_attr_max_kb.attr.attr,
	&ebb_attr_ballooned_pages.attr.attr,
	&ebb_attr_hypercalls.attr.attr,
	&ebb_attr_pages_out.attr.attr,
	&ebb_attr_pages_in.attr.attr,
	&ebb_attr_failures.attr.attr,
	&ebb_attr_oom_deflated_pages.attr.attr,
	&ebb_attr_rejected_targets.attr.attr,
	&ebb_attr_hotplug_blocks.attr.attr,
	&ebb_attr_hotplug_onlined.attr.attr,
	&ebb_attr_hotplug_backed_pages.attr.attr,
	&ebb_attr_hotplug_ballooned_pages.attr.attr,
	&ebb_attr_hotplug_unremovable.attr.attr,
	&ebb_attr_hotplug_block_list.attr.attr,
	NULL
};

static const struct attribute_group ebb_sysfs_main_group = {
	.attrs = ebb_sysfs_main_attrs,
};

static const struct attribute_group ebb_sysfs_info_group = {
	.name = "info",
	.attrs = ebb_sysfs_info_attrs,
};

static const struct attribute_group ebb_sysfs_status_group = {
	.name = "ebb",
	.attrs = ebb_sysfs_status_attrs,
};

static const struct attribute_group *ebb_sysfs_groups[] = {
	&ebb_sysfs_main_group,
	&ebb_sysfs_info_group,
	&ebb_sysfs_status_group,
	NULL
};

static void ebb_sysfs_release(struct device *dev)
{
	complete(&container_of(dev, struct ebb_sysfs, dev)->released);
}

struct ebb_sysfs *ebb_sysfs_register(void *ctx, ebb_sysfs_show_t show,
				     ebb_sysfs_store_t store)
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
	sysfs->dev.id = 0;
	sysfs->dev.bus = &ebb_sysfs_subsys;
	sysfs->dev.groups = ebb_sysfs_groups;
	sysfs->dev.release = ebb_sysfs_release;

	err = device_register(&sysfs->dev);
	if (err) {
		put_device(&sysfs->dev);
		wait_for_completion(&sysfs->released);
		kfree(sysfs);
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
	kfree(sysfs);
	bus_unregister(&ebb_sysfs_subsys);
}
