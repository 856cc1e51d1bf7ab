// SPDX-License-Identifier: GPL-2.0

//! ebb: elastic memory for Xen guests.
//!
//! The crate root declares the modules and the kernel module; the driver lives in
//! `xen-balloon/` (ballooning), `hotplug/` (memory hotplug) and `rust/` (kernel-side
//! abstractions).

use kernel::prelude::*;

mod balloon;
#[path = "../rust/bindings.rs"]
mod bindings;
#[path = "../rust/delayed_work.rs"]
mod delayed_work;
mod driver;
mod engine;
#[path = "../hotplug/mod.rs"]
mod hotplug;
mod interfaces;
#[path = "../rust/memory.rs"]
mod memory;
#[path = "../rust/memory_hotplug.rs"]
mod memory_hotplug;
#[path = "../rust/memory_notifier.rs"]
mod memory_notifier;
#[path = "../rust/notifier.rs"]
mod notifier;
#[path = "../rust/oom.rs"]
mod oom;
#[path = "../rust/page_run.rs"]
mod page_run;
#[path = "../rust/sysfs.rs"]
mod sysfs;
mod target;
#[path = "../rust/xen.rs"]
mod xen;
#[path = "../rust/xen_reservation.rs"]
mod xen_reservation;
#[path = "../rust/xenstore.rs"]
mod xenstore;

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
    },
}
