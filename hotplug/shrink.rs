// SPDX-License-Identifier: GPL-2.0

//! Shrinking: removing blocks when the target falls (offline and remove; the memory
//! notifier gives their frames back), giving frames of offline blocks back to the
//! hypervisor, and removing everything at unload.
//!
//! A removal gives up after `remove_timeout_ms` (`ebb/remove_timeout_ms`, 30 s by
//! default): an offline retries migrating a page that never moves until a signal
//! comes, and none reaches the worker, so each runs in a thread of its own that is
//! sent one when the time is up (`memory_hotplug::offline_and_remove_within`). The
//! block then counts as unremovable until the target changes, as when it refuses at
//! once, and rmmod never waits for a removal without end.
//!
//! Lock order: as `hotplug/mod.rs` (`blocks` is never held across
//! `offline_and_remove_memory`).

use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::rust::memory;
use crate::rust::memory_hotplug;
use crate::rust::xen_reservation;
use crate::rust::xen_reservation::ExtentOrder;

use super::block::Block;
use super::region::EXTENT_PAGES;
use super::Blocks;
use super::Hotplug;

impl Hotplug {
    /// One step towards a target `excess` pages below what the domain holds: removes
    /// added blocks not found unremovable since the target last changed, offline ones
    /// first, else the highest, as long as each one's backed pages are no more than
    /// what is still in excess (within one extent) and the guest has room to migrate
    /// what it holds. The frames of every block removed in the step go back to the
    /// hypervisor together at its end, in as few hypercalls as they fill. Returns
    /// whether a block was removed (ballooning does the rest otherwise).
    pub(crate) fn shrink(&self, excess: usize, free_reserve: usize) -> bool {
        if !self.backing.removes_blocks() {
            return false;
        }
        self.defer_release.store(true, Ordering::Release);
        let mut excess = excess;
        let mut removed = false;
        while let Some((index, pages)) = self.removable_block(excess, free_reserve) {
            // Without the lock: the notifier takes it while the block goes offline.
            if let Err(err) = self.offline_and_remove(index) {
                pr_info!(
                    "memory block {} cannot be removed now ({:?}): it holds pages that cannot \
                     move (in {} ms); ballooning instead, and not retrying it until the target \
                     changes\n",
                    self.region.memory_block_id(index),
                    err,
                    self.remove_timeout_ms()
                );
                self.blocks.lock().blocks[index].unremovable = true;
                break;
            }
            self.forget_removed(index);
            removed = true;
            excess = excess.saturating_sub(pages);
        }
        // Cleared under the lock, so that an offline either saw the flag and left its
        // frames to the release below, or releases them itself.
        let mut guard = self.blocks.lock();
        self.defer_release.store(false, Ordering::Release);
        let (asked, kept) = self.release_frames(&mut guard, |_, block| block.release_deferred);
        for block in guard.blocks.iter_mut() {
            block.release_deferred = false;
        }
        if kept > 0 {
            pr_warn!(
                "the hypervisor keeps {} of the {} 2 MiB extents of removed or offline blocks; \
                 they stay the domain's until their block is added or onlined again\n",
                kept,
                asked
            );
        }
        removed
    }

    /// The next block [`Hotplug::shrink`] removes while `excess` pages are still in
    /// excess, and its backed pages.
    fn removable_block(&self, excess: usize, free_reserve: usize) -> Option<(usize, usize)> {
        let mut guard = self.blocks.lock();
        let index = guard
            .blocks
            .iter()
            .rposition(|block| block.is_removable() && block.onlined.is_empty())
            .or_else(|| guard.blocks.iter().rposition(Block::is_removable))?;
        if guard.blocks[index].onlined.is_empty()
            && !guard.blocks[index].backed.is_empty()
            && !guard.blocks[index].release_deferred
        {
            // The hypervisor kept frames of this block when it went offline; removed
            // with them, the block could only be added back on the same frames.
            let (_, kept) = self.release_backed(&mut guard, index);
            if kept > 0 {
                pr_info!(
                    "memory block {} is offline but the hypervisor keeps {} of its 2 MiB \
                     extents; not removing it until the target changes\n",
                    self.region.memory_block_id(index),
                    kept
                );
                guard.blocks[index].unremovable = true;
                return None;
            }
        }
        let block = &guard.blocks[index];
        let pages = block.backed_pages();
        // Within one extent of the target is close enough, as for ballooning.
        if excess + EXTENT_PAGES <= pages {
            return None;
        }
        if !block.onlined.is_empty() && memory::free_pages() < pages + free_reserve {
            return None;
        }
        Some((index, pages))
    }

    /// Allows another removal attempt of every block (the target changed).
    pub(crate) fn retry_removal(&self) {
        for block in self.blocks.lock().blocks.iter_mut() {
            block.unremovable = false;
        }
    }

    /// Forgets removed block `index`, offering the hypervisor once more the frames it
    /// would not take when the block went offline. Those it still keeps stay recorded
    /// as backed: the domain holds them, and adding the block again onlines them as
    /// they are.
    fn forget_removed(&self, index: usize) {
        let mut guard = self.blocks.lock();
        let deferred = self.defer_release.load(Ordering::Acquire);
        let (_, kept) = if deferred {
            (0, 0)
        } else {
            self.release_backed(&mut guard, index)
        };
        guard.blocks[index] = guard.blocks[index].removed(deferred);
        if kept > 0 {
            pr_warn!(
                "memory block {} is removed but the hypervisor still backs {} of its 2 MiB \
                 extents; they stay the domain's until the block is added again\n",
                self.region.memory_block_id(index),
                kept
            );
        }
    }

    /// Gives the frames of the backed extents of offline block `index` back to the
    /// hypervisor in one hypercall. Returns how many extents it asked for and how many
    /// stay backed.
    pub(super) fn release_backed(&self, guard: &mut Blocks, index: usize) -> (usize, usize) {
        self.release_frames(guard, |block_index, _| block_index == index)
    }

    /// Gives the frames of the backed extents of the offline or removed blocks that
    /// `select` picks back to the hypervisor, as many per hypercall as `frames` holds,
    /// until the hypervisor cuts a call short. Returns how many backed extents the
    /// blocks had and how many stay backed.
    fn release_frames(
        &self,
        guard: &mut Blocks,
        select: impl Fn(usize, &Block) -> bool,
    ) -> (usize, usize) {
        if self.backing.is_pv() {
            return self.release_frames_pv(guard, select);
        }
        let Blocks { blocks, frames } = guard;
        let had = backed_extents(blocks, &select);
        loop {
            let mut asked = 0;
            let extents = blocks
                .iter()
                .enumerate()
                .filter(|&(index, block)| select(index, block))
                .flat_map(|(index, block)| {
                    block
                        .backed
                        .iter()
                        .map(move |extent| self.region.extent_pfn(index, extent))
                });
            for (slot, pfn) in frames.iter_mut().zip(extents) {
                *slot = pfn;
                asked += 1;
            }
            if asked == 0 {
                return (had, 0);
            }
            self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
            let released =
                xen_reservation::decrease_reservation(&mut frames[..asked], ExtentOrder::Superpage)
                    .unwrap_or_default();
            // The hypervisor handles extents in order: the first `released` went.
            for &pfn in &frames[..released] {
                if let Some((index, extent)) = self.region.locate(pfn) {
                    blocks[index].backed.remove(extent);
                }
            }
            self.unfolded_released
                .fetch_add(released * EXTENT_PAGES, Ordering::AcqRel);
            if released < asked {
                return (had, backed_extents(blocks, &select));
            }
        }
    }

    /// Unload: offlines and removes every added block (the notifier gives its frames
    /// back to the hypervisor), then backs what is left of blocks that cannot be
    /// removed so that they stay as ordinary memory. Returns how many blocks it
    /// removed.
    pub(crate) fn remove_all(&self) -> usize {
        if !self.backing.removes_blocks() {
            self.keep_all();
            return 0;
        }
        let nr_blocks = self.region.nr_blocks();
        let mut removed = (0..nr_blocks)
            .filter(|&index| self.blocks.lock().blocks[index].added && self.remove_at_unload(index))
            .count();
        // From here on users can neither offline nor online ebb's blocks. One that a
        // user offlined after its removal above failed gave its frames back: remove
        // it now, or an online after unload would hand the allocator pages without
        // frames. Removing offline memory waits for a user's online or offline in
        // progress (it started before the flag), so this sees how each one ended.
        self.unloading.store(true, Ordering::Release);
        removed += (0..nr_blocks)
            .filter(|&index| self.blocks.lock().blocks[index].added)
            .filter(|&index| self.remove_if_offline(index))
            .count();
        self.back_all_onlined();
        let mut guard = self.blocks.lock();
        for index in 0..nr_blocks {
            if guard.blocks[index].added || guard.blocks[index].backed.is_empty() {
                continue;
            }
            let (_, kept) = self.release_backed(&mut guard, index);
            if kept > 0 {
                pr_warn!(
                    "unload: the hypervisor keeps {} KiB of removed memory block {}: the domain \
                     holds them, unused, until it is rebooted\n",
                    kept * EXTENT_PAGES * (kernel::page::PAGE_SIZE / 1024),
                    self.region.memory_block_id(index)
                );
            }
        }
        removed
    }

    /// Unload where blocks are not removed: every added block stays as ordinary
    /// memory, each extent backed, so that onlining an offline one after ebb is gone
    /// hands the allocator only backed pages.
    fn keep_all(&self) {
        self.unloading.store(true, Ordering::Release);
        self.back_all_onlined();
        let mut guard = self.blocks.lock();
        let all = self.region.all_extents();
        for index in 0..self.region.nr_blocks() {
            let block = &guard.blocks[index];
            if block.added && block.onlined.is_empty() && block.backed != all {
                self.back_offline_block(&mut guard, index);
            }
        }
    }

    /// Offlines and removes block `index`, giving up after `remove_timeout_ms`.
    fn offline_and_remove(&self, index: usize) -> Result {
        let (start, size) = self.block_range(index);
        memory_hotplug::offline_and_remove_within(start, size, self.remove_timeout_ms())
    }

    /// How long a removal may take before it is given up, in milliseconds.
    pub(crate) fn remove_timeout_ms(&self) -> u32 {
        self.remove_timeout_ms.load(Ordering::Relaxed)
    }

    /// Sets how long a removal may take before it is given up (at least 1 ms).
    pub(crate) fn set_remove_timeout_ms(&self, timeout_ms: u32) {
        self.remove_timeout_ms
            .store(timeout_ms.max(1), Ordering::Relaxed);
    }

    /// Removes block `index` at unload if a user offlined it; an online block stays.
    fn remove_if_offline(&self, index: usize) -> bool {
        let (start, size) = self.block_range(index);
        if memory_hotplug::remove_offline(start, size).is_err() {
            return false;
        }
        pr_info!(
            "unload: memory block {} was offlined by a user during unload; removed\n",
            self.region.memory_block_id(index)
        );
        self.forget_removed(index);
        true
    }

    /// Offlines and removes block `index` at unload; says why when it cannot.
    fn remove_at_unload(&self, index: usize) -> bool {
        match self.offline_and_remove(index) {
            Ok(()) => {
                self.forget_removed(index);
                true
            }
            Err(err) => {
                pr_warn!(
                    "unload: memory block {} cannot be removed ({:?}); it stays as memory\n",
                    self.region.memory_block_id(index),
                    err
                );
                false
            }
        }
    }
}

/// The backed extents of the blocks that `select` picks, in all.
pub(super) fn backed_extents(blocks: &[Block], select: &impl Fn(usize, &Block) -> bool) -> usize {
    blocks
        .iter()
        .enumerate()
        .filter(|&(index, block)| select(index, block))
        .map(|(_, block)| block.backed.len())
        .sum()
}
