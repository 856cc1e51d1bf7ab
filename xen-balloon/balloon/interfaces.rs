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
use crate::rust::sysfs::FileSpec;
use crate::rust::sysfs::SysfsHandler;
use crate::rust::xenstore;
use crate::rust::xenstore::WatchHandler;

use super::files::Setting;
use super::files::Show;
use super::files::FILES;
use super::target;
use super::target::Invalid;
use super::target::PAGE_SIZE;
use super::Balloon;

// The pure code's page size is the kernel's.
const _: () = assert!(PAGE_SIZE == kernel::page::PAGE_SIZE);

impl From<Invalid> for Error {
    fn from(_: Invalid) -> Self {
        EINVAL
    }
}

/// The device's files as the sysfs shim takes them, from [`FILES`].
pub(crate) const SYSFS_FILES: [FileSpec; FILES.len()] = {
    let mut specs = [FileSpec {
        name: c"",
        dir: None,
        writable: false,
    }; FILES.len()];
    let mut index = 0;
    while index < FILES.len() {
        specs[index] = FileSpec {
            name: FILES[index].name,
            dir: FILES[index].dir.name(),
            writable: FILES[index].store.is_some(),
        };
        index += 1;
    }
    specs
};

/// The xenstore node the host writes targets to (KiB), relative to the domain's home.
pub(crate) const TARGET_NODE: &CStr = c"memory/target";
/// The node the toolstack rewrites when it changes the domain's maximum (KiB).
pub(crate) const STATIC_MAX_NODE: &CStr = c"memory/static-max";
/// Longest value of a number node ebb reads: `u64::MAX` has 20 digits.
const NUMBER_NODE_BYTES: usize = 24;

impl SysfsHandler for Balloon {
    fn show(&self, file: usize, out: &mut dyn fmt::Write) -> fmt::Result {
        match FILES.get(file).ok_or(fmt::Error)?.show {
            // Under the hotplug lock alone.
            Show::BlockList => self
                .hotplug
                .as_ref()
                .map_or(Ok(()), |hotplug| hotplug.write_block_list(out)),
            Show::Value(value) => writeln!(out, "{}", value(&self.status())),
        }
    }

    fn store(&self, file: usize, input: &[u8]) -> Result {
        // Read-only files: sysfs refuses writes to them, except root's.
        let parse = FILES.get(file).ok_or(EINVAL)?.store.ok_or(EPERM)?;
        match parse(input)? {
            Setting::Target(pages) => self.set_target(pages),
            Setting::MaxScheduleDelay(seconds) => {
                self.state.lock().tunables.max_schedule_delay_s = seconds;
            }
            Setting::MaxRetryCount(count) => {
                self.state.lock().tunables.max_retry_count = count;
                self.kick();
            }
            Setting::ScrubPages(scrub) => self.state.lock().tunables.scrub_pages = scrub,
            Setting::RemoveTimeout(timeout_ms) => match &self.hotplug {
                Some(hotplug) => hotplug.set_remove_timeout_ms(timeout_ms),
                // Without hotplug there is nothing to remove.
                None => return Err(ENODEV),
            },
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

    fn going_online(&self, range: PfnRange) -> Result {
        self.hotplug
            .as_ref()
            .map_or(Ok(()), |hotplug| hotplug.going_online(range))
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
