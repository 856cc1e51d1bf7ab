// SPDX-License-Identifier: GPL-2.0

//! The balloon's faces to the outside: the C driver's sysfs files (and ebb's status
//! files beside them), the xenstore `memory/target` watch, the OOM notifier, and the
//! online-page callback and memory notifier for ebb's hot-added blocks.
//!
//! Lock order: as `balloon/mod.rs` (each callback takes `Balloon::state` alone, the OOM
//! notifier only with a try-lock; the hotplug callbacks hold `mem_hotplug_lock`).

use core::fmt;

use kernel::prelude::*;

use crate::rust::memory_hotplug::OnlinePages;
use crate::rust::memory_hotplug::OnliningPages;
use crate::rust::memory_notifier::MemoryEvents;
use crate::rust::memory_notifier::PfnRange;
use crate::rust::oom::OomHandler;
use crate::rust::sysfs::Attribute;
use crate::rust::sysfs::SysfsHandler;
use crate::rust::xenstore;
use crate::rust::xenstore::WatchHandler;

use super::target;
use super::target::pages_to_kib;
use super::target::Invalid;
use super::target::PAGE_BYTES;
use super::target::PAGE_SIZE;
use super::Balloon;

// The pure code's page size is the kernel's.
const _: () = assert!(PAGE_SIZE == kernel::page::PAGE_SIZE);

impl From<Invalid> for Error {
    fn from(_: Invalid) -> Self {
        EINVAL
    }
}

/// The xenstore node the host writes targets to (KiB), relative to the domain's home.
pub(crate) const TARGET_NODE: &CStr = c"memory/target";
/// The node the toolstack rewrites when it changes the domain's maximum (KiB).
pub(crate) const STATIC_MAX_NODE: &CStr = c"memory/static-max";
/// Longest value of a number node ebb reads: `u64::MAX` has 20 digits.
const NUMBER_NODE_BYTES: usize = 24;

impl SysfsHandler for Balloon {
    fn show(&self, attr: Attribute, out: &mut dyn fmt::Write) -> fmt::Result {
        // Taken before `state`: the hotplug lock is never nested in it.
        if attr == Attribute::HotplugBlockList {
            return self
                .hotplug
                .as_ref()
                .map_or(Ok(()), |hotplug| hotplug.write_block_list(out));
        }
        let hotplug = self.hotplug_summary();
        let state = self.state.lock();
        let reservation = &state.reservation;
        let counters = reservation.counters();
        let tunables = &state.tunables;
        match attr {
            Attribute::TargetKb => writeln!(out, "{}", pages_to_kib(state.target_pages)),
            Attribute::Target => writeln!(
                out,
                "{}",
                (state.target_pages as u64).saturating_mul(PAGE_BYTES)
            ),
            Attribute::ScheduleDelay => writeln!(out, "{}", state.backoff.schedule_delay_s()),
            Attribute::MaxScheduleDelay => writeln!(out, "{}", tunables.max_schedule_delay_s),
            Attribute::RetryCount => writeln!(out, "{}", state.backoff.retry_count()),
            Attribute::MaxRetryCount => writeln!(out, "{}", tunables.max_retry_count),
            Attribute::ScrubPages => writeln!(out, "{}", u8::from(tunables.scrub_pages)),
            Attribute::CurrentKb => writeln!(out, "{}", pages_to_kib(reservation.current_pages())),
            // x86-64 has no highmem: every ballooned page is low memory.
            Attribute::LowKb => writeln!(out, "{}", pages_to_kib(reservation.ballooned_pages())),
            Attribute::HighKb => writeln!(out, "0"),
            Attribute::State => writeln!(out, "{}", state.progress_name()),
            Attribute::Reason => writeln!(out, "{}", state.reason()),
            Attribute::RequestedKb => writeln!(out, "{}", pages_to_kib(state.requested_pages)),
            Attribute::FloorKb => writeln!(
                out,
                "{}",
                pages_to_kib(self.limits.floor_pages(state.maximum_pages))
            ),
            Attribute::MaxKb => writeln!(
                out,
                "{}",
                pages_to_kib(self.limits.max_pages(state.maximum_pages))
            ),
            Attribute::BalloonedPages => writeln!(out, "{}", reservation.ballooned_pages()),
            Attribute::Hypercalls => writeln!(out, "{}", counters.hypercalls),
            Attribute::PagesOut => writeln!(out, "{}", counters.pages_out),
            Attribute::PagesIn => writeln!(out, "{}", counters.pages_in),
            Attribute::Failures => writeln!(out, "{}", counters.failures),
            Attribute::OomDeflatedPages => writeln!(out, "{}", state.oom_deflated_pages),
            Attribute::RejectedTargets => writeln!(out, "{}", state.rejected_targets),
            Attribute::HotplugBlocks => writeln!(out, "{}", hotplug.added),
            Attribute::HotplugOnlined => writeln!(out, "{}", hotplug.onlined),
            Attribute::HotplugBackedPages => writeln!(out, "{}", hotplug.backed_pages),
            Attribute::HotplugBalloonedPages => writeln!(out, "{}", hotplug.unbacked_pages),
            Attribute::HotplugUnremovable => writeln!(out, "{}", hotplug.unremovable),
            // Written above, before `state` is taken.
            Attribute::HotplugBlockList => Ok(()),
        }
    }

    fn store(&self, attr: Attribute, input: &[u8]) -> Result {
        match attr {
            Attribute::TargetKb => {
                let kib = target::parse_number(input)?;
                self.set_target(target::kib_to_pages(kib));
            }
            Attribute::Target => {
                let bytes = target::parse_bytes(input)?;
                self.set_target(usize::try_from(bytes / PAGE_BYTES).map_err(|_| EINVAL)?);
            }
            Attribute::MaxScheduleDelay => {
                let seconds = target::parse_u32(input)?;
                if seconds == 0 {
                    return Err(EINVAL);
                }
                self.state.lock().tunables.max_schedule_delay_s = seconds;
            }
            Attribute::MaxRetryCount => {
                let count = target::parse_u32(input)?;
                self.state.lock().tunables.max_retry_count = count;
                self.kick();
            }
            Attribute::ScrubPages => {
                let scrub = target::parse_bool(input)?;
                self.state.lock().tunables.scrub_pages = scrub;
            }
            // Read-only files (sysfs refuses writes to them before calling here).
            _ => return Err(EPERM),
        }
        Ok(())
    }
}

impl WatchHandler for Balloon {
    fn node_changed(&self, node: &'static CStr) {
        self.xenstore_is_up();
        if node == STATIC_MAX_NODE {
            self.maximum_may_have_changed();
            return;
        }
        let mut buf = [0u8; NUMBER_NODE_BYTES];
        match xenstore::read(c"memory", c"target", &mut buf) {
            Ok(text) => match target::parse_xenstore_number(text) {
                Ok(kib) => self.set_target(target::kib_to_pages(kib)),
                Err(_) => self.reject_host_target(text),
            },
            Err(err) if err == E2BIG => self.reject_host_target(b"(longer than a number)"),
            // No target written yet: keep the current one.
            Err(_) => self.kick(),
        }
    }
}

impl OomHandler for Balloon {
    fn free_on_oom(&self) -> usize {
        self.deflate_on_oom()
    }
}

impl OnlinePages for Balloon {
    fn online(&self, pages: OnliningPages) -> Option<OnliningPages> {
        match &self.hotplug {
            Some(hotplug) if hotplug.contains(pages.pfn()) => {
                hotplug.online(pages);
                self.wake_for_hotplug();
                None
            }
            _ => Some(pages),
        }
    }
}

impl MemoryEvents for Balloon {
    fn going_offline(&self, range: PfnRange) -> Result {
        self.hotplug
            .as_ref()
            .map_or(Ok(()), |hotplug| hotplug.going_offline(range))
    }

    fn cancel_offline(&self, range: PfnRange) {
        if let Some(hotplug) = &self.hotplug {
            hotplug.cancel_offline(range);
        }
    }

    fn offline(&self, range: PfnRange) {
        // A user's offline changes what the domain holds: the worker accounts for it.
        if let Some(hotplug) = &self.hotplug {
            if hotplug.offline(range) {
                self.wake_for_hotplug();
            }
        }
    }
}
