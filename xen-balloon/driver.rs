// SPDX-License-Identifier: GPL-2.0

//! The module's lifetime: what loading sets up and unloading takes down.
//!
//! Load: read the domain's reservation, claim the hotplug region above it, create the
//! balloon, then register the online-page callback and the memory notifier, and the
//! balloon's faces (sysfs, the xenstore watches, the OOM notifier, the handler of lost
//! frames). Unload: unregister the faces in reverse order so that nothing can wake the
//! worker, stop the worker, give every ballooned page back to the guest, remove the
//! blocks hotplug added (the notifier gives their frames back, the callback backs
//! whatever a failed offline re-onlines), and only then unregister the notifier and
//! restore the callback.

use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;

use crate::balloon::interfaces::STATIC_MAX_NODE;
use crate::balloon::interfaces::SYSFS_FILES;
use crate::balloon::interfaces::TARGET_NODE;
use crate::balloon::target::kib_to_pages;
use crate::balloon::target::pages_to_kib;
use crate::balloon::target::parse_xenstore_number;
use crate::balloon::target::Limits;
use crate::balloon::Balloon;
use crate::hotplug::Backing;
use crate::hotplug::Granularity;
use crate::hotplug::Hotplug;
use crate::lost_frames::LostFrames;
use crate::lost_frames::BROKEN_FRAMES_NODE;
use crate::rust::memory;
use crate::rust::memory_hotplug::OnlineCallback;
use crate::rust::memory_notifier::MemoryNotifier;
use crate::rust::oom::OomNotifier;
use crate::rust::sysfs::SysfsDevice;
use crate::rust::xen::DomainType;
use crate::rust::xen_reservation;
use crate::rust::xenstore;
use crate::rust::xenstore::Watch;

/// Where ebb's hotplug region ends at the least, in pages: growing past the boot
/// maximum (`xl mem-max` at run time) needs room above it; x86 guests keep the
/// addresses from 3 GiB to 4 GiB for devices.
const GROWTH_REGION_END_PAGES: usize = (3 << 30) / kernel::page::PAGE_SIZE;

/// The pages the domain holds as the guest sees them, given the hypervisor's
/// `reservation`.
///
/// A PVH or HVM guest whose memory is less than its maximum runs in populate-on-demand
/// mode: its memory map covers the maximum (`memory/static-max`), but the hypervisor
/// has only `memory` pages to back it, and kills the domain when the guest touches more
/// than that. Such a guest holds, in its own view, its whole memory map, and must
/// balloon the difference to its target out before it uses it; the C driver counts
/// the same way (its current pages are the guest's present pages, and its targets are
/// lowered by what static-max holds beyond them). The hypervisor's count then follows
/// the balloon down to the target. Pages an earlier load had to leave out (the
/// hypervisor would not back them at unload: under populate-on-demand its maximum
/// follows the target) are in the map but neither backed nor the guest's any more.
fn held_pages(domain: DomainType, reservation: usize) -> usize {
    let present = memory::present_pages();
    if domain == DomainType::Pv || present <= reservation {
        return reservation;
    }
    let static_max = read_kib(c"memory", c"static-max").map_or(present, kib_to_pages);
    let left_out = read_kib(c"data", LEFT_OUT_NODE).map_or(0, kib_to_pages);
    let held = static_max.max(present).saturating_sub(left_out);
    pr_info!(
        "populate-on-demand: the memory map holds {} KiB ({} KiB of it left out by an earlier load), \
         the hypervisor backs {} KiB; the difference is ballooned out as the target says\n",
        pages_to_kib(static_max.max(present)),
        pages_to_kib(left_out),
        pages_to_kib(reservation)
    );
    held
}

/// Where an unload that could not get every page back records, in KiB and summed over
/// loads, what stays out of the guest until it reboots (read by [`held_pages`]).
const LEFT_OUT_NODE: &CStr = c"ebb-left-out-kib";

/// Reads a number of KiB the host or an earlier load wrote to `dir/node`.
fn read_kib(dir: &CStr, node: &CStr) -> Option<u64> {
    let mut buf = [0u8; 24];
    let text = xenstore::read(dir, node, &mut buf).ok()?;
    parse_xenstore_number(text).ok()
}

/// Adds `pages` to what earlier loads left out ([`LEFT_OUT_NODE`]).
fn record_left_out(pages: usize) {
    let total = read_kib(c"data", LEFT_OUT_NODE)
        .unwrap_or(0)
        .saturating_add(pages_to_kib(pages));
    let written = CString::try_from_fmt(fmt!("{}", total))
        .map_err(|_| ENOMEM)
        .and_then(|value| xenstore::write(c"data", LEFT_OUT_NODE, &value));
    if let Err(err) = written {
        pr_warn!(
            "cannot record the pages left out in data/ebb-left-out-kib: {:?}\n",
            err
        );
    }
}

/// The loaded driver.
pub(crate) struct Ebb {
    domain: DomainType,
    balloon: Arc<Balloon>,
    online_callback: Option<OnlineCallback<Balloon>>,
    memory_notifier: Option<MemoryNotifier<Balloon>>,
    oom: Option<OomNotifier<Balloon>>,
    watch: Option<Watch<Balloon>>,
    static_max_watch: Option<Watch<Balloon>>,
    lost_frames: Option<(Arc<LostFrames>, Watch<LostFrames>)>,
    sysfs: Option<SysfsDevice<Balloon>>,
}

impl kernel::Module for Ebb {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let Some(domain) = DomainType::current() else {
            pr_err!("not running on Xen: nothing to balloon, refusing to load\n");
            return Err(ENODEV);
        };
        if cfg!(CONFIG_XEN_BALLOON) {
            // Its sysfs device and online-page callback would collide with ebb's.
            pr_err!("the kernel's own Xen balloon driver (CONFIG_XEN_BALLOON) is built in: refusing to load\n");
            return Err(EBUSY);
        }
        let granularity = Granularity::of_running_kernel();
        let managed = memory::total_ram_pages();
        let reservation = xen_reservation::current_reservation().unwrap_or_else(|err| {
            pr_warn!(
                "XENMEM_current_reservation failed ({:?}); using MemTotal\n",
                err
            );
            managed
        });
        let reservation = held_pages(domain, reservation);
        let maximum = xen_reservation::maximum_reservation().ok();
        let pv_mode = crate::module_parameters::pv_mode.value();
        let superpages = domain.superpage_extents() && !pv_mode;
        if pv_mode && domain != DomainType::Pv {
            pr_info!("pv_mode: 4 KiB extents and no hotplug, as on a PV guest\n");
        }
        // Where the hypervisor keeps the p2m it backs ebb's blocks in 2 MiB extents by
        // guest frame; a PV guest maps the frames it is given itself. `pv_mode` on a
        // PVH or HVM guest only imitates PV ballooning.
        let backing = match domain {
            DomainType::Pv => Some(Backing::PvFrames {
                hot_remove: crate::module_parameters::pv_hot_remove.value(),
            }),
            _ if superpages => Some(Backing::Superpages),
            _ => None,
        };
        let hotplug = match (maximum, backing) {
            (Some(maximum), Some(backing)) => Hotplug::new(
                granularity,
                backing,
                reservation,
                maximum.max(GROWTH_REGION_END_PAGES),
            )?,
            _ => None,
        };
        let reachable = hotplug
            .as_ref()
            .map_or(reservation, |hotplug| hotplug.end_pfn());
        let limits = Limits::new(reservation, managed, reachable);
        let balloon = Arc::pin_init(
            Balloon::new(reservation, maximum, limits, hotplug, superpages)?,
            GFP_KERNEL,
        )?;

        let mut ebb = Self {
            domain,
            balloon,
            online_callback: None,
            memory_notifier: None,
            oom: None,
            watch: None,
            static_max_watch: None,
            lost_frames: None,
            sysfs: None,
        };
        if ebb.balloon.hotplug.is_some() {
            ebb.online_callback = Some(OnlineCallback::register(ebb.balloon.clone()).inspect_err(
                |_| pr_err!("another driver holds the online-page callback: refusing to load\n"),
            )?);
            ebb.memory_notifier = Some(MemoryNotifier::register(ebb.balloon.clone())?);
        }
        ebb.sysfs = Some(SysfsDevice::register(ebb.balloon.clone(), &SYSFS_FILES)?);
        ebb.watch = Some(Watch::new(TARGET_NODE, ebb.balloon.clone())?);
        ebb.static_max_watch = Some(Watch::new(STATIC_MAX_NODE, ebb.balloon.clone())?);
        if domain != DomainType::Pv {
            let lost_frames = LostFrames::new(ebb.balloon.clone())?;
            let watch = Watch::new(BROKEN_FRAMES_NODE, lost_frames.clone())?;
            ebb.lost_frames = Some((lost_frames, watch));
        }
        ebb.oom = Some(OomNotifier::register(ebb.balloon.clone())?);
        pr_info!(
            "loaded on a Xen {} domain; memory blocks of {} MiB; holding {} KiB, targets {}..{} KiB\n",
            domain.name(),
            granularity.block_bytes >> 20,
            pages_to_kib(reservation),
            pages_to_kib(limits.floor_pages(maximum)),
            pages_to_kib(limits.max_pages(maximum))
        );
        Ok(ebb)
    }
}

impl Drop for Ebb {
    fn drop(&mut self) {
        self.oom = None;
        if let Some((lost_frames, watch)) = self.lost_frames.take() {
            lost_frames.withdraw();
            drop(watch);
        }
        self.static_max_watch = None;
        self.watch = None;
        self.sysfs = None;
        self.balloon.stop();
        self.balloon.withdraw();
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
            record_left_out(left);
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
