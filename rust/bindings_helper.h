/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers whose declarations ebb.ko needs and `kernel::bindings` does not provide.
 * bindgen reads this file; rust/bindgen_parameters selects what it emits.
 */
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <xen/interface/xen.h>
#include <xen/interface/memory.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "helpers.h"
