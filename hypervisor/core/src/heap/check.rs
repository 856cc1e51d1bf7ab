//! Counting and checking the heap: what it owns, and whether its free lists agree
//! with its frame records. The checker is O(frames); tests and the fuzzer run it after
//! every step, the platform may run it in debug builds.

use alloc::vec;

use super::allocator::FrameHeap;
use super::frame::{FrameRecord, FrameState, NO_LINK};
use crate::addr::{Mfn, MfnRange, Order};

/// How many frames of the heap are in each state.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct HeapCensus {
    /// Frames of RAM (every state but not-RAM).
    pub ram: u64,
    /// Free frames.
    pub free: u64,
    /// Free frames still to be scrubbed.
    pub free_dirty: u64,
    /// Frames the hypervisor uses.
    pub hypervisor: u64,
    /// Frames domains own (including offline-pending ones).
    pub domain: u64,
    /// Owned frames waiting to go offline.
    pub offline_pending: u64,
    /// Offlined frames.
    pub offlined: u64,
    /// Broken frames.
    pub broken: u64,
}

impl FrameHeap {
    /// Counts the frames in each state.
    pub fn census(&self) -> HeapCensus {
        let mut census = HeapCensus::default();
        for record in &self.records {
            if *record != FrameRecord::NotRam {
                census.ram += 1;
            }
            match record.view() {
                FrameState::NotRam => {}
                FrameState::Free { needs_scrub } => {
                    census.free += 1;
                    census.free_dirty += u64::from(needs_scrub);
                }
                FrameState::Hypervisor { .. } => census.hypervisor += 1,
                FrameState::Domain { .. } => census.domain += 1,
                FrameState::OfflinePending { .. } => {
                    census.domain += 1;
                    census.offline_pending += 1;
                }
                FrameState::Offlined => census.offlined += 1,
                FrameState::Broken => census.broken += 1,
            }
        }
        census
    }

    /// Every frame with its state, in frame order.
    pub fn frames(&self) -> impl Iterator<Item = (Mfn, FrameState)> + '_ {
        self.records
            .iter()
            .enumerate()
            .map(|(i, record)| (self.mfn_at(i), record.view()))
    }

    /// The runs of RAM in the span (what the heap owns, in any state).
    pub fn ram_ranges(&self) -> impl Iterator<Item = MfnRange> + '_ {
        let mut i = 0;
        core::iter::from_fn(move || {
            while self.records.get(i) == Some(&FrameRecord::NotRam) {
                i += 1;
            }
            let start = i;
            while self
                .records
                .get(i)
                .is_some_and(|r| *r != FrameRecord::NotRam)
            {
                i += 1;
            }
            (i > start).then(|| MfnRange::new(self.mfn_at(start), self.mfn_at(i)))
        })
    }

    /// Checks that the free lists hold exactly the free frames: each listed block is
    /// aligned, starts with a head of its list's order, consists of free frames, and
    /// no free frame is outside a listed block or in two.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut in_block = vec![false; self.records.len()];
        let mut listed_frames = 0u64;
        for order in Order::all() {
            let mut link = self.free_heads[order];
            let mut prev_link = NO_LINK;
            let mut heads = 0u64;
            while link != NO_LINK {
                let head = link as usize;
                let FrameRecord::FreeHead {
                    order: recorded,
                    prev,
                    next,
                    ..
                } = *self.records.get(head).ok_or("free list link out of span")?
                else {
                    return Err("free list links a frame that is not a free head");
                };
                if recorded != order {
                    return Err("free head on the list of another order");
                }
                if prev != prev_link {
                    return Err("free list back link broken");
                }
                if !self.mfn_at(head).is_aligned(order) {
                    return Err("free block not aligned to its order");
                }
                let end = head + order.frames() as usize;
                if end > self.records.len() {
                    return Err("free block runs past the span");
                }
                let block = in_block.iter_mut().zip(&self.records).enumerate();
                for (i, (seen, record)) in block.take(end).skip(head) {
                    if *seen {
                        return Err("free blocks overlap (or a list loops)");
                    }
                    *seen = true;
                    let tail_ok = matches!(record, FrameRecord::FreeTail { .. });
                    if i != head && !tail_ok {
                        return Err("free block holds a frame that is not a free tail");
                    }
                }
                heads += 1;
                listed_frames += order.frames();
                prev_link = link;
                link = next;
            }
            if heads != self.free_blocks[order] {
                return Err("free block count does not match the list");
            }
        }
        if listed_frames != self.free_frames {
            return Err("free frame count does not match the lists");
        }
        let stray = self
            .records
            .iter()
            .zip(&in_block)
            .any(|(record, seen)| record.is_free() != *seen);
        if stray {
            return Err("a free frame is outside every listed block");
        }
        Ok(())
    }
}
