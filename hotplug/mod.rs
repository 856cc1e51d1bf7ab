// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug: growing the guest past its boot size in whole memory blocks.
//!
//! The hotplug region runs from the end of boot RAM (rounded up to a memory block, and
//! above any RAM already there, such as blocks an earlier load could not remove) to
//! the domain's maximum reservation (rounded down), and ebb adds it one block at a
//! time as driver-managed "System RAM (ebb)" in a dynamic memory group. Adding a block
//! does not back it: the online-page callback keeps onlined pages PageOffline, outside
//! the allocator, and the worker has the hypervisor back them in 2 MiB extents, up to
//! 1 GiB per hypercall and only as far as the target lacks ([`Hotplug::grow`]). One
//! growth step adds as many blocks (up to one hypercall's worth) as the target needs
//! and the kernel onlines, then the next step backs them all at once.
//!
//! Each block is tracked as two bitmaps of its 2 MiB extents: `onlined` (the kernel
//! onlined it and ebb kept it) and `backed` (the hypervisor backs it and it is in the
//! buddy allocator, or, once the block is offline, its frames are still the domain's).
//! A block is `added` from a successful `add_memory_driver_managed` until it is
//! removed.
//!
//! Offlining a block, by a user or by ebb's own hot-remove, passes through the memory
//! notifier, as in virtio-mem: on MEM_GOING_OFFLINE ebb drops its reference to the
//! pages of unbacked extents so that the offline skips them instead of failing on
//! them; on MEM_OFFLINE it gives the frames of the block's backed extents back to the
//! hypervisor; on MEM_CANCEL_OFFLINE it takes the references back. A block going
//! offline is left alone by the worker. A user who onlines the block again gets it
//! backed by the worker, as far as the target asks.
//!
//! Lock order: `mem_hotplug_lock` → `Hotplug::blocks`; `blocks` is a leaf (the online
//! callback and the memory notifier take it alone; the balloon never holds its own
//! locks while calling in here). It is never held across `add_memory_driver_managed`
//! or `offline_and_remove_memory`, which take `mem_hotplug_lock` and run the callback
//! and the notifier synchronously.

use core::num::NonZeroUsize;
use core::sync::atomic::AtomicBool;
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
use crate::memory_notifier::PfnRange;
use crate::xen_reservation;
use crate::xen_reservation::ExtentOrder;
use crate::xen_reservation::MAX_EXTENTS_PER_CALL;

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
    /// Between MEM_GOING_OFFLINE and MEM_OFFLINE or MEM_CANCEL_OFFLINE.
    going_offline: bool,
    /// Extents the kernel onlined through ebb's callback.
    onlined: u64,
    /// Extents the hypervisor backs: onlined ones (in the buddy allocator), or ones of
    /// an offline or removed block whose frames the hypervisor would not take back.
    backed: u64,
    /// Unbacked extents whose page references ebb dropped for an offline in progress.
    refs_dropped: u64,
    /// The block went offline (or was removed) during a shrink step, which gives its
    /// frames back together with those of the step's other blocks when it ends.
    release_deferred: bool,
}

impl Block {
    fn unbacked(&self) -> u64 {
        self.onlined & !self.backed
    }

    fn state_name(&self, all: u64) -> &'static str {
        match self.onlined {
            _ if self.going_offline => "going_offline",
            0 => "offline",
            onlined if onlined == all => "online",
            _ => "onlining",
        }
    }
}

/// Everything the hotplug lock protects.
///
/// # Invariants
///
/// `frames.len() == MAX_EXTENTS_PER_CALL`.
struct Blocks {
    blocks: KVec<Block>,
    /// The frame list of a populate hypercall.
    frames: KVec<usize>,
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
    /// The hypervisor failed the populate with an error.
    HypervisorRefused,
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
    /// Added blocks that could not be offlined for removal since the target last
    /// changed (pages in them that cannot move, as in ZONE_NORMAL).
    pub(crate) unremovable: usize,
    /// Pages of ebb's blocks that hotplug had the hypervisor back (ballooning out may
    /// have taken some of them since).
    pub(crate) backed_pages: usize,
    /// Pages of onlined blocks kept offline, unbacked (ballooned).
    pub(crate) unbacked_pages: usize,
}

/// What memory hotplug changed in the domain's reservation since the balloon last
/// asked ([`Hotplug::take_changes`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Changes {
    /// Pages the hypervisor backed for onlined extents.
    pub(crate) backed: usize,
    /// Pages of offline blocks the hypervisor took back.
    pub(crate) released: usize,
    /// Reservation hypercalls made for them.
    pub(crate) hypercalls: usize,
}

/// The hotplug region and its blocks.
#[pin_data]
pub(crate) struct Hotplug {
    start_pfn: usize,
    nr_blocks: usize,
    /// Pages per memory block.
    block_pages: NonZeroUsize,
    extents_per_block: usize,
    group: MemoryGroup,
    #[pin]
    blocks: Mutex<Blocks>,
    /// Pages backed by hotplug that the balloon's reservation does not count yet.
    unfolded_pages: AtomicUsize,
    /// Pages released by offlining that the balloon's reservation still counts.
    unfolded_released: AtomicUsize,
    /// Reservation hypercalls made for them.
    unfolded_hypercalls: AtomicUsize,
    /// The module is unloading and has tried to remove every block: a user's offline
    /// of a block that stayed is refused from then on, or its frames would go back to
    /// the hypervisor just before the notifier that backs them again on online goes.
    unloading: AtomicBool,
    /// A shrink step is removing blocks: the frames of blocks that go offline wait
    /// for its end ([`Block::release_deferred`]). Cleared only under `blocks`.
    defer_release: AtomicBool,
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
        let extents_per_block = granularity.block_pages() / EXTENT_PAGES;
        let block_pages = NonZeroUsize::new(extents_per_block * EXTENT_PAGES);
        let (Some(block_pages), 1..=MAX_EXTENTS_PER_BLOCK) = (block_pages, extents_per_block)
        else {
            pr_warn!(
                "memory blocks of {} MiB: ebb hotplugs blocks of 2..128 MiB only; no hotplug\n",
                granularity.block_bytes >> 20
            );
            return Ok(None);
        };
        let mut start_pfn = boot_pages.div_ceil(block_pages.get()) * block_pages.get();
        // Blocks a previous load could not remove are ordinary memory now: above them.
        let block_bytes = (block_pages.get() * kernel::page::PAGE_SIZE) as u64;
        while start_pfn < max_pages
            && memory::ram_present((start_pfn * kernel::page::PAGE_SIZE) as u64, block_bytes)
        {
            start_pfn += block_pages.get();
        }
        let nr_blocks = max_pages.saturating_sub(start_pfn) / block_pages;
        if nr_blocks == 0 {
            return Ok(None);
        }
        let start = (start_pfn * kernel::page::PAGE_SIZE) as u64;
        let group = MemoryGroup::register_dynamic(start, block_pages.get())?;
        let blocks = KVec::from_elem(Block::default(), nr_blocks, GFP_KERNEL)?;
        let frames = KVec::from_elem(0, MAX_EXTENTS_PER_CALL, GFP_KERNEL)?;
        let hotplug = Arc::pin_init(
            try_pin_init!(Self {
                start_pfn,
                nr_blocks,
                block_pages,
                extents_per_block,
                group,
                // INVARIANT: `frames` has its full length.
                blocks <- new_mutex!(Blocks { blocks, frames }),
                unfolded_pages: AtomicUsize::new(0),
                unfolded_released: AtomicUsize::new(0),
                unfolded_hypercalls: AtomicUsize::new(0),
                unloading: AtomicBool::new(false),
                defer_release: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )?;
        Ok(Some(hotplug))
    }

    /// The highest reservation hotplug can reach, in pages.
    pub(crate) fn end_pfn(&self) -> usize {
        self.start_pfn + self.nr_blocks * self.block_pages.get()
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
        self.start_pfn + index * self.block_pages.get()
    }

    /// The guest-physical address and size in bytes of block `index`, as memory
    /// hotplug takes them.
    fn block_range(&self, index: usize) -> (u64, u64) {
        let bytes = |pages: usize| (pages * kernel::page::PAGE_SIZE) as u64;
        (
            bytes(self.block_start_pfn(index)),
            bytes(self.block_pages.get()),
        )
    }

    fn extent_pfn(&self, index: usize, extent: usize) -> usize {
        self.block_start_pfn(index) + extent * EXTENT_PAGES
    }

    /// What hotplug changed since the last call; the balloon folds it into the
    /// domain's reservation and its counters.
    pub(crate) fn take_changes(&self) -> Changes {
        Changes {
            backed: self.unfolded_pages.swap(0, Ordering::AcqRel),
            released: self.unfolded_released.swap(0, Ordering::AcqRel),
            hypercalls: self.unfolded_hypercalls.swap(0, Ordering::AcqRel),
        }
    }

    /// The block of the region that `range` is, if it is one.
    fn block_of(&self, range: PfnRange) -> Option<usize> {
        if !self.contains(range.start_pfn) {
            return None;
        }
        Some((range.start_pfn - self.start_pfn) / self.block_pages)
    }

    /// The online callback's work for `pages` of the region: keeps them, and hands to
    /// the allocator at once the extents that were backed before (a re-onlining); the
    /// rest stay PageOffline until the worker backs them.
    pub(crate) fn online(&self, pages: OnliningPages) {
        // Chunks are at least 2 MiB: the region is block-aligned and ebb does not use
        // memmap-on-memory. A smaller one stays offline, never unbacked in the buddy.
        if pages.nr_pages() < EXTENT_PAGES {
            return;
        }
        let offset = pages.pfn() - self.start_pfn;
        let index = offset / self.block_pages;
        let first = (offset % self.block_pages) / EXTENT_PAGES;
        let count = pages.nr_pages() / EXTENT_PAGES;
        let mut guard = self.blocks.lock();
        let Some(block) = guard.blocks.get_mut(index) else {
            return;
        };
        for extent in first..first + count {
            block.onlined |= 1 << extent;
            if block.backed & (1 << extent) != 0 {
                // SAFETY: onlined now, kept by this callback, backed since it was
                // populated (the offline or removal that preceded this onlining kept
                // the frames).
                unsafe {
                    memory_hotplug::online_pages_to_buddy(
                        self.extent_pfn(index, extent),
                        ExtentOrder::Superpage.order(),
                    )
                };
            }
        }
    }

    /// Has the hypervisor back up to `budget` onlined, unbacked extents (of blocks not
    /// going offline) in one hypercall and hands those it backed to the allocator.
    /// Returns how many it asked for and how many it backed, or the hypercall's error.
    fn back_onlined(&self, guard: &mut Blocks, budget: usize) -> (usize, Result<usize>) {
        let Blocks { blocks, frames } = guard;
        let budget = budget.min(frames.len());
        let mut asked = 0;
        for (index, block) in blocks.iter().enumerate() {
            if !block.added || block.going_offline {
                continue;
            }
            let unbacked = block.unbacked();
            for extent in (0..self.extents_per_block).filter(|e| unbacked & (1 << e) != 0) {
                if asked == budget {
                    break;
                }
                frames[asked] = self.extent_pfn(index, extent);
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
            let offset = pfn - self.start_pfn;
            let block = &mut blocks[offset / self.block_pages];
            block.backed |= 1 << ((offset % self.block_pages) / EXTENT_PAGES);
            // SAFETY: the extent was onlined and kept by the callback (its `onlined`
            // bit), the hypervisor backs it now, and it is 2 MiB aligned.
            unsafe { memory_hotplug::online_pages_to_buddy(pfn, ExtentOrder::Superpage.order()) };
        }
        self.unfolded_pages
            .fetch_add(backed * EXTENT_PAGES, Ordering::AcqRel);
        (asked, result)
    }

    /// One step towards a target that lacks `lacking` pages: back onlined extents, else
    /// wait for
    /// an added block to be onlined, else add blocks, as many as the target needs and
    /// one hypercall can back, each when the guest has `free_reserve` pages free
    /// beyond the block's memmap and the one before it was onlined.
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
        let all = self.all_extents();
        if guard
            .blocks
            .iter()
            .any(|block| block.added && block.onlined != all)
        {
            return Grow::NotOnlined;
        }
        let memmap_pages = self.block_pages.get() * MEMMAP_BYTES_PER_PAGE / kernel::page::PAGE_SIZE;
        let max_blocks = (MAX_EXTENTS_PER_CALL / self.extents_per_block).max(1);
        let mut added = 0;
        while added < max_blocks && added * self.extents_per_block < budget {
            let Some(index) = guard.blocks.iter().position(|block| !block.added) else {
                break;
            };
            if memory::free_pages() < memmap_pages + free_reserve {
                break;
            }
            drop(guard);
            // Without the lock: onlining runs the callback inside the add.
            let (start, size) = self.block_range(index);
            let result = self.group.add_memory(start, size);
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

    /// One step towards a target `excess` pages below what the domain holds: removes
    /// added blocks not found unremovable since the target last changed, offline ones
    /// first, else the highest, as long as each one's backed pages are no more than
    /// what is still in excess (within one extent) and the guest has room to migrate
    /// what it holds. The frames of every block removed in the step go back to the
    /// hypervisor together at its end, in as few hypercalls as they fill. Returns
    /// whether a block was removed (ballooning does the rest otherwise).
    pub(crate) fn shrink(&self, excess: usize, free_reserve: usize) -> bool {
        self.defer_release.store(true, Ordering::Release);
        let mut excess = excess;
        let mut removed = false;
        while let Some((index, pages)) = self.removable_block(excess, free_reserve) {
            // Without the lock: the notifier takes it while the block goes offline.
            let (start, size) = self.block_range(index);
            if let Err(err) = memory_hotplug::offline_and_remove(start, size) {
                pr_info!(
                    "memory block {} cannot be removed now ({:?}): it holds pages that cannot \
                     move; ballooning instead, and not retrying it until the target changes\n",
                    self.memory_block_id(index),
                    err
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
        let removable = |block: &Block| block.added && !block.going_offline && !block.unremovable;
        let index = guard
            .blocks
            .iter()
            .rposition(|block| removable(block) && block.onlined == 0)
            .or_else(|| guard.blocks.iter().rposition(removable))?;
        if guard.blocks[index].onlined == 0
            && guard.blocks[index].backed != 0
            && !guard.blocks[index].release_deferred
        {
            // The hypervisor kept frames of this block when it went offline; removed
            // with them, the block could only be added back on the same frames.
            let (_, kept) = self.release_backed(&mut guard, index);
            if kept > 0 {
                pr_info!(
                    "memory block {} is offline but the hypervisor keeps {} of its 2 MiB \
                     extents; not removing it until the target changes\n",
                    self.memory_block_id(index),
                    kept
                );
                guard.blocks[index].unremovable = true;
                return None;
            }
        }
        let block = &guard.blocks[index];
        let pages = block.backed.count_ones() as usize * EXTENT_PAGES;
        // Within one extent of the target is close enough, as for ballooning.
        if excess + EXTENT_PAGES <= pages {
            return None;
        }
        if block.onlined != 0 && memory::free_pages() < pages + free_reserve {
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
        let backed = guard.blocks[index].backed;
        guard.blocks[index] = Block {
            backed,
            release_deferred: deferred && backed != 0,
            ..Block::default()
        };
        if kept > 0 {
            pr_warn!(
                "memory block {} is removed but the hypervisor still backs {} of its 2 MiB \
                 extents; they stay the domain's until the block is added again\n",
                self.memory_block_id(index),
                kept
            );
        }
    }

    /// Gives the frames of the backed extents of offline block `index` back to the
    /// hypervisor in one hypercall. Returns how many extents it asked for and how many
    /// stay backed.
    fn release_backed(&self, guard: &mut Blocks, index: usize) -> (usize, usize) {
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
        let Blocks { blocks, frames } = guard;
        let backed_extents = |blocks: &KVec<Block>| -> usize {
            blocks
                .iter()
                .enumerate()
                .filter(|&(index, block)| select(index, block))
                .map(|(_, block)| block.backed.count_ones() as usize)
                .sum()
        };
        let had = backed_extents(blocks);
        loop {
            let mut asked = 0;
            let extents = blocks
                .iter()
                .enumerate()
                .filter(|&(index, block)| select(index, block))
                .flat_map(|(index, block)| {
                    (0..self.extents_per_block)
                        .filter(move |extent| block.backed & (1 << extent) != 0)
                        .map(move |extent| self.extent_pfn(index, extent))
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
                let offset = pfn - self.start_pfn;
                let extent = offset % self.block_pages / EXTENT_PAGES;
                blocks[offset / self.block_pages].backed &= !(1 << extent);
            }
            self.unfolded_released
                .fetch_add(released * EXTENT_PAGES, Ordering::AcqRel);
            if released < asked {
                return (had, backed_extents(blocks));
            }
        }
    }

    /// The kernel's number for memory block `index` of the region (its directory in
    /// /sys/devices/system/memory/).
    fn memory_block_id(&self, index: usize) -> usize {
        self.block_start_pfn(index) / self.block_pages
    }

    /// The region's summary.
    pub(crate) fn summary(&self) -> Summary {
        let guard = self.blocks.lock();
        let mut summary = Summary::default();
        for block in guard.blocks.iter().filter(|block| block.added) {
            summary.added += 1;
            summary.onlined += usize::from(block.onlined != 0);
            summary.unremovable += usize::from(block.unremovable);
            summary.backed_pages += block.backed.count_ones() as usize * EXTENT_PAGES;
            summary.unbacked_pages += block.unbacked().count_ones() as usize * EXTENT_PAGES;
        }
        summary
    }

    /// Writes one line per added block: its memory block, state, backed and ballooned
    /// pages, and whether it was found unremovable.
    pub(crate) fn write_block_list(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let guard = self.blocks.lock();
        let all = self.all_extents();
        for (index, block) in guard.blocks.iter().enumerate() {
            if !block.added {
                continue;
            }
            let zone = if block.onlined == 0 {
                None
            } else {
                // SAFETY: an onlined block is not removed while `blocks` is held: its
                // MEM_OFFLINE, which comes before removal, takes the lock.
                unsafe { memory_hotplug::zone_name(self.block_start_pfn(index)) }
            };
            writeln!(
                out,
                "memory{} {} zone={} backed_pages={} ballooned_pages={} unremovable={}",
                self.memory_block_id(index),
                block.state_name(all),
                zone.unwrap_or("none"),
                block.backed.count_ones() as usize * EXTENT_PAGES,
                block.unbacked().count_ones() as usize * EXTENT_PAGES,
                u8::from(block.unremovable)
            )?;
        }
        Ok(())
    }

    /// MEM_GOING_OFFLINE for `range`: when it is one of ebb's blocks, drops ebb's
    /// references to its unbacked pages so that the offline skips them, and keeps the
    /// worker away from the block until the offline ends.
    pub(crate) fn going_offline(&self, range: PfnRange) -> Result {
        let Some(index) = self.block_of(range) else {
            return Ok(());
        };
        if self.unloading.load(Ordering::Acquire) {
            pr_info!(
                "memory block {}: ebb is unloading; offline it once ebb is gone\n",
                self.memory_block_id(index)
            );
            return Err(EBUSY);
        }
        if range.nr_pages != self.block_pages.get()
            || range.start_pfn != self.block_start_pfn(index)
        {
            pr_warn!(
                "refusing to offline {} pages from pfn {:#x}: ebb's memory goes offline in whole blocks\n",
                range.nr_pages,
                range.start_pfn
            );
            return Err(EINVAL);
        }
        let mut guard = self.blocks.lock();
        let block = &mut guard.blocks[index];
        let unbacked = block.unbacked();
        for extent in (0..self.extents_per_block).filter(|e| unbacked & (1 << e) != 0) {
            let pfn = self.extent_pfn(index, extent);
            // SAFETY: an unbacked onlined extent was kept by the online callback and
            // never handed to the allocator; this is the notifier's MEM_GOING_OFFLINE
            // and MEM_CANCEL_OFFLINE undoes it.
            if let Err(err) = unsafe { memory_hotplug::drop_offline_refs(pfn, EXTENT_PAGES) } {
                pr_warn!(
                    "memory block {}: an unbacked page at pfn {:#x}.. is referenced elsewhere; refusing the offline\n",
                    self.memory_block_id(index),
                    pfn
                );
                self.retake_refs(index, block);
                return Err(err);
            }
            block.refs_dropped |= 1 << extent;
        }
        block.going_offline = true;
        Ok(())
    }

    /// MEM_CANCEL_OFFLINE for `range`: the block stays online as it was.
    pub(crate) fn cancel_offline(&self, range: PfnRange) {
        let Some(index) = self.block_of(range) else {
            return;
        };
        let mut guard = self.blocks.lock();
        let block = &mut guard.blocks[index];
        self.retake_refs(index, block);
        block.going_offline = false;
    }

    fn retake_refs(&self, index: usize, block: &mut Block) {
        let dropped = block.refs_dropped;
        for extent in (0..self.extents_per_block).filter(|e| dropped & (1 << e) != 0) {
            // SAFETY: the references of this extent were dropped by `going_offline`
            // (its `refs_dropped` bit) and the block is still online.
            unsafe {
                memory_hotplug::retake_offline_refs(self.extent_pfn(index, extent), EXTENT_PAGES)
            };
        }
        block.refs_dropped = 0;
    }

    /// MEM_OFFLINE for `range`: nothing in the block is in use any more; gives the
    /// frames of its backed extents back to the hypervisor. Returns whether `range` is
    /// one of ebb's blocks.
    pub(crate) fn offline(&self, range: PfnRange) -> bool {
        let Some(index) = self.block_of(range) else {
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
                    self.memory_block_id(index),
                    asked - kept,
                    asked
                );
            }
        }
        let block = &mut guard.blocks[index];
        block.onlined = 0;
        block.refs_dropped = 0;
        block.going_offline = false;
        true
    }

    /// Unload: offlines and removes every added block (the notifier gives its frames
    /// back to the hypervisor), then backs what is left of blocks that cannot be
    /// removed so that they stay as ordinary memory. Returns how many blocks it
    /// removed.
    pub(crate) fn remove_all(&self) -> usize {
        let mut removed = (0..self.nr_blocks)
            .filter(|&index| self.blocks.lock().blocks[index].added && self.remove_at_unload(index))
            .count();
        // From here on no user offline can give frames back. One that happened while
        // the blocks above were tried left its block offline and unbacked: remove it
        // now (it is offline, so nothing can stop that), or an online after unload
        // would hand the allocator pages without frames.
        self.unloading.store(true, Ordering::Release);
        removed += (0..self.nr_blocks)
            .filter(|&index| {
                let block = &self.blocks.lock().blocks[index];
                block.added && block.onlined == 0
            })
            .filter(|&index| self.remove_at_unload(index))
            .count();
        self.back_all_onlined();
        let mut guard = self.blocks.lock();
        for index in 0..self.nr_blocks {
            if guard.blocks[index].added || guard.blocks[index].backed == 0 {
                continue;
            }
            let (_, kept) = self.release_backed(&mut guard, index);
            if kept > 0 {
                pr_warn!(
                    "unload: the hypervisor keeps {} KiB of removed memory block {}: the domain \
                     holds them, unused, until it is rebooted\n",
                    kept * EXTENT_PAGES * (kernel::page::PAGE_SIZE / 1024),
                    self.memory_block_id(index)
                );
            }
        }
        removed
    }

    /// Offlines and removes block `index` at unload; says why when it cannot.
    fn remove_at_unload(&self, index: usize) -> bool {
        let (start, size) = self.block_range(index);
        match memory_hotplug::offline_and_remove(start, size) {
            Ok(()) => {
                self.forget_removed(index);
                true
            }
            Err(err) => {
                pr_warn!(
                    "unload: memory block {} cannot be removed ({:?}); it stays as memory\n",
                    self.memory_block_id(index),
                    err
                );
                false
            }
        }
    }

    /// Backs every onlined extent of every added block, as far as the hypervisor
    /// allows; extents it cannot back stay offline (PageOffline) and say so.
    fn back_all_onlined(&self) {
        let mut guard = self.blocks.lock();
        loop {
            let (asked, result) = self.back_onlined(&mut guard, usize::MAX);
            let backed = result.unwrap_or(0);
            if asked == 0 {
                return;
            }
            if backed < asked {
                let left: u32 = guard
                    .blocks
                    .iter()
                    .map(|block| block.unbacked().count_ones())
                    .sum();
                pr_warn!(
                    "unload: {} KiB of ebb's blocks stay offline: the hypervisor cannot back them\n",
                    left as usize * EXTENT_PAGES * (kernel::page::PAGE_SIZE / 1024)
                );
                return;
            }
        }
    }
}
