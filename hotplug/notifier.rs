// SPDX-License-Identifier: GPL-2.0

//! The kernel's calls about ebb's blocks: the online-page callback's work for pages
//! being onlined, and the memory notifier's MEM_GOING_OFFLINE, MEM_CANCEL_OFFLINE,
//! MEM_OFFLINE and MEM_GOING_ONLINE, as virtio-mem handles them.
//!
//! Both run with `mem_hotplug_lock` held for writing and take `Hotplug::blocks`
//! (lock order in `hotplug/mod.rs`).

use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::rust::memory_hotplug;
use crate::rust::memory_hotplug::OnliningPages;
use crate::rust::memory_notifier::PfnRange;
use crate::rust::xen_reservation::ExtentOrder;

use super::extents::ExtentSet;
use super::region::EXTENT_PAGES;
use super::Hotplug;

impl Hotplug {
    /// The online callback's work for `pages` of the region: keeps them, and hands to
    /// the allocator at once the extents that were backed before (a re-onlining); the
    /// rest stay PageOffline until the worker backs them.
    pub(crate) fn online(&self, pages: OnliningPages) {
        // Chunks are at least 2 MiB: the region is block-aligned and ebb does not use
        // memmap-on-memory. A smaller one stays offline, never unbacked in the buddy.
        if pages.nr_pages() < EXTENT_PAGES {
            return;
        }
        let Some((index, first)) = self.region.locate(pages.pfn()) else {
            return;
        };
        let chunk = ExtentSet::range(first, pages.nr_pages() / EXTENT_PAGES);
        let mut guard = self.blocks.lock();
        let Some(block) = guard.blocks.get_mut(index) else {
            return;
        };
        for extent in block.online(chunk).iter() {
            // SAFETY: onlined now, kept by this callback, backed since it was
            // populated (the offline or removal that preceded this onlining kept the
            // frames).
            unsafe {
                memory_hotplug::online_pages_to_buddy(
                    self.region.extent_pfn(index, extent),
                    ExtentOrder::Superpage.order(),
                )
            };
        }
    }

    /// MEM_GOING_OFFLINE for `range`: when it is one of ebb's blocks, drops ebb's
    /// references to its unbacked pages so that the offline skips them, and keeps the
    /// worker away from the block until the offline ends.
    pub(crate) fn going_offline(&self, range: PfnRange) -> Result {
        let Some(index) = self.region.block_of(range.start_pfn) else {
            return Ok(());
        };
        self.refuse_while_unloading(index, "offline")?;
        if !self.region.is_block(index, range.start_pfn, range.nr_pages) {
            pr_warn!(
                "refusing to offline {} pages from pfn {:#x}: ebb's memory goes offline in whole blocks\n",
                range.nr_pages,
                range.start_pfn
            );
            return Err(EINVAL);
        }
        let mut guard = self.blocks.lock();
        let block = &mut guard.blocks[index];
        let mut dropped = ExtentSet::EMPTY;
        for extent in block.unbacked().iter() {
            let pfn = self.region.extent_pfn(index, extent);
            // SAFETY: an unbacked onlined extent was kept by the online callback and
            // never handed to the allocator; this is the notifier's MEM_GOING_OFFLINE
            // and MEM_CANCEL_OFFLINE undoes it.
            if let Err(err) = unsafe { memory_hotplug::drop_offline_refs(pfn, EXTENT_PAGES) } {
                pr_warn!(
                    "memory block {}: an unbacked page at pfn {:#x}.. is referenced elsewhere; refusing the offline\n",
                    self.region.memory_block_id(index),
                    pfn
                );
                self.retake_refs(index, dropped);
                return Err(err);
            }
            dropped.insert(extent);
        }
        block.going_offline(dropped);
        Ok(())
    }

    /// MEM_GOING_ONLINE for `range`: refused for ebb's blocks while ebb unloads. An
    /// online then could come after ebb backed every onlined block for the last time,
    /// and leave the pages of its unbacked extents in no one's hands.
    pub(crate) fn going_online(&self, range: PfnRange) -> Result {
        match self.region.block_of(range.start_pfn) {
            Some(index) => self.refuse_while_unloading(index, "online"),
            None => Ok(()),
        }
    }

    /// `EBUSY`, with a line in the kernel log, when a user would `verb` block `index`
    /// while ebb unloads ([`Hotplug::remove_all`]).
    fn refuse_while_unloading(&self, index: usize, verb: &str) -> Result {
        if !self.unloading.load(Ordering::Acquire) {
            return Ok(());
        }
        pr_info!(
            "memory block {}: ebb is unloading; {} it once ebb is gone\n",
            self.region.memory_block_id(index),
            verb
        );
        Err(EBUSY)
    }

    /// MEM_CANCEL_OFFLINE for `range`: the block stays online as it was.
    pub(crate) fn cancel_offline(&self, range: PfnRange) {
        let Some(index) = self.region.block_of(range.start_pfn) else {
            return;
        };
        let mut guard = self.blocks.lock();
        let dropped = guard.blocks[index].cancel_offline();
        self.retake_refs(index, dropped);
    }

    /// Takes back the page references of the extents `dropped` of block `index`,
    /// which [`Hotplug::going_offline`] dropped.
    fn retake_refs(&self, index: usize, dropped: ExtentSet) {
        for extent in dropped.iter() {
            // SAFETY: the references of this extent were dropped by `going_offline`
            // and the block is still online.
            unsafe {
                memory_hotplug::retake_offline_refs(
                    self.region.extent_pfn(index, extent),
                    EXTENT_PAGES,
                )
            };
        }
    }

    /// MEM_OFFLINE for `range`: nothing in the block is in use any more; gives the
    /// frames of its backed extents back to the hypervisor. Returns whether `range` is
    /// one of ebb's blocks.
    pub(crate) fn offline(&self, range: PfnRange) -> bool {
        let Some(index) = self.region.block_of(range.start_pfn) else {
            return false;
        };
        let mut guard = self.blocks.lock();
        if self.defer_release.load(Ordering::Acquire) {
            guard.blocks[index].release_deferred = true;
        } else {
            let (asked, kept) = self.release_backed(&mut guard, index);
            if kept > 0 {
                pr_warn!(
                    "memory block {} is offline; the hypervisor took back {} of its {} backed extents\n",
                    self.region.memory_block_id(index),
                    asked - kept,
                    asked
                );
            }
        }
        guard.blocks[index].offline();
        true
    }
}
