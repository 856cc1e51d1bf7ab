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
//! Each block ([`block::Block`]) is tracked as two sets of its 2 MiB extents:
//! `onlined` (the kernel onlined it and ebb kept it) and `backed` (the hypervisor backs
//! it and it is in the buddy allocator, or, once the block is offline, its frames are
//! still the domain's). A block is `added` from a successful
//! `add_memory_driver_managed` until it is removed.
//!
//! The files: `region.rs` (geometry), `extents.rs` (the extent set), `block.rs` (a
//! block's state), `grow.rs` (adding and backing blocks), `shrink.rs` (removing them,
//! and unload), `pv.rs` (backing and releasing extents frame by frame on PV),
//! `notifier.rs` (the online-page callback's and memory notifier's work), `status.rs`
//! (what users read).
//!
//! Offlining a block, by a user or by ebb's own hot-remove, passes through the memory
//! notifier, as in virtio-mem: on MEM_GOING_OFFLINE ebb drops its reference to the
//! pages of unbacked extents so that the offline skips them instead of failing on
//! them; on MEM_OFFLINE it gives the frames of the block's backed extents back to the
//! hypervisor; on MEM_CANCEL_OFFLINE it takes the references back. A block going
//! offline is left alone by the worker. A user who onlines the block again gets it
//! backed by the worker, as far as the target asks.
//!
//! Lock order: `mem_hotplug_lock` → `Hotplug::blocks` → `Balloon::state`; `blocks` is
//! taken alone by the online callback and the memory notifier, and the balloon never
//! holds its own locks while calling in here; only the status snapshot
//! ([`Hotplug::with_snapshot`]) takes `state` under it. It is never held across `add_memory_driver_managed`
//! or `offline_and_remove_memory`, which take `mem_hotplug_lock` and run the callback
//! and the notifier synchronously.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering;

use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::sync::Mutex;

use crate::rust::memory;
use crate::rust::memory_hotplug::MemoryGroup;
use crate::rust::xen_reservation::MAX_EXTENTS_PER_CALL;

use block::Block;
use region::NoRegion;
use region::Region;

mod block;
mod extents;
mod grow;
mod notifier;
mod pv;
mod region;
mod shrink;
mod status;

pub(crate) use grow::Grow;
pub(crate) use status::Summary;

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

/// How the hypervisor backs ebb's blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backing {
    /// The hypervisor keeps the guest's p2m (PVH, HVM): it backs 2 MiB extents by
    /// guest frame number, up to [`MAX_EXTENTS_PER_CALL`] per hypercall.
    Superpages,
    /// The guest keeps its own p2m (PV): the hypervisor backs an extent with 512 machine
    /// frames of its choice, which ebb maps itself (`pv.rs`).
    PvFrames {
        /// Whether the kernel may remove memory ([`Backing::removes_blocks`]).
        hot_remove: bool,
    },
}

impl Backing {
    /// Whether ebb removes the blocks it added. On PV only when the kernel can: x86's
    /// memory hot-remove frees the page tables of the removed range's kernel mappings
    /// (`free_pagetable()` in arch/x86/mm/init_64.c) without the paravirt hook that
    /// makes a Xen PV page-table page writable again, so the allocator hands out pages
    /// that fault on the first write (seen on Xen 4.17: an oops in the next task
    /// exit), unless the kernel carries the fix in scripts/kernel-patches/. Without it
    /// ebb shrinks a PV guest by ballooning, as the C driver, which never removes
    /// memory, does.
    pub(crate) fn removes_blocks(self) -> bool {
        match self {
            Self::Superpages => true,
            Self::PvFrames { hot_remove } => hot_remove,
        }
    }

    /// Whether the guest keeps its own p2m (PV).
    pub(crate) fn is_pv(self) -> bool {
        matches!(self, Self::PvFrames { .. })
    }
}

/// Everything the hotplug lock protects.
///
/// # Invariants
///
/// `blocks.len()` is the region's number of blocks; `frames.len() ==
/// MAX_EXTENTS_PER_CALL`.
struct Blocks {
    blocks: KVec<Block>,
    /// The frame list of a reservation hypercall.
    frames: KVec<usize>,
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
    region: Region,
    backing: Backing,
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
    /// or online of a block that stayed is refused from then on, or its frames could
    /// go back to the hypervisor, or its pages be onlined, after ebb last looked.
    unloading: AtomicBool,
    /// A shrink step is removing blocks: the frames of blocks that go offline wait
    /// for its end ([`Block::release_deferred`]). Cleared only under `blocks`.
    defer_release: AtomicBool,
    /// How long a block's removal may take before it is given up (`shrink.rs`).
    remove_timeout_ms: AtomicU32,
}

/// How long a block's removal may take by default: migrating a 128 MiB block takes
/// well under a second on hardware and a few seconds under emulation.
pub(crate) const DEFAULT_REMOVE_TIMEOUT_MS: u32 = 30_000;

impl Hotplug {
    /// The region above `boot_pages` up to `max_pages` (the domain's reservation at
    /// load and its maximum), backed as `backing` says, or `None` when it holds no
    /// whole block or the blocks are too large for ebb's extent sets.
    pub(crate) fn new(
        granularity: Granularity,
        backing: Backing,
        boot_pages: usize,
        max_pages: usize,
    ) -> Result<Option<Arc<Self>>> {
        let region = match Region::new(
            granularity.block_pages(),
            boot_pages,
            max_pages,
            |pfn, pages| memory::ram_present(pfn_to_phys(pfn), pfn_to_phys(pages)),
        ) {
            Ok(region) => region,
            Err(NoRegion::BlockSize) => {
                pr_warn!(
                    "memory blocks of {} MiB: ebb hotplugs blocks of 2..128 MiB only; no hotplug\n",
                    granularity.block_bytes >> 20
                );
                return Ok(None);
            }
            Err(NoRegion::NoRoom) => return Ok(None),
        };
        let group = MemoryGroup::register_dynamic(
            pfn_to_phys(region.block_start_pfn(0)),
            region.block_pages(),
        )?;
        let blocks = KVec::from_elem(Block::default(), region.nr_blocks(), GFP_KERNEL)?;
        let frames = KVec::from_elem(0, MAX_EXTENTS_PER_CALL, GFP_KERNEL)?;
        let hotplug = Arc::pin_init(
            try_pin_init!(Self {
                region,
                backing,
                group,
                // INVARIANT: one block per block of the region; `frames` has its full
                // length.
                blocks <- new_mutex!(Blocks { blocks, frames }),
                unfolded_pages: AtomicUsize::new(0),
                unfolded_released: AtomicUsize::new(0),
                unfolded_hypercalls: AtomicUsize::new(0),
                unloading: AtomicBool::new(false),
                defer_release: AtomicBool::new(false),
                remove_timeout_ms: AtomicU32::new(DEFAULT_REMOVE_TIMEOUT_MS),
            }),
            GFP_KERNEL,
        )?;
        Ok(Some(hotplug))
    }

    /// The highest reservation hotplug can reach, in pages.
    pub(crate) fn end_pfn(&self) -> usize {
        self.region.end_pfn()
    }

    /// Whether `pfn` lies in the region.
    pub(crate) fn contains(&self, pfn: usize) -> bool {
        self.region.contains(pfn)
    }

    /// The guest-physical address and size in bytes of block `index`, as memory
    /// hotplug takes them.
    fn block_range(&self, index: usize) -> (u64, u64) {
        (
            pfn_to_phys(self.region.block_start_pfn(index)),
            pfn_to_phys(self.region.block_pages()),
        )
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
}

/// The guest-physical address of page frame `pfn` (or the bytes in `pfn` pages).
fn pfn_to_phys(pfn: usize) -> u64 {
    (pfn * kernel::page::PAGE_SIZE) as u64
}
