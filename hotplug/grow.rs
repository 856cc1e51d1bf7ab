// SPDX-License-Identifier: GPL-2.0

//! Growing: adding memory blocks to the region and having the hypervisor back the
//! extents the kernel onlined, as far as the target lacks.
//!
//! Lock order: as `hotplug/mod.rs` (`blocks` is dropped around every add).

use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::rust::memory;
use crate::rust::memory_hotplug;
use crate::rust::xen_reservation;
use crate::rust::xen_reservation::ExtentOrder;
use crate::rust::xen_reservation::MAX_EXTENTS_PER_CALL;

use super::region::EXTENT_PAGES;
use super::Blocks;
use super::Hotplug;

/// Bytes of `struct page` per page, for the memmap cost of adding a block.
const MEMMAP_BYTES_PER_PAGE: usize = 64;

/// What one growth step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grow {
    /// Backed pages of onlined blocks.
    Backed,
    /// Added a block (which may or may not be onlined yet).
    Added,
    /// A block ebb added is not onlined: nothing onlines it (`auto_online_blocks` is
    /// `offline`) until a user does.
    NotOnlined,
    /// The whole region is added and backed, or what is left is under one extent.
    Nothing,
    /// The hypervisor backs no more pages.
    EnomemHypervisor,
    /// The hypervisor failed the populate with an error.
    HypervisorRefused,
    /// The guest lacks free memory for the block's memmap.
    EnomemGuest,
    /// The kernel refused to add the block.
    AddFailed,
}

impl Hotplug {
    /// One step towards a target that lacks `lacking` pages: back onlined extents, else
    /// wait for an added block to be onlined, else add blocks, as many as the target
    /// needs and one hypercall can back, each when the guest has `free_reserve` pages
    /// free beyond the block's memmap and the one before it was onlined.
    pub(crate) fn grow(&self, lacking: usize, free_reserve: usize) -> Grow {
        let mut guard = self.blocks.lock();
        let budget = lacking / EXTENT_PAGES;
        if budget == 0 {
            return Grow::Nothing;
        }
        match self.back_onlined(&mut guard, budget) {
            (_, Ok(backed)) if backed > 0 => return Grow::Backed,
            (asked, Ok(_)) if asked > 0 => return Grow::EnomemHypervisor,
            (_, Err(_)) => return Grow::HypervisorRefused,
            _ => {}
        }
        // A block being onlined by a user counts as not onlined until its last chunk.
        let all = self.region.all_extents();
        if guard
            .blocks
            .iter()
            .any(|block| block.added && block.onlined != all)
        {
            return Grow::NotOnlined;
        }
        let extents_per_block = self.region.extents_per_block();
        let memmap_pages =
            self.region.block_pages() * MEMMAP_BYTES_PER_PAGE / kernel::page::PAGE_SIZE;
        let max_blocks = (MAX_EXTENTS_PER_CALL / extents_per_block).max(1);
        let mut added = 0;
        while added < max_blocks && added * extents_per_block < budget {
            let Some(index) = guard.blocks.iter().position(|block| !block.added) else {
                break;
            };
            if memory::free_pages() < memmap_pages + free_reserve {
                break;
            }
            drop(guard);
            // Without the lock: onlining runs the callback inside the add.
            let (start, size) = self.block_range(index);
            let result = self
                .prepare_p2m(index)
                .and_then(|()| self.group.add_memory(start, size));
            guard = self.blocks.lock();
            if let Err(err) = result {
                pr_warn!("adding memory block at {:#x} failed: {:?}\n", start, err);
                return if added > 0 {
                    Grow::Added
                } else {
                    Grow::AddFailed
                };
            }
            guard.blocks[index].added = true;
            added += 1;
            if guard.blocks[index].onlined != all {
                break;
            }
        }
        match added {
            0 if guard.blocks.iter().all(|block| block.added) => Grow::Nothing,
            0 => Grow::EnomemGuest,
            _ => Grow::Added,
        }
    }

    /// Has the hypervisor back up to `budget` onlined, unbacked extents (of blocks not
    /// going offline), in one hypercall where it keeps the p2m, and hands those it
    /// backed to the allocator. Returns how many it asked for and how many it backed,
    /// or the hypercall's error.
    fn back_onlined(&self, guard: &mut Blocks, budget: usize) -> (usize, Result<usize>) {
        if self.backing.is_pv() {
            return self.back_onlined_frames(guard, budget);
        }
        let Blocks { blocks, frames } = guard;
        let budget = budget.min(frames.len());
        let mut asked = 0;
        for (index, block) in blocks.iter().enumerate() {
            if !block.added || block.going_offline {
                continue;
            }
            for extent in block.unbacked().iter() {
                if asked == budget {
                    break;
                }
                frames[asked] = self.region.extent_pfn(index, extent);
                asked += 1;
            }
        }
        if asked == 0 {
            return (0, Ok(0));
        }
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let result =
            xen_reservation::populate_physmap(&mut frames[..asked], ExtentOrder::Superpage);
        let backed = *result.as_ref().unwrap_or(&0);
        // The hypervisor handles extents in order and leaves a PVH guest's frame
        // numbers as they were: the first `backed` are the pfns asked for.
        for &pfn in &frames[..backed] {
            let Some((index, extent)) = self.region.locate(pfn) else {
                continue;
            };
            blocks[index].backed(extent);
            // SAFETY: the extent was onlined and kept by the callback (its `onlined`
            // bit), the hypervisor backs it now, and it is 2 MiB aligned.
            unsafe { memory_hotplug::online_pages_to_buddy(pfn, ExtentOrder::Superpage.order()) };
        }
        self.unfolded_pages
            .fetch_add(backed * EXTENT_PAGES, Ordering::AcqRel);
        (asked, result)
    }

    /// Backs every onlined extent of every added block, as far as the hypervisor
    /// allows; extents it cannot back stay offline (PageOffline) and say so.
    pub(super) fn back_all_onlined(&self) {
        let mut guard = self.blocks.lock();
        loop {
            let (asked, result) = self.back_onlined(&mut guard, usize::MAX);
            let backed = result.unwrap_or(0);
            if asked == 0 {
                return;
            }
            if backed < asked {
                let left: usize = guard
                    .blocks
                    .iter()
                    .map(|block| block.unbacked_pages())
                    .sum();
                pr_warn!(
                    "unload: {} KiB of ebb's blocks stay offline: the hypervisor cannot back them\n",
                    left * (kernel::page::PAGE_SIZE / 1024)
                );
                return;
            }
        }
    }
}
