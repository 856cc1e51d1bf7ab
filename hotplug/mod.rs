// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug: growing the guest past its boot size in whole memory blocks.
//!
//! The hotplug region runs from the end of boot RAM (rounded up to a memory block) to
//! the domain's maximum reservation (rounded down), and ebb adds it one block at a
//! time as driver-managed "System RAM (ebb)" in a dynamic memory group. Adding a block
//! does not back it: the hypervisor backs a block's pages only when they are onlined,
//! through the online-page callback, in 2 MiB extents and only as far as the growth
//! budget (what the target still lacks) goes. Extents that are onlined but not backed
//! stay PageOffline, outside the allocator, and are backed later when the target
//! grows ([`Hotplug::grow`]).
//!
//! Each block is tracked as two bitmaps of its 2 MiB extents: `onlined` (the kernel
//! onlined it and ebb kept it) and `backed` (the hypervisor backs it and it is in the
//! buddy allocator). A block is `added` from a successful `add_memory_driver_managed`
//! until it is removed.
//!
//! Lock order: `Hotplug::blocks` is a leaf (the online callback takes it alone; the
//! balloon never holds its own locks while calling in here). It is never held across
//! `add_memory_driver_managed` or `offline_and_remove_memory`, whose onlining runs the
//! callback synchronously.

use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering;

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::sync::Mutex;

use crate::memory;
use crate::memory_hotplug;
use crate::memory_hotplug::MemoryGroup;
use crate::memory_hotplug::OnliningPages;
use crate::xen_reservation;
use crate::xen_reservation::ExtentOrder;

/// Pages per 2 MiB extent.
const EXTENT_PAGES: usize = ExtentOrder::Superpage.pages();
/// Most extents in a block that the bitmaps can track: a 128 MiB block has 64.
const MAX_EXTENTS_PER_BLOCK: usize = u64::BITS as usize;
/// Bytes of `struct page` per page, for the memmap cost of adding a block.
const MEMMAP_BYTES_PER_PAGE: usize = 64;

/// The granularity in which ebb adds and removes guest memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Granularity {
    /// Bytes per memory block.
    pub(crate) block_bytes: usize,
}

impl Granularity {
    /// Reads the running kernel's memory block size.
    pub(crate) fn of_running_kernel() -> Self {
        Self {
            block_bytes: memory::block_size_bytes(),
        }
    }

    fn block_pages(self) -> usize {
        self.block_bytes / kernel::page::PAGE_SIZE
    }
}

/// One memory block of the region.
#[derive(Clone, Copy, Default)]
struct Block {
    added: bool,
    /// An offline-and-remove failed; not tried again until the target changes.
    unremovable: bool,
    /// Extents the kernel onlined through ebb's callback.
    onlined: u64,
    /// Extents the hypervisor backs (always a subset of `onlined` or of a block being
    /// removed).
    backed: u64,
}

impl Block {
    fn unbacked(&self) -> u64 {
        self.onlined & !self.backed
    }
}

/// Everything the hotplug lock protects.
struct Blocks {
    blocks: KVec<Block>,
    /// Pages the callback may still back: what the target lacks, set by the worker.
    budget: usize,
}

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
    /// The guest lacks free memory for the block's memmap.
    EnomemGuest,
    /// The kernel refused to add the block.
    AddFailed,
}

/// A summary of the region for sysfs and xenstore.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Summary {
    /// Blocks added.
    pub(crate) added: usize,
    /// Added blocks that the kernel onlined.
    pub(crate) onlined: usize,
    /// Pages of ebb's blocks that hotplug had the hypervisor back (ballooning out may
    /// have taken some of them since).
    pub(crate) backed_pages: usize,
    /// Pages of onlined blocks kept offline, unbacked (ballooned).
    pub(crate) unbacked_pages: usize,
}

/// The hotplug region and its blocks.
#[pin_data]
pub(crate) struct Hotplug {
    start_pfn: usize,
    nr_blocks: usize,
    granularity: Granularity,
    extents_per_block: usize,
    group: MemoryGroup,
    #[pin]
    blocks: Mutex<Blocks>,
    /// Pages backed by hotplug that the balloon's reservation does not count yet.
    unfolded_pages: AtomicUsize,
    /// Populate hypercalls made for them.
    unfolded_hypercalls: AtomicUsize,
}

impl Hotplug {
    /// The region above `boot_pages` up to `max_pages` (the domain's reservation at
    /// load and its maximum), or `None` when it holds no whole block or the blocks are
    /// too large for ebb's bitmaps.
    pub(crate) fn new(
        granularity: Granularity,
        boot_pages: usize,
        max_pages: usize,
    ) -> Result<Option<Arc<Self>>> {
        let block_pages = granularity.block_pages();
        let extents_per_block = block_pages / EXTENT_PAGES;
        if extents_per_block == 0 || extents_per_block > MAX_EXTENTS_PER_BLOCK {
            pr_warn!(
                "memory blocks of {} MiB: ebb hotplugs blocks of 2..128 MiB only; no hotplug\n",
                granularity.block_bytes >> 20
            );
            return Ok(None);
        }
        let start_pfn = boot_pages.div_ceil(block_pages) * block_pages;
        let nr_blocks = max_pages.saturating_sub(start_pfn) / block_pages;
        if nr_blocks == 0 {
            return Ok(None);
        }
        let start = (start_pfn * kernel::page::PAGE_SIZE) as u64;
        let group = MemoryGroup::register_dynamic(start, block_pages)?;
        let blocks = KVec::from_elem(Block::default(), nr_blocks, GFP_KERNEL)?;
        let hotplug = Arc::pin_init(
            try_pin_init!(Self {
                start_pfn,
                nr_blocks,
                granularity,
                extents_per_block,
                group,
                blocks <- new_mutex!(Blocks { blocks, budget: 0 }),
                unfolded_pages: AtomicUsize::new(0),
                unfolded_hypercalls: AtomicUsize::new(0),
            }),
            GFP_KERNEL,
        )?;
        Ok(Some(hotplug))
    }

    /// The highest reservation hotplug can reach, in pages.
    pub(crate) fn end_pfn(&self) -> usize {
        self.start_pfn + self.nr_blocks * self.granularity.block_pages()
    }

    /// Whether `pfn` lies in the region.
    pub(crate) fn contains(&self, pfn: usize) -> bool {
        pfn >= self.start_pfn && pfn < self.end_pfn()
    }

    /// The bitmap of every extent of a block.
    fn all_extents(&self) -> u64 {
        u64::MAX >> (MAX_EXTENTS_PER_BLOCK - self.extents_per_block)
    }

    fn block_start_pfn(&self, index: usize) -> usize {
        self.start_pfn + index * self.granularity.block_pages()
    }

    fn extent_pfn(&self, index: usize, extent: usize) -> usize {
        self.block_start_pfn(index) + extent * EXTENT_PAGES
    }

    /// Pages backed by hotplug since the last call and the hypercalls that backed
    /// them; the balloon adds them to the domain's reservation and its counters.
    pub(crate) fn take_backed(&self) -> (usize, usize) {
        (
            self.unfolded_pages.swap(0, Ordering::AcqRel),
            self.unfolded_hypercalls.swap(0, Ordering::AcqRel),
        )
    }

    /// The online callback's work for `pages` of the region: keeps them, backs and
    /// hands to the allocator the extents that were backed before (a re-onlining) and
    /// as many others as the budget allows; the rest stay PageOffline.
    pub(crate) fn online(&self, pages: OnliningPages) {
        // Chunks are at least 2 MiB: the region is block-aligned and ebb does not use
        // memmap-on-memory. A smaller one stays offline, never unbacked in the buddy.
        if pages.nr_pages() < EXTENT_PAGES {
            return;
        }
        let block_pages = self.granularity.block_pages();
        let offset = pages.pfn() - self.start_pfn;
        let index = offset / block_pages;
        let first = (offset % block_pages) / EXTENT_PAGES;
        let count = pages.nr_pages() / EXTENT_PAGES;
        let mut guard = self.blocks.lock();
        let Blocks { blocks, budget } = &mut *guard;
        let Some(block) = blocks.get_mut(index) else {
            return;
        };
        let mut frames = [0usize; MAX_EXTENTS_PER_BLOCK];
        let mut asked = 0;
        for extent in first..first + count {
            block.onlined |= 1 << extent;
            if block.backed & (1 << extent) != 0 {
                // SAFETY: onlined now, kept by this callback, backed since it was
                // populated (the offline that preceded this onlining kept the frames).
                unsafe {
                    memory_hotplug::online_pages_to_buddy(
                        self.extent_pfn(index, extent),
                        ExtentOrder::Superpage.order(),
                    )
                };
            } else if *budget >= EXTENT_PAGES * (asked + 1) {
                frames[asked] = self.extent_pfn(index, extent);
                asked += 1;
            }
        }
        let backed = self.populate_and_online(index, block, &mut frames[..asked]);
        *budget -= backed * EXTENT_PAGES;
    }

    /// Populates the extents starting at `frames` (all onlined and kept, of block
    /// `index`) and hands those the hypervisor backed to the allocator. Returns how
    /// many it backed.
    fn populate_and_online(&self, index: usize, block: &mut Block, frames: &mut [usize]) -> usize {
        if frames.is_empty() {
            return 0;
        }
        let pfns: [usize; MAX_EXTENTS_PER_BLOCK] =
            core::array::from_fn(|i| frames.get(i).copied().unwrap_or(0));
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let backed =
            xen_reservation::populate_physmap(frames, ExtentOrder::Superpage).unwrap_or_default();
        for &pfn in &pfns[..backed] {
            let extent = (pfn - self.block_start_pfn(index)) / EXTENT_PAGES;
            block.backed |= 1 << extent;
            // SAFETY: the extent was onlined and kept by the callback (its `onlined`
            // bit), the hypervisor backs it now, and it is 2 MiB aligned.
            unsafe { memory_hotplug::online_pages_to_buddy(pfn, ExtentOrder::Superpage.order()) };
        }
        self.unfolded_pages
            .fetch_add(backed * EXTENT_PAGES, Ordering::AcqRel);
        backed
    }

    /// One step towards a target that lacks `lacking` pages (counting what
    /// [`Hotplug::take_backed`] returned so far): back onlined extents, else wait for
    /// an added block to be onlined, else add the next block when the guest has
    /// `free_reserve` pages free beyond the block's memmap.
    pub(crate) fn grow(&self, lacking: usize, free_reserve: usize) -> Grow {
        let mut guard = self.blocks.lock();
        // Onlining may have backed more since: those pages are counted under this lock.
        let lacking = lacking.saturating_sub(self.unfolded_pages.load(Ordering::Acquire));
        guard.budget = lacking - lacking % EXTENT_PAGES;
        if guard.budget == 0 {
            return Grow::Nothing;
        }
        let mut backed = 0;
        let mut refused = false;
        let Blocks { blocks, budget } = &mut *guard;
        for (index, block) in blocks.iter_mut().enumerate() {
            let unbacked = block.unbacked();
            if !block.added || unbacked == 0 || *budget < EXTENT_PAGES {
                continue;
            }
            let mut frames = [0usize; MAX_EXTENTS_PER_BLOCK];
            let mut asked = 0;
            for extent in 0..self.extents_per_block {
                if unbacked & (1 << extent) != 0 && *budget >= EXTENT_PAGES * (asked + 1) {
                    frames[asked] = self.extent_pfn(index, extent);
                    asked += 1;
                }
            }
            let done = self.populate_and_online(index, block, &mut frames[..asked]);
            *budget -= done * EXTENT_PAGES;
            backed += done * EXTENT_PAGES;
            refused |= done < asked;
        }
        if backed > 0 {
            return Grow::Backed;
        }
        if refused {
            return Grow::EnomemHypervisor;
        }
        // A block being onlined by a user counts as not onlined until its last chunk.
        let all = self.all_extents();
        if blocks
            .iter()
            .any(|block| block.added && block.onlined != all)
        {
            return Grow::NotOnlined;
        }
        let Some(index) = blocks.iter().position(|block| !block.added) else {
            return Grow::Nothing;
        };
        let block_pages = self.granularity.block_pages();
        let memmap_pages = block_pages * MEMMAP_BYTES_PER_PAGE / kernel::page::PAGE_SIZE;
        if memory::free_pages() < memmap_pages + free_reserve {
            return Grow::EnomemGuest;
        }
        drop(guard);

        // Without the lock: onlining runs the callback inside the add.
        let start = (self.block_start_pfn(index) * kernel::page::PAGE_SIZE) as u64;
        if let Err(err) = self
            .group
            .add_memory(start, self.granularity.block_bytes as u64)
        {
            pr_warn!("adding memory block at {:#x} failed: {:?}\n", start, err);
            return Grow::AddFailed;
        }
        if let Some(block) = self.blocks.lock().blocks.get_mut(index) {
            block.added = true;
        }
        Grow::Added
    }

    /// One step towards a target `excess` pages below what the domain holds: removes
    /// the highest added block if all of it may go (every extent backed, or never
    /// onlined) without going more than an extent below the target, the guest has room to migrate what it holds, and it was not found
    /// unremovable since the target last changed. Returns the pages the hypervisor
    /// took back, or `None` when no block was removed (ballooning does the rest).
    pub(crate) fn shrink(&self, excess: usize, free_reserve: usize) -> Option<usize> {
        let block_pages = self.granularity.block_pages();
        let all = self.all_extents();
        let index = {
            let guard = self.blocks.lock();
            let index = guard.blocks.iter().rposition(|block| block.added)?;
            let block = &guard.blocks[index];
            let whole = block.onlined == all && block.backed == all;
            let fresh = block.onlined == 0;
            let pages = block.backed.count_ones() as usize * EXTENT_PAGES;
            // Within one extent of the target is close enough, as for ballooning.
            if block.unremovable || !(whole || fresh) || excess + EXTENT_PAGES <= pages {
                return None;
            }
            if whole && memory::free_pages() < block_pages + free_reserve {
                return None;
            }
            index
        };
        // Without the lock: a failed offline re-onlines the block through the callback.
        let start = (self.block_start_pfn(index) * kernel::page::PAGE_SIZE) as u64;
        if let Err(err) =
            memory_hotplug::offline_and_remove(start, self.granularity.block_bytes as u64)
        {
            pr_info!(
                "memory block at {:#x} cannot be removed now ({:?}); ballooning instead\n",
                start,
                err
            );
            self.blocks.lock().blocks[index].unremovable = true;
            return None;
        }
        Some(self.release_removed(index))
    }

    /// Allows another removal attempt of every block (the target changed).
    pub(crate) fn retry_removal(&self) {
        for block in self.blocks.lock().blocks.iter_mut() {
            block.unremovable = false;
        }
    }

    /// Forgets removed block `index` and gives its backed extents back to the
    /// hypervisor. Returns how many pages it took.
    fn release_removed(&self, index: usize) -> usize {
        let backed = {
            let mut guard = self.blocks.lock();
            let block = &mut guard.blocks[index];
            let backed = block.backed;
            *block = Block::default();
            backed
        };
        let mut frames = [0usize; MAX_EXTENTS_PER_BLOCK];
        let mut asked = 0;
        for extent in (0..self.extents_per_block).filter(|e| backed & (1 << e) != 0) {
            frames[asked] = self.extent_pfn(index, extent);
            asked += 1;
        }
        self.unfolded_hypercalls.fetch_add(1, Ordering::AcqRel);
        let done =
            xen_reservation::decrease_reservation(&mut frames[..asked], ExtentOrder::Superpage)
                .unwrap_or_default();
        if done < asked {
            pr_warn!(
                "the hypervisor took back {} of {} extents of a removed memory block\n",
                done,
                asked
            );
        }
        done * EXTENT_PAGES
    }

    /// The region's summary.
    pub(crate) fn summary(&self) -> Summary {
        let guard = self.blocks.lock();
        let mut summary = Summary::default();
        for block in guard.blocks.iter().filter(|block| block.added) {
            summary.added += 1;
            summary.onlined += usize::from(block.onlined != 0);
            summary.backed_pages += block.backed.count_ones() as usize * EXTENT_PAGES;
            summary.unbacked_pages += block.unbacked().count_ones() as usize * EXTENT_PAGES;
        }
        summary
    }

    /// Unload: backs every onlined extent (so that each block is ordinary memory),
    /// then offlines and removes every added block and gives its frames back to the
    /// hypervisor. Blocks that cannot be removed stay as ordinary memory. Returns how
    /// many blocks it removed and how many pages the hypervisor took back.
    pub(crate) fn remove_all(&self) -> (usize, usize) {
        self.grow_budget_unlimited();
        let mut removed = 0;
        let mut released = 0;
        for index in 0..self.nr_blocks {
            if !self.blocks.lock().blocks[index].added {
                continue;
            }
            let start = (self.block_start_pfn(index) * kernel::page::PAGE_SIZE) as u64;
            if let Err(err) =
                memory_hotplug::offline_and_remove(start, self.granularity.block_bytes as u64)
            {
                let block = self.blocks.lock().blocks[index];
                pr_warn!(
                    "unload: memory block at {:#x} cannot be removed ({:?}); it stays as memory \
                     with {} of {} extents backed\n",
                    start,
                    err,
                    block.backed.count_ones(),
                    self.extents_per_block
                );
                continue;
            }
            removed += 1;
            released += self.release_removed(index);
        }
        (removed, released)
    }

    /// Backs every onlined extent of every added block, as far as the hypervisor
    /// allows, and lets the callback back whatever a rollback onlines.
    fn grow_budget_unlimited(&self) {
        let mut guard = self.blocks.lock();
        guard.budget = usize::MAX;
        let Blocks { blocks, .. } = &mut *guard;
        for (index, block) in blocks.iter_mut().enumerate() {
            let unbacked = block.unbacked();
            let mut frames = [0usize; MAX_EXTENTS_PER_BLOCK];
            let mut asked = 0;
            for extent in (0..self.extents_per_block).filter(|e| unbacked & (1 << e) != 0) {
                frames[asked] = self.extent_pfn(index, extent);
                asked += 1;
            }
            self.populate_and_online(index, block, &mut frames[..asked]);
        }
    }
}
