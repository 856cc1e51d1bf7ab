// SPDX-License-Identifier: GPL-2.0

//! The module's lifetime: what loading sets up and unloading takes down.
//!
//! Load: read the domain's reservation, claim the hotplug region above it, create the
//! balloon, then register the online-page callback and the memory notifier, and the
//! balloon's faces (sysfs, the xenstore watch, the OOM notifier). Unload: unregister
//! the faces in reverse order so that nothing can wake the worker, stop the worker,
//! give every ballooned page back to the guest, remove the blocks hotplug added (the
//! notifier gives their frames back, the callback backs whatever a failed offline
//! re-onlines), and only then unregister the notifier and restore the callback.

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::balloon::Balloon;
use crate::hotplug::Granularity;
use crate::hotplug::Hotplug;
use crate::interfaces::TARGET_NODE;
use crate::memory;
use crate::memory_hotplug::OnlineCallback;
use crate::memory_notifier::MemoryNotifier;
use crate::oom::OomNotifier;
use crate::sysfs::SysfsDevice;
use crate::target::pages_to_kib;
use crate::target::Limits;
use crate::xen::DomainType;
use crate::xen_reservation;
use crate::xenstore::Watch;

/// The loaded driver.
pub(crate) struct Ebb {
    domain: DomainType,
    balloon: Arc<Balloon>,
    online_callback: Option<OnlineCallback<Balloon>>,
    memory_notifier: Option<MemoryNotifier<Balloon>>,
    oom: Option<OomNotifier<Balloon>>,
    watch: Option<Watch<Balloon>>,
    sysfs: Option<SysfsDevice<Balloon>>,
}

impl kernel::Module for Ebb {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let Some(domain) = DomainType::current() else {
            pr_err!("not running on Xen: nothing to balloon, refusing to load\n");
            return Err(ENODEV);
        };
        let granularity = Granularity::of_running_kernel();
        let managed = memory::total_ram_pages();
        let reservation = xen_reservation::current_reservation().unwrap_or_else(|err| {
            pr_warn!(
                "XENMEM_current_reservation failed ({:?}); using MemTotal\n",
                err
            );
            managed
        });
        let maximum = xen_reservation::maximum_reservation().ok();
        let pv_mode = crate::module_parameters::pv_mode.value();
        let superpages = domain.superpage_extents() && !pv_mode;
        if pv_mode && domain != DomainType::Pv {
            pr_info!("pv_mode: 4 KiB extents and no hotplug, as on a PV guest\n");
        }
        // Hotplug backs ebb's blocks in 2 MiB extents by guest frame: not on PV, whose
        // p2m is per 4 KiB page and kept by the guest.
        let hotplug = match maximum {
            Some(maximum) if superpages => Hotplug::new(granularity, reservation, maximum)?,
            _ => None,
        };
        let reachable = hotplug
            .as_ref()
            .map_or(reservation, |hotplug| hotplug.end_pfn());
        let limits = Limits::new(reservation, managed, maximum, reachable);
        let balloon = Arc::pin_init(
            Balloon::new(reservation, limits, hotplug, superpages)?,
            GFP_KERNEL,
        )?;

        let mut ebb = Self {
            domain,
            balloon,
            online_callback: None,
            memory_notifier: None,
            oom: None,
            watch: None,
            sysfs: None,
        };
        if ebb.balloon.hotplug.is_some() {
            ebb.online_callback = Some(OnlineCallback::register(ebb.balloon.clone()).inspect_err(
                |_| pr_err!("another driver holds the online-page callback: refusing to load\n"),
            )?);
            ebb.memory_notifier = Some(MemoryNotifier::register(ebb.balloon.clone())?);
        }
        ebb.sysfs = Some(SysfsDevice::register(ebb.balloon.clone())?);
        ebb.watch = Some(Watch::new(TARGET_NODE, ebb.balloon.clone())?);
        ebb.oom = Some(OomNotifier::register(ebb.balloon.clone())?);
        pr_info!(
            "loaded on a Xen {} domain; memory blocks of {} MiB; holding {} KiB, targets {}..{} KiB\n",
            domain.name(),
            granularity.block_bytes >> 20,
            pages_to_kib(reservation),
            pages_to_kib(limits.floor_pages),
            pages_to_kib(limits.max_pages)
        );
        Ok(ebb)
    }
}

impl Drop for Ebb {
    fn drop(&mut self) {
        self.oom = None;
        self.watch = None;
        self.sysfs = None;
        self.balloon.stop();
        let left = self.balloon.return_all();
        if let Some(hotplug) = &self.balloon.hotplug {
            let blocks = hotplug.remove_all();
            if blocks > 0 {
                pr_info!(
                    "unload: removed {} hot-added memory blocks, {} KiB back to the hypervisor\n",
                    blocks,
                    pages_to_kib(hotplug.take_changes().released)
                );
            }
        }
        self.memory_notifier = None;
        self.online_callback = None;
        if left == 0 {
            pr_info!("unloaded from the Xen {} domain\n", self.domain.name());
        } else {
            pr_err!(
                "unloaded from the Xen {} domain with {} pages ({} KiB) still ballooned: the hypervisor \
                 could not back them; they stay out of the guest until reboot\n",
                self.domain.name(),
                left,
                pages_to_kib(left)
            );
        }
    }
}
