//! The buddy allocator over machine frames.
//!
//! The heap covers one span of machine frames given at boot; the RAM inside it is
//! added range by range (holes stay [`FrameState::NotRam`]). Free blocks are aligned
//! power-of-two runs up to [`MAX_ORDER`] (1 GiB), kept in one intrusive doubly linked
//! list per order whose links live in the blocks' first frame records. Allocation
//! takes the smallest block that fits and hands back its lower part, returning the
//! upper halves to the lists; freeing merges with the buddy while the buddy is a free
//! block of the same order.
//!
//! Scrubbing: every freed frame is marked dirty; [`FrameHeap::alloc`] zeroes the dirty
//! frames of the block it hands out through [`FrameOps`], so callers always receive
//! clean frames, and [`FrameHeap::scrub_free`] lets the platform scrub ahead of time
//! when it is idle.

use alloc::vec::Vec;
use core::ops::{Index, IndexMut};

use super::frame::{FrameRecord, FrameState, OfflineRequest, PackedGfn, NO_LINK};
use crate::addr::{DomId, Gfn, Mfn, MfnRange, Order, MAX_ORDER};
use crate::platform::FrameOps;

const ORDERS: usize = MAX_ORDER as usize + 1;

/// One value per order, indexed by [`Order`].
#[derive(Clone, Copy, Debug)]
pub(super) struct PerOrder<T>([T; ORDERS]);

impl<T> Index<Order> for PerOrder<T> {
    type Output = T;
    #[expect(
        clippy::indexing_slicing,
        reason = "an Order is at most MAX_ORDER (its invariant) and the array has MAX_ORDER + 1 entries"
    )]
    fn index(&self, order: Order) -> &T {
        &self.0[usize::from(order.get())]
    }
}

impl<T> IndexMut<Order> for PerOrder<T> {
    #[expect(
        clippy::indexing_slicing,
        reason = "an Order is at most MAX_ORDER (its invariant) and the array has MAX_ORDER + 1 entries"
    )]
    fn index_mut(&mut self, order: Order) -> &mut T {
        &mut self.0[usize::from(order.get())]
    }
}

/// Who a frame is allocated to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// The hypervisor itself.
    Hypervisor,
    /// A domain (counted in its `tot_pages` by [`crate::domain`]).
    Domain(DomId),
}

/// Why a heap operation was refused. These are the caller's mistakes (or a corrupt
/// caller): the heap is unchanged when it returns one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HeapError {
    /// The span is larger than 2^32 frames or its metadata could not be allocated.
    SpanTooLarge,
    /// A frame lies outside the heap's span.
    OutOfSpan,
    /// A range given as RAM overlaps RAM already added.
    AlreadyRam,
    /// A block is not aligned to its order.
    Unaligned,
    /// A frame is not in the state the operation needs (e.g. freeing a frame that
    /// the stated owner does not own).
    WrongState,
}

/// How [`FrameHeap::locate_free_block`] finds the free block containing a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FreeBlockSearch {
    /// Try the frame's aligned block at each order: O([`MAX_ORDER`]).
    WalkAlignments,
    /// Scan every free list, as Xen's `reserve_heap_page` does: O(free blocks). Kept
    /// as the benchmark's baseline and as a cross-check in the tests.
    ScanFreeLists,
}

/// The frame heap.
///
/// # Invariants
///
/// - `records[i]` describes machine frame `base + i`; `records.len() < 2^32`.
/// - Every free block of order `k` starts at a `k`-aligned frame, has a `FreeHead`
///   record of order `k` at its start and `FreeTail` records for its other frames,
///   and its head is on list `free_heads[k]` exactly once; lists link only heads.
/// - `free_frames` is the number of frames with a free record; `free_blocks[k]` the
///   number of heads of order `k`.
pub struct FrameHeap {
    pub(super) base: Mfn,
    pub(super) records: Vec<FrameRecord>,
    pub(super) free_heads: PerOrder<u32>,
    pub(super) free_blocks: PerOrder<u64>,
    pub(super) free_frames: u64,
    scrub_cursor: usize,
}

impl FrameHeap {
    /// A heap whose span is `span`, with no RAM in it yet. Fails if the span has more
    /// than 2^32 - 1 frames or its metadata (16 bytes per frame) cannot be allocated.
    pub fn new(span: MfnRange) -> Result<FrameHeap, HeapError> {
        let frames = usize::try_from(span.len()).map_err(|_| HeapError::SpanTooLarge)?;
        if span.len() >= u64::from(NO_LINK) {
            return Err(HeapError::SpanTooLarge);
        }
        let mut records = Vec::new();
        records
            .try_reserve_exact(frames)
            .map_err(|_| HeapError::SpanTooLarge)?;
        records.resize(frames, FrameRecord::NotRam);
        // INVARIANT: no free frames, empty lists.
        Ok(FrameHeap {
            base: span.start,
            records,
            free_heads: PerOrder([NO_LINK; ORDERS]),
            free_blocks: PerOrder([0; ORDERS]),
            free_frames: 0,
            scrub_cursor: 0,
        })
    }

    /// The frames this heap can describe.
    pub fn span(&self) -> MfnRange {
        MfnRange::new(self.base, self.base.plus(self.records.len() as u64))
    }

    /// Adds boot RAM that the hypervisor already uses (its image, its metadata, the
    /// boot modules): it is RAM the heap reports, but never free.
    pub fn add_hypervisor_ram(&mut self, range: MfnRange) -> Result<(), HeapError> {
        let block = self.block_mut(range)?;
        if block.iter().any(|r| *r != FrameRecord::NotRam) {
            return Err(HeapError::AlreadyRam);
        }
        block.fill(owned_record(Owner::Hypervisor));
        Ok(())
    }

    /// Adds boot RAM as free frames. Its contents are unknown, so it is dirty.
    pub fn add_free_ram(&mut self, range: MfnRange) -> Result<(), HeapError> {
        let block = self.block_mut(range)?;
        if block.iter().any(|r| *r != FrameRecord::NotRam) {
            return Err(HeapError::AlreadyRam);
        }
        // All tails first, then each frame onto the lists in ascending order: a frame
        // merges only with buddies below it, which are already heads, as if each had
        // been added alone.
        block.fill(FrameRecord::FreeTail { dirty: true });
        for mfn in (range.start.0..range.end.0).map(Mfn) {
            self.free_frames += 1;
            self.insert_free(mfn, Order::ORDER_4K);
        }
        Ok(())
    }

    /// The state of `mfn`, or `None` outside the span.
    pub fn state(&self, mfn: Mfn) -> Option<FrameState> {
        self.record(mfn).map(FrameRecord::view)
    }

    /// Number of free frames.
    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Bytes of memory the heap's own bookkeeping takes (its records and lists).
    pub fn metadata_bytes(&self) -> usize {
        self.records.capacity() * core::mem::size_of::<FrameRecord>()
            + core::mem::size_of::<FrameHeap>()
    }

    /// Allocates a block of `order` to `owner`, zeroing its dirty frames through
    /// `frames` first. `None` if no free block is large enough.
    pub fn alloc(&mut self, order: Order, owner: Owner, frames: &mut dyn FrameOps) -> Option<Mfn> {
        self.take(order, owner, Some(frames))
    }

    /// Allocates a block of `order` to `owner` without zeroing it, for a caller
    /// that overwrites every frame of it before anyone can read one (the copies of
    /// a superpage merge): zeroing first would double the work of the guest's pause.
    pub fn alloc_to_overwrite(&mut self, order: Order, owner: Owner) -> Option<Mfn> {
        self.take(order, owner, None)
    }

    fn take(
        &mut self,
        order: Order,
        owner: Owner,
        mut frames: Option<&mut dyn FrameOps>,
    ) -> Option<Mfn> {
        let found = Order::all()
            .skip(usize::from(order.get()))
            .find(|&k| self.free_heads[k] != NO_LINK)?;
        let head = self.free_heads[found] as usize;
        let start = self.mfn_at(head);
        self.unlink(head);
        let mut split = found;
        while split > order {
            let Some(half) = split.smaller() else { break };
            self.push_head(start.plus(half.frames()), half);
            split = half;
        }
        let block = self.records.iter_mut().skip(head);
        let mfns = (0..order.frames()).map(|n| start.plus(n));
        for (mfn, record) in mfns.zip(block) {
            if let Some(frames) = frames.as_deref_mut().filter(|_| record.is_dirty()) {
                frames.zero(mfn);
            }
            *record = owned_record(owner);
        }
        self.free_frames -= order.frames();
        Some(start)
    }

    /// Gives back a block of `order` at `start` that `owner` holds. Frames waiting to
    /// go offline become offline instead of free.
    pub fn free(&mut self, start: Mfn, order: Order, owner: Owner) -> Result<(), HeapError> {
        if !start.is_aligned(order) {
            return Err(HeapError::Unaligned);
        }
        let end = start
            .checked_add(order.frames())
            .ok_or(HeapError::OutOfSpan)?;
        let range = MfnRange::new(start, end);
        let block = self.block_mut(range)?;
        if !block.iter().all(|r| held_by(r, owner)) {
            return Err(HeapError::WrongState);
        }
        let any_pending = block.iter().any(|r| {
            matches!(
                r,
                FrameRecord::Domain { offline, .. } if *offline != OfflineRequest::None
            )
        });
        if !any_pending {
            block.fill(FrameRecord::FreeTail { dirty: true });
            self.free_frames += order.frames();
            self.insert_free(start, order);
            return Ok(());
        }
        for record in block.iter_mut() {
            *record = match record {
                FrameRecord::Domain {
                    offline: OfflineRequest::Pending,
                    ..
                } => FrameRecord::Offlined,
                FrameRecord::Domain {
                    offline: OfflineRequest::PendingBroken,
                    ..
                } => FrameRecord::Broken,
                _ => FrameRecord::FreeTail { dirty: true },
            };
        }
        // The freed frames go onto the lists one by one in ascending order (see
        // add_free_ram), around the ones that went offline.
        for mfn in (range.start.0..range.end.0).map(Mfn) {
            if self.record(mfn).is_some_and(FrameRecord::is_free) {
                self.free_frames += 1;
                self.insert_free(mfn, Order::ORDER_4K);
            }
        }
        Ok(())
    }

    /// Records where the owner of `mfn` maps it (or that it is unmapped). `owner` must
    /// be the frame's owning domain, or the domain a hypervisor frame is lent to.
    pub fn set_gfn(&mut self, mfn: Mfn, owner: DomId, gfn: Option<Gfn>) -> Result<(), HeapError> {
        match self.record_mut(mfn).ok_or(HeapError::OutOfSpan)? {
            FrameRecord::Domain {
                owner: holder,
                gfn: slot,
                ..
            }
            | FrameRecord::Hypervisor {
                lent_to: Some(holder),
                gfn: slot,
            } if *holder == owner => {
                *slot = PackedGfn::new(gfn);
                Ok(())
            }
            _ => Err(HeapError::WrongState),
        }
    }

    /// Lets `domain` map the hypervisor frame `mfn` (or takes that right back with
    /// `None`, which requires that the frame is not mapped).
    pub fn lend(&mut self, mfn: Mfn, domain: Option<DomId>) -> Result<(), HeapError> {
        match self.record_mut(mfn).ok_or(HeapError::OutOfSpan)? {
            FrameRecord::Hypervisor { lent_to, gfn } if *gfn == PackedGfn::NONE => {
                *lent_to = domain;
                Ok(())
            }
            _ => Err(HeapError::WrongState),
        }
    }

    /// Zeroes up to `budget` dirty free frames, continuing where the last call
    /// stopped; returns how many it zeroed. For the platform's idle loop.
    pub fn scrub_free(&mut self, budget: u64, frames: &mut dyn FrameOps) -> u64 {
        let mut scrubbed = 0;
        let total = self.records.len();
        let mut visited = 0;
        while scrubbed < budget && visited < total {
            let i = self.scrub_cursor;
            self.scrub_cursor = (i + 1) % total;
            visited += 1;
            match self.records.get_mut(i) {
                Some(FrameRecord::FreeHead { dirty, .. } | FrameRecord::FreeTail { dirty })
                    if *dirty =>
                {
                    *dirty = false;
                    frames.zero(self.base.plus(i as u64));
                    scrubbed += 1;
                }
                _ => {}
            }
        }
        scrubbed
    }

    /// The free block (start, order) containing `mfn`, if `mfn` is free.
    pub fn locate_free_block(&self, mfn: Mfn, search: FreeBlockSearch) -> Option<(Mfn, Order)> {
        if !self.record(mfn)?.is_free() {
            return None;
        }
        match search {
            FreeBlockSearch::WalkAlignments => Order::all().find_map(|order| {
                let start = mfn.align_down(order);
                match *self.record(start)? {
                    FrameRecord::FreeHead { order: k, .. } if start.0 + k.frames() > mfn.0 => {
                        Some((start, k))
                    }
                    _ => None,
                }
            }),
            FreeBlockSearch::ScanFreeLists => Order::all().find_map(|order| {
                let mut link = self.free_heads[order];
                while link != NO_LINK {
                    let start = self.mfn_at(link as usize);
                    if start <= mfn && mfn.0 < start.0 + order.frames() {
                        return Some((start, order));
                    }
                    link = match self.records.get(link as usize) {
                        Some(FrameRecord::FreeHead { next, .. }) => *next,
                        _ => NO_LINK,
                    };
                }
                None
            }),
        }
    }

    /// Takes the free frame `mfn` out of its free block, returning the rest of the
    /// block to the lists as the largest aligned pieces, and gives it `replacement`
    /// as its record. The caller has checked that `mfn` is free.
    pub(super) fn carve_free_frame(&mut self, mfn: Mfn, replacement: FrameRecord) -> Option<()> {
        let (mut start, mut order) =
            self.locate_free_block(mfn, FreeBlockSearch::WalkAlignments)?;
        let head = self.index(start)?;
        self.unlink(head);
        while let Some(half) = order.smaller() {
            let upper = start.plus(half.frames());
            if mfn >= upper {
                self.push_head(start, half);
                start = upper;
            } else {
                self.push_head(upper, half);
            }
            order = half;
        }
        *self.record_mut(mfn)? = replacement;
        self.free_frames -= 1;
        Some(())
    }

    /// Returns one offlined frame to the free lists (dirty: its contents are unknown).
    pub(super) fn return_to_free(&mut self, mfn: Mfn) -> Option<()> {
        *self.record_mut(mfn)? = FrameRecord::FreeTail { dirty: true };
        self.free_frames += 1;
        self.insert_free(mfn, Order::ORDER_4K);
        Some(())
    }

    pub(super) fn index(&self, mfn: Mfn) -> Option<usize> {
        let offset = mfn.0.checked_sub(self.base.0)?;
        let i = usize::try_from(offset).ok()?;
        (i < self.records.len()).then_some(i)
    }

    /// The record of `mfn`, or `None` outside the span.
    pub(super) fn record(&self, mfn: Mfn) -> Option<&FrameRecord> {
        self.records.get(self.index(mfn)?)
    }

    pub(super) fn record_mut(&mut self, mfn: Mfn) -> Option<&mut FrameRecord> {
        let i = self.index(mfn)?;
        self.records.get_mut(i)
    }

    /// Gives `mfn` the record `record`; outside the span (which callers have ruled
    /// out by reading its record first) it changes nothing.
    pub(super) fn set_record(&mut self, mfn: Mfn, record: FrameRecord) {
        if let Some(slot) = self.record_mut(mfn) {
            *slot = record;
        }
    }

    pub(super) fn mfn_at(&self, index: usize) -> Mfn {
        self.base.plus(index as u64)
    }

    /// The records of `range`, which must lie inside the span.
    fn block_mut(&mut self, range: MfnRange) -> Result<&mut [FrameRecord], HeapError> {
        if range.is_empty() {
            return Ok(&mut []);
        }
        let first = self.index(range.start).ok_or(HeapError::OutOfSpan)?;
        let last = self
            .index(Mfn(range.end.0 - 1))
            .ok_or(HeapError::OutOfSpan)?;
        self.records
            .get_mut(first..=last)
            .ok_or(HeapError::OutOfSpan)
    }

    /// Puts the block at `start` (whose records are all `FreeTail`) on the free
    /// lists, first merging it with its buddies as far as they are free blocks of the
    /// same order.
    fn insert_free(&mut self, start: Mfn, order: Order) {
        let (mut start, mut order) = (start, order);
        while let Some(larger) = order.larger() {
            let buddy = Mfn(start.0 ^ order.frames());
            let Some(b) = self.index(buddy) else { break };
            match self.records.get(b) {
                Some(FrameRecord::FreeHead { order: k, .. }) if *k == order => {
                    self.unlink(b);
                    start = start.min(buddy);
                    order = larger;
                }
                _ => break,
            }
        }
        self.push_head(start, order);
    }

    /// Makes the frame at `start` the head of a free block of `order` on its list.
    fn push_head(&mut self, start: Mfn, order: Order) {
        let Some(i) = self.index(start) else { return };
        let next = self.free_heads[order];
        let Some(record) = self.records.get_mut(i) else {
            return;
        };
        *record = FrameRecord::FreeHead {
            order,
            dirty: record.is_dirty(),
            prev: NO_LINK,
            next,
        };
        if let Some(FrameRecord::FreeHead { prev, .. }) = self.records.get_mut(next as usize) {
            *prev = i as u32;
        }
        self.free_heads[order] = i as u32;
        self.free_blocks[order] += 1;
    }

    /// Takes the head at index `i` off its list; its record becomes a tail.
    fn unlink(&mut self, i: usize) {
        let Some(&FrameRecord::FreeHead {
            order,
            dirty,
            prev,
            next,
        }) = self.records.get(i)
        else {
            return;
        };
        if prev == NO_LINK {
            self.free_heads[order] = next;
        } else if let Some(FrameRecord::FreeHead { next: n, .. }) =
            self.records.get_mut(prev as usize)
        {
            *n = next;
        }
        if let Some(FrameRecord::FreeHead { prev: p, .. }) = self.records.get_mut(next as usize) {
            *p = prev;
        }
        if let Some(record) = self.records.get_mut(i) {
            *record = FrameRecord::FreeTail { dirty };
        }
        self.free_blocks[order] -= 1;
    }
}

fn owned_record(owner: Owner) -> FrameRecord {
    match owner {
        Owner::Hypervisor => FrameRecord::Hypervisor {
            lent_to: None,
            gfn: PackedGfn::NONE,
        },
        Owner::Domain(owner) => FrameRecord::Domain {
            owner,
            gfn: PackedGfn::NONE,
            offline: OfflineRequest::None,
        },
    }
}

/// Whether `record` is a frame `owner` may free: its own, not mapped anywhere.
fn held_by(record: &FrameRecord, owner: Owner) -> bool {
    match (*record, owner) {
        (
            FrameRecord::Hypervisor {
                lent_to: None,
                gfn: PackedGfn::NONE,
            },
            Owner::Hypervisor,
        ) => true,
        (FrameRecord::Domain { owner: holder, .. }, Owner::Domain(d)) => holder == d,
        _ => false,
    }
}
