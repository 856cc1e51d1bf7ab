/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers whose declarations ebb.ko needs and `kernel::bindings` does not provide.
 * bindgen reads this file; rust/bindgen_parameters selects what it emits.
 */
#include <linux/gfp.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/oom.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "helpers.h"
#include "sysfs_shim.h"

/* GFP flags that `kernel::bindings` does not export, as constants bindgen can read. */
const gfp_t EBB_GFP_HIGHUSER = GFP_HIGHUSER;
const gfp_t EBB_GFP_NORETRY = __GFP_NORETRY;
const gfp_t EBB_GFP_NOMEMALLOC = __GFP_NOMEMALLOC;
const gfp_t EBB_GFP_NOWARN = __GFP_NOWARN;

/* Memory hotplug flags (linux/memory_hotplug.h), as constants bindgen can read. */
const mhp_t EBB_MHP_MERGE_RESOURCE = MHP_MERGE_RESOURCE;
const mhp_t EBB_MHP_NID_IS_MGID = MHP_NID_IS_MGID;
