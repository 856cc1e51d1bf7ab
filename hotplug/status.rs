// SPDX-License-Identifier: GPL-2.0

//! What users and the host read about the region: a summary (sysfs `ebb/hotplug_*`,
//! the xenstore status line) and one line per block (`ebb/hotplug_block_list`).

use core::sync::atomic::Ordering;

use crate::rust::memory_hotplug;

use super::Blocks;
use super::Changes;
use super::Hotplug;

/// A summary of the region for sysfs and xenstore.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    /// Blocks added.
    pub(crate) added: usize,
    /// Added blocks that the kernel onlined.
    pub(crate) onlined: usize,
    /// Added blocks that could not be offlined for removal since the target last
    /// changed (pages in them that cannot move, as in ZONE_NORMAL).
    pub(crate) unremovable: usize,
    /// Pages of ebb's blocks that hotplug had the hypervisor back (ballooning out may
    /// have taken some of them since).
    pub(crate) backed_pages: usize,
    /// Pages of onlined blocks kept offline, unbacked (ballooned).
    pub(crate) unbacked_pages: usize,
}

impl Hotplug {
    /// Runs `read` on the region's summary and the changes the balloon has not folded
    /// into its reservation yet, as they stand together: no block and no change moves
    /// until `read` returns. `read` may take the balloon's `state`, which nothing
    /// holds while taking `blocks`.
    pub(crate) fn with_snapshot<R>(&self, read: impl FnOnce(Summary, Changes) -> R) -> R {
        let guard = self.blocks.lock();
        // Hotplug changes these only under `blocks`; the balloon takes them (under its
        // `state`, which `read` waits for) without it.
        let pending = Changes {
            backed: self.unfolded_pages.load(Ordering::Acquire),
            released: self.unfolded_released.load(Ordering::Acquire),
            hypercalls: self.unfolded_hypercalls.load(Ordering::Acquire),
        };
        read(Self::summarise(&guard), pending)
    }

    fn summarise(guard: &Blocks) -> Summary {
        let mut summary = Summary::default();
        for block in guard.blocks.iter().filter(|block| block.added) {
            summary.added += 1;
            summary.onlined += usize::from(!block.onlined.is_empty());
            summary.unremovable += usize::from(block.unremovable);
            summary.backed_pages += block.backed_pages();
            summary.unbacked_pages += block.unbacked_pages();
        }
        summary
    }

    /// Writes one line per added block: its memory block, state, zone, backed and
    /// ballooned pages, and whether it was found unremovable.
    pub(crate) fn write_block_list(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let guard = self.blocks.lock();
        let all = self.region.all_extents();
        for (index, block) in guard.blocks.iter().enumerate() {
            if !block.added {
                continue;
            }
            let zone = if block.onlined.is_empty() {
                None
            } else {
                // SAFETY: an onlined block is not removed while `blocks` is held: its
                // MEM_OFFLINE, which comes before removal, takes the lock.
                unsafe { memory_hotplug::zone_name(self.region.block_start_pfn(index)) }
            };
            writeln!(
                out,
                "memory{} {} zone={} backed_pages={} ballooned_pages={} unremovable={}",
                self.region.memory_block_id(index),
                block.state(all).name(),
                zone.unwrap_or("none"),
                block.backed_pages(),
                block.unbacked_pages(),
                u8::from(block.unremovable)
            )?;
        }
        Ok(())
    }
}
