// SPDX-License-Identifier: GPL-2.0

//! The geometry of the hotplug region: where it lies in guest-physical memory, its
//! memory blocks, and their 2 MiB extents, by page frame number.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

use core::num::NonZeroUsize;

use super::extents::ExtentSet;

/// Pages per 2 MiB extent, the unit in which hotplug has the hypervisor back memory.
pub(crate) const EXTENT_PAGES: usize = 512;

/// Why there is no hotplug region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRegion {
    /// The kernel's memory blocks are not 1 to [`ExtentSet::CAPACITY`] extents.
    BlockSize,
    /// Not one whole block fits between the boot RAM and the maximum.
    NoRoom,
}

/// The region: `nr_blocks` memory blocks of `block_pages` pages from `start_pfn`.
///
/// # Invariants
///
/// `start_pfn` is a multiple of `block_pages`, `nr_blocks > 0`, and
/// `block_pages == extents_per_block * EXTENT_PAGES` with `extents_per_block` in
/// `1..=ExtentSet::CAPACITY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    start_pfn: usize,
    nr_blocks: usize,
    block_pages: NonZeroUsize,
    extents_per_block: usize,
}

impl Region {
    /// The region above `boot_pages` up to `max_pages` (the domain's reservation at
    /// load and its maximum) in the kernel's memory blocks of `kernel_block_pages`,
    /// starting above any block in which `ram_present(start_pfn, pages)` finds RAM
    /// (blocks an earlier load could not remove are ordinary memory now).
    pub(crate) fn new(
        kernel_block_pages: usize,
        boot_pages: usize,
        max_pages: usize,
        mut ram_present: impl FnMut(usize, usize) -> bool,
    ) -> Result<Self, NoRegion> {
        let extents_per_block = kernel_block_pages / EXTENT_PAGES;
        if !(1..=ExtentSet::CAPACITY).contains(&extents_per_block) {
            return Err(NoRegion::BlockSize);
        }
        let block_pages =
            NonZeroUsize::new(extents_per_block * EXTENT_PAGES).ok_or(NoRegion::BlockSize)?;
        let mut start_pfn = boot_pages.div_ceil(block_pages.get()) * block_pages.get();
        while start_pfn < max_pages && ram_present(start_pfn, block_pages.get()) {
            start_pfn += block_pages.get();
        }
        let nr_blocks = max_pages.saturating_sub(start_pfn) / block_pages;
        if nr_blocks == 0 {
            return Err(NoRegion::NoRoom);
        }
        // INVARIANT: checked above.
        Ok(Self {
            start_pfn,
            nr_blocks,
            block_pages,
            extents_per_block,
        })
    }

    /// The number of memory blocks.
    pub(crate) fn nr_blocks(&self) -> usize {
        self.nr_blocks
    }

    /// Pages per memory block.
    pub(crate) fn block_pages(&self) -> usize {
        self.block_pages.get()
    }

    /// 2 MiB extents per memory block.
    pub(crate) fn extents_per_block(&self) -> usize {
        self.extents_per_block
    }

    /// Every extent of a block.
    pub(crate) fn all_extents(&self) -> ExtentSet {
        ExtentSet::first(self.extents_per_block)
    }

    /// The first page frame number past the region: the highest reservation hotplug
    /// can reach, in pages.
    pub(crate) fn end_pfn(&self) -> usize {
        self.start_pfn + self.nr_blocks * self.block_pages.get()
    }

    /// Whether `pfn` lies in the region.
    pub(crate) fn contains(&self, pfn: usize) -> bool {
        pfn >= self.start_pfn && pfn < self.end_pfn()
    }

    /// The first page frame number of block `index`.
    pub(crate) fn block_start_pfn(&self, index: usize) -> usize {
        self.start_pfn + index * self.block_pages.get()
    }

    /// The first page frame number of extent `extent` of block `index`.
    pub(crate) fn extent_pfn(&self, index: usize, extent: usize) -> usize {
        self.block_start_pfn(index) + extent * EXTENT_PAGES
    }

    /// The block and the extent in it that `pfn` lies in, if it is in the region.
    pub(crate) fn locate(&self, pfn: usize) -> Option<(usize, usize)> {
        if !self.contains(pfn) {
            return None;
        }
        let offset = pfn - self.start_pfn;
        Some((
            offset / self.block_pages,
            offset % self.block_pages / EXTENT_PAGES,
        ))
    }

    /// The block that `pfn` lies in, if it is in the region.
    pub(crate) fn block_of(&self, pfn: usize) -> Option<usize> {
        self.locate(pfn).map(|(index, _)| index)
    }

    /// Whether `nr_pages` pages from `start_pfn` are exactly block `index`.
    pub(crate) fn is_block(&self, index: usize, start_pfn: usize, nr_pages: usize) -> bool {
        start_pfn == self.block_start_pfn(index) && nr_pages == self.block_pages.get()
    }

    /// The kernel's number for memory block `index` of the region (its directory in
    /// /sys/devices/system/memory/).
    pub(crate) fn memory_block_id(&self, index: usize) -> usize {
        self.block_start_pfn(index) / self.block_pages
    }
}
