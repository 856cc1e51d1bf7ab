// SPDX-License-Identifier: GPL-2.0

//! The kernel-side abstractions ebb.ko needs and the kernel crate does not have: safe
//! wrappers over the Xen, memory hotplug, notifier, workqueue and sysfs APIs, written as
//! if for upstream `rust/kernel`. Only these modules use [`bindings`]; the driver
//! (`balloon`, `hotplug`) goes through them.

pub(crate) mod bindings;
pub(crate) mod delayed_work;
pub(crate) mod memory;
pub(crate) mod memory_hotplug;
pub(crate) mod memory_notifier;
pub(crate) mod notifier;
pub(crate) mod oom;
pub(crate) mod page_run;
pub(crate) mod pv_p2m;
pub(crate) mod sysfs;
pub(crate) mod xen;
pub(crate) mod xen_reservation;
pub(crate) mod xenstore;
