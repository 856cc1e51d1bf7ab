// SPDX-License-Identifier: GPL-2.0

//! ebb: elastic memory for Xen guests.
//!
//! The crate root declares the modules and the kernel module: the balloon
//! (`balloon/`), memory hotplug (`hotplug/`), the kernel-side abstractions (`rust/`)
//! and the module's lifetime (`driver.rs`). `hotplug` and `rust` are the top-level
//! folders of the same names, reached through the relative symlinks beside this file
//! (see Kbuild).

use kernel::prelude::*;

mod balloon;
mod driver;
mod hotplug;
mod lost_frames;
mod rust;

module! {
    type: driver::Ebb,
    name: "ebb",
    authors: ["The ebb developers"],
    description: "Elastic memory for Xen guests: ballooning and memory hotplug",
    license: "GPL",
    params: {
        pv_mode: bool {
            default: false,
            description: "Drive the hypervisor as on a PV guest (4 KiB extents, no memory hotplug) \
                          on a PVH or HVM guest too; for testing the PV path",
        },
        pv_hot_remove: bool {
            default: false,
            description: "On a PV guest, remove the memory blocks ebb added when the target \
                          falls. Only for a kernel that releases the page tables of removed \
                          memory to Xen (ebb's scripts/kernel-patches/): others oops after \
                          a removal",
        },
    },
}
