// SPDX-License-Identifier: GPL-2.0

//! ebb: elastic memory for Xen guests.
//!
//! The crate root declares the modules and the kernel module; the driver lives in
//! `xen-balloon/` (ballooning), `hotplug/` (memory hotplug) and `rust/` (kernel-side
//! abstractions).

use kernel::prelude::*;

#[path = "../rust/bindings.rs"]
mod bindings;
mod driver;
#[path = "../hotplug/mod.rs"]
mod hotplug;
#[path = "../rust/memory.rs"]
mod memory;
#[path = "../rust/xen.rs"]
mod xen;

module! {
    type: driver::Ebb,
    name: "ebb",
    authors: ["The ebb developers"],
    description: "Elastic memory for Xen guests: ballooning and memory hotplug",
    license: "GPL",
}
