// SPDX-License-Identifier: GPL-2.0

//! PV: backing and releasing ebb's extents frame by frame.
//!
//! A PV guest keeps its own p2m (`rust/pv_p2m.rs`): the hypervisor backs a 2 MiB
//! extent with 512 machine frames of its choosing, which ebb maps into the p2m and
//! the kernel's direct map before the extent's pages reach the allocator, and takes
//! them back by machine frame once ebb has unmapped them. The frame list holds one
//! extent's frames, so each hypercall moves one extent, 512 pages, as the C driver's
//! calls do. An extent is backed whole or not at all, as on PVH.
//!
//! Lock order: as `hotplug/mod.rs` (everything here runs under `blocks`).

use core::sync::atomic::Ordering;

use kernel::prelude::*;

use crate::rust::memory_hotplug;
use crate::rust::pv_p2m;
use crate::rust::pv_p2m::Mapping;
use crate::rust::xen_reservation;
use crate::rust::xen_reservation::ExtentOrder;
use crate::rust::xen_reservation::MAX_EXTENTS_PER_CALL;

use super::block::Block;
use super::region::EXTENT_PAGES;
use super::shrink::backed_extents;
use super::Blocks;
use super::Hotplug;

// One extent's frames fit the frame list (`Blocks::frames`).
const _: () = assert!(EXTENT_PAGES <= MAX_EXTENTS_PER_CALL);

/// What became of an extent [`Hotplug::release_extent_frames`] offered back.
enum Release {
    /// The hypervisor took all its frames.
    Released,
    /// The hypervisor kept some: the extent is backed and mapped as before.
    Kept,
    /// The hypervisor kept some and would not back the rest again: the extent is
    /// partly backed, which ebb's books cannot say; it counts as unbacked.
    Lost,
}

impl Hotplug {
    /// Prepares the p2m for block `index` before it is added (PV only).
    pub(super) fn prepare_p2m(&self, index: usize) -> Result {
        if !self.backing.is_pv() {
            return Ok(());
        }
        pv_p2m::prepare_block(
            self.region.block_start_pfn(index),
            self.region.block_pages(),
        )
        .inspect_err(|err| {
            pr_warn!(
                "memory block {}: cannot prepare the p2m for it ({:?})\n",
                self.region.memory_block_id(index),
                err
            )
        })
    }

    /// PV's [`Hotplug::back_onlined`]: has the hypervisor back up to `budget` onlined,
    /// unbacked extents (of blocks not going offline), one hypercall each, maps their
    /// frames and hands their pages to the allocator. Returns how many it asked for
    /// and how many it backed, or the hypercall's error when it backed none.
    pub(super) fn back_onlined_frames(
        &self,
        guard: &mut Blocks,
        budget: usize,
    ) -> (usize, Result<usize>) {
        let Blocks { blocks, frames } = guard;
        let frames = &mut frames[..EXTENT_PAGES];
        let budget = budget.min(MAX_EXTENTS_PER_CALL);
        let (mut asked, mut backed) = (0, 0);
        while asked < budget {
            let Some((index, extent)) = blocks.iter().enumerate().find_map(|(index, block)| {
                let usable = block.added && !block.going_offline;
                usable
                    .then(|| block.unbacked().iter().next())
                    .flatten()
                    .map(|extent| (index, extent))
            }) else {
                break;
            };
            asked += 1;
            let pfn = self.region.extent_pfn(index, extent);
            // SAFETY: the block is added (so its p2m was prepared) and the extent is
            // unbacked.
            match unsafe { self.back_extent_frames(frames, pfn) } {
                Ok(true) => {}
                result => {
                    return match backed {
                        0 => (asked, result.map(|_| 0)),
                        _ => (asked, Ok(backed)),
                    }
                }
            }
            blocks[index].backed(extent);
            // SAFETY: the extent was onlined and kept by the callback (its `onlined`
            // bit), every page of it is backed and mapped now, and it is 2 MiB aligned.
            unsafe { memory_hotplug::online_pages_to_buddy(pfn, ExtentOrder::Superpage.order()) };
            backed += 1;
        }
        (asked, Ok(backed))
    }

    /// Unload on PV: has the hypervisor back every unbacked extent of offline block
    /// `index` and maps it, without onlining it, so that a user who onlines the block
    /// after ebb is gone hands the allocator backed pages.
    pub(super) fn back_offline_block(&self, guard: &mut Blocks, index: usize) {
        let Blocks { blocks, frames } = guard;
        let frames = &mut frames[..EXTENT_PAGES];
        let unbacked = self.region.all_extents().difference(blocks[index].backed);
        for extent in unbacked.iter() {
            let pfn = self.region.extent_pfn(index, extent);
            // SAFETY: the block is added (so its p2m was prepared) and the extent is
            // unbacked.
            if !matches!(unsafe { self.back_extent_frames(frames, pfn) }, Ok(true)) {
                pr_err!(
                    "unload: the hypervisor cannot back offline memory block {}: do not online \
                     it, its pages have no memory behind them\n",
                    self.region.memory_block_id(index)
                );
                return;
            }
            blocks[index].backed.insert(extent);
        }
    }

    /// Has the hypervisor back the extent at `pfn` with `frames.len()` (one extent's)
    /// machine frames in one hypercall and maps them. `Ok(false)` when it backed
    /// fewer (given back at once: an extent is backed whole or not at all), or the
    /// hypercall's error.
    ///
    /// # Safety
    ///
    /// The extent's block is added (its p2m prepared by [`Hotplug::prepare_p2m`]) and
    /// no page of the extent has a frame.
    unsafe fn back_extent_frames(&self, frames: &mut [usize], pfn: usize) -> Result<bool> {
        for (page, slot) in frames.iter_mut().enumerate() {
            *slot = pfn + page;
        }
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let result = xen_reservation::populate_physmap(frames, ExtentOrder::Page);
        let got = *result.as_ref().unwrap_or(&0);
        if got < frames.len() {
            self.give_back_unmapped(&mut frames[..got]);
            return result.map(|_| false);
        }
        for (page, &frame) in frames.iter().enumerate() {
            // SAFETY: the block is added with its p2m prepared and the pfn has no
            // frame (the caller's guarantees); the hypervisor just gave the domain
            // `frame`.
            unsafe { pv_p2m::map(pfn + page, frame, Mapping::Kernel) };
        }
        self.unfolded_pages
            .fetch_add(frames.len(), Ordering::AcqRel);
        Ok(true)
    }

    /// Gives back the machine frames of a populate that fell short of a whole extent,
    /// before anything maps them.
    fn give_back_unmapped(&self, frames: &mut [usize]) {
        if frames.is_empty() {
            return;
        }
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let released =
            xen_reservation::decrease_reservation(frames, ExtentOrder::Page).unwrap_or_default();
        if released < frames.len() {
            pr_err!(
                "the hypervisor keeps {} frames it backed for an extent it could not back \
                 whole; the domain holds them, unused\n",
                frames.len() - released
            );
            self.unfolded_pages
                .fetch_add(frames.len() - released, Ordering::AcqRel);
        }
    }

    /// PV's release of the backed extents of the offline or removed blocks that
    /// `select` picks: one hypercall per extent, until the hypervisor keeps one.
    /// Returns how many backed extents the blocks had and how many stay backed.
    pub(super) fn release_frames_pv(
        &self,
        guard: &mut Blocks,
        select: impl Fn(usize, &Block) -> bool,
    ) -> (usize, usize) {
        let Blocks { blocks, frames } = guard;
        let frames = &mut frames[..EXTENT_PAGES];
        let had = backed_extents(blocks, &select);
        for index in 0..blocks.len() {
            if !select(index, &blocks[index]) {
                continue;
            }
            let mapping = match blocks[index].added {
                true => Mapping::Kernel,
                false => Mapping::P2mOnly,
            };
            for extent in blocks[index].backed.iter() {
                let pfn = self.region.extent_pfn(index, extent);
                match self.release_extent_frames(frames, pfn, mapping) {
                    Release::Released | Release::Lost => blocks[index].backed.remove(extent),
                    Release::Kept => return (had, backed_extents(blocks, &select)),
                }
            }
        }
        (had, 0)
    }

    /// Unmaps the frames of the backed extent at `pfn` (its block offline or removed,
    /// as `mapping` says) and gives them back in one hypercall. What the hypervisor
    /// does not take is mapped back, and what it took is backed again, so that an
    /// extent stays backed whole or not at all.
    fn release_extent_frames(&self, frames: &mut [usize], pfn: usize, mapping: Mapping) -> Release {
        for (page, slot) in frames.iter_mut().enumerate() {
            // SAFETY: the extent is backed and its block was prepared before it was
            // added; the block is offline (`Kernel`) or removed (`P2mOnly`), so nothing
            // uses the page.
            *slot = unsafe { pv_p2m::unmap(pfn + page, mapping) };
        }
        pv_p2m::flush_tlbs();
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let released =
            xen_reservation::decrease_reservation(frames, ExtentOrder::Page).unwrap_or_default();
        self.unfolded_released.fetch_add(released, Ordering::AcqRel);
        if released == frames.len() {
            return Release::Released;
        }
        // The hypervisor handles frames in order: it took the first `released`.
        for (page, &frame) in frames.iter().enumerate().skip(released) {
            // SAFETY: `frame` is the domain's still, and was mapped at `pfn + page` until
            // just now.
            unsafe { pv_p2m::map(pfn + page, frame, mapping) };
        }
        let taken = &mut frames[..released];
        for (page, slot) in taken.iter_mut().enumerate() {
            *slot = pfn + page;
        }
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let again = xen_reservation::populate_physmap(taken, ExtentOrder::Page).unwrap_or_default();
        for (page, &frame) in taken.iter().enumerate().take(again) {
            // SAFETY: the pfn lost its frame above and the hypervisor just gave the
            // domain `frame`.
            unsafe { pv_p2m::map(pfn + page, frame, mapping) };
        }
        self.unfolded_pages.fetch_add(again, Ordering::AcqRel);
        if again == released {
            return Release::Kept;
        }
        pr_err!(
            "the hypervisor kept {} and would not back {} of the frames of the extent at pfn \
             {:#x}; it counts as unbacked, and the domain holds the rest unused\n",
            frames.len() - released,
            released - again,
            pfn
        );
        Release::Lost
    }
}
