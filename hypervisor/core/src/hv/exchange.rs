//! Memory exchange for translated guests, which Xen refuses (`-EOPNOTSUPP`).
//!
//! Our semantics: in one chunk the guest gives up the guest frames named by its
//! input extents and receives new machine frames mapped at the guest frames named by
//! its output extents (which may be the same guest frames). A chunk is the smallest
//! unit where both sides have the same size: one extent of the larger order against
//! `2^(difference)` extents of the smaller. Each chunk is atomic: it is checked
//! completely and its output frames are allocated before any input is released, so a
//! failure leaves the chunk as it was. Use: getting a 2 MiB-contiguous machine block
//! behind guest frames that were backed by scattered 4 KiB frames.
//!
//! Checks, per chunk: every extent aligned to its order and inside the p2m limit;
//! input extents pairwise disjoint and entirely the domain's RAM; output extents
//! pairwise disjoint and, where mapped, inside the input extents.

use alloc::vec::Vec;

use super::reservation::ram_frames_in;
use super::{inconsistent_heap, inconsistent_p2m, Hypervisor};
use crate::addr::{DomId, Gfn, GfnRange, Mfn, Order};
use crate::error::{Errno, Error, Fatal};
use crate::heap::Owner;
use crate::p2m::{EntryType, Mapping, TableCount};
use crate::platform::FrameOps;

impl Hypervisor {
    /// Exchanges one chunk: the `input` extents (of `in_order`) for new frames at
    /// the `output` extents (of `out_order`). Both sides must cover the same number
    /// of frames.
    pub fn exchange_chunk(
        &mut self,
        id: DomId,
        input: &[Gfn],
        in_order: Order,
        output: &[Gfn],
        out_order: Order,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let inputs = extents(input, in_order)?;
        let outputs = extents(output, out_order)?;
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        let mut need = TableCount::default();
        for (range, order) in inputs
            .iter()
            .map(|r| (r, in_order))
            .chain(outputs.iter().map(|r| (r, out_order)))
        {
            need = need.plus(dom.p2m.tables_to_reach(range.start, order));
        }
        self.charged(id, need, |hv| {
            hv.exchange_extents(id, &inputs, &outputs, out_order, frames)
        })
    }

    fn exchange_extents(
        &mut self,
        id: DomId,
        inputs: &[GfnRange],
        outputs: &[GfnRange],
        out_order: Order,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let total: u64 = inputs.iter().map(GfnRange::len).sum();
        if total != outputs.iter().map(GfnRange::len).sum::<u64>() {
            return Err(Errno::EINVAL.into());
        }
        if !inputs.iter().chain(outputs).all(|r| self.gfn_in_limit(*r)) {
            return Err(Errno::EINVAL.into());
        }
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        if inputs
            .iter()
            .any(|r| ram_frames_in(&dom.p2m, *r) != r.len())
        {
            return Err(Errno::EINVAL.into());
        }
        // Sorted once, so that finding the input that holds a mapped piece is a
        // binary search: a linear scan made a 4 KiB -> 2 MiB chunk cost 512
        // mappings times 512 inputs (issue 13).
        let sorted = sorted_copy(inputs)?;
        for out in outputs {
            let mut outside_inputs = false;
            dom.p2m.for_each_mapping(*out, &mut |m| {
                let piece = GfnRange::new(
                    m.gfn.max(out.start),
                    m.gfn.plus(m.size.frames()).min(out.end),
                );
                outside_inputs |= !covered(&sorted, piece);
            });
            if outside_inputs {
                return Err(Errno::EINVAL.into());
            }
        }

        let mut fresh: Vec<Mfn> = Vec::new();
        fresh
            .try_reserve_exact(outputs.len())
            .map_err(|_| Errno::ENOMEM)?;
        for _ in outputs {
            match heap.alloc(out_order, Owner::Domain(id), frames) {
                Some(mfn) => fresh.push(mfn),
                None => {
                    for mfn in fresh {
                        heap.free(mfn, out_order, Owner::Domain(id))
                            .map_err(inconsistent_heap)?;
                    }
                    return Err(Errno::ENOMEM.into());
                }
            }
        }

        let mut removed: Vec<Mapping> = Vec::new();
        for range in inputs {
            dom.p2m
                .unmap(*range, &mut |m| removed.push(m))
                .map_err(inconsistent_p2m)?;
        }
        for m in removed {
            heap.free(m.mfn, m.size.order(), Owner::Domain(id))
                .map_err(inconsistent_heap)?;
        }
        for (range, mfn) in outputs.iter().zip(fresh) {
            for i in 0..range.len() {
                heap.set_gfn(mfn.plus(i), id, Some(range.start.plus(i)))
                    .map_err(inconsistent_heap)?;
            }
            dom.p2m
                .map(range.start, mfn, out_order, EntryType::RamRw)
                .map_err(inconsistent_p2m)?;
            if let Some(log) = dom.log_dirty.as_mut() {
                log.mark_range(*range);
            }
        }
        // New 4 KiB frames scattered over a region that was one superpage split it.
        if out_order < Order::ORDER_2M {
            for range in outputs {
                self.note_split(id, range.start);
            }
        }
        Ok(())
    }
}

/// The extents as ranges, checked aligned, non-overflowing and pairwise disjoint.
///
/// The lists are as long as the guest's chunk (up to 2^max_order extents), so they
/// are allocated fallibly: `-ENOMEM`, not an abort, when the allocator is out.
fn extents(starts: &[Gfn], order: Order) -> Result<Vec<GfnRange>, Errno> {
    let mut ranges = Vec::new();
    ranges
        .try_reserve_exact(starts.len())
        .map_err(|_| Errno::ENOMEM)?;
    for &gfn in starts {
        if !gfn.is_aligned(order) {
            return Err(Errno::EINVAL);
        }
        ranges.push(GfnRange::block(gfn, order).ok_or(Errno::EINVAL)?);
    }
    let sorted = sorted_copy(&ranges)?;
    if sorted
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.overlaps(b)))
    {
        return Err(Errno::EINVAL);
    }
    Ok(ranges)
}

/// `ranges` sorted by start, in a fallibly allocated copy.
fn sorted_copy(ranges: &[GfnRange]) -> Result<Vec<GfnRange>, Errno> {
    let mut sorted = Vec::new();
    sorted
        .try_reserve_exact(ranges.len())
        .map_err(|_| Errno::ENOMEM)?;
    sorted.extend_from_slice(ranges);
    sorted.sort_unstable_by_key(|r| r.start);
    Ok(sorted)
}

/// Whether the `sorted` ranges (pairwise disjoint, sorted by start) together hold all
/// of the non-empty `piece`. A mapped piece may span several of them: a 2 MiB leaf over
/// 512 4 KiB input extents whose frames ebbhv merged again. The range holding the
/// piece's start is the last one starting at or before it (any other that did would
/// overlap it); each next one must start where the last ended.
fn covered(sorted: &[GfnRange], piece: GfnRange) -> bool {
    let Some(mut i) = sorted
        .partition_point(|r| r.start <= piece.start)
        .checked_sub(1)
    else {
        return false;
    };
    let mut at = piece.start;
    while let Some(r) = sorted.get(i) {
        if r.start > at || r.end <= at {
            return false;
        }
        if piece.end <= r.end {
            return true;
        }
        at = r.end;
        i += 1;
    }
    false
}

/// One guest frame that [`Hypervisor::exchange_in_place`] moved.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Moved {
    /// The guest frame.
    pub gfn: Gfn,
    /// The machine frame that backed it.
    pub old: Mfn,
    /// The machine frame that backs it now, with the same contents.
    pub new: Mfn,
}

impl Hypervisor {
    /// The control plane's exchange: gives each guest frame of `range` a new machine
    /// frame with the same contents, at the same gfn, while the guest runs (the
    /// platform syncs its nested tables before the guest does). Every frame of the
    /// range must be the domain's RAM, and enough frames must be free for all of
    /// them; otherwise nothing changes.
    pub fn exchange_in_place(
        &mut self,
        id: DomId,
        range: GfnRange,
        frames: &mut dyn FrameOps,
    ) -> Result<Vec<Moved>, Error> {
        if range.is_empty() || !self.gfn_in_limit(range) {
            return Err(Errno::EINVAL.into());
        }
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        if ram_frames_in(&dom.p2m, range) != range.len() || any_broken(&dom.p2m, range) {
            return Err(Errno::EINVAL.into());
        }
        // All copies first, so that no frame of the range is handed back to it.
        let mut fresh = Vec::new();
        for _ in range.numbers() {
            match self.heap.alloc(Order::ORDER_4K, Owner::Domain(id), frames) {
                Some(mfn) => fresh.push(mfn),
                None => {
                    for mfn in fresh {
                        self.heap
                            .free(mfn, Order::ORDER_4K, Owner::Domain(id))
                            .map_err(inconsistent_heap)?;
                    }
                    return Err(Errno::ENOMEM.into());
                }
            }
        }
        let mut moved = Vec::new();
        for (gfn, new) in range.numbers().map(Gfn).zip(fresh) {
            let old = self
                .domains
                .get(&id)
                .and_then(|d| d.p2m.entry(gfn))
                .ok_or(Error::Fatal(Fatal::Inconsistent(
                    "a checked guest frame is no longer mapped",
                )))?
                .mfn;
            self.swap_in_copy(id, Some(gfn), old, new, frames)?;
            moved.push(Moved { gfn, old, new });
        }
        Ok(moved)
    }
}

/// Whether a frame of `range` is broken: its contents are lost, so there is nothing
/// to copy.
fn any_broken(p2m: &crate::p2m::P2m, range: GfnRange) -> bool {
    let mut broken = false;
    p2m.for_each_mapping(range, &mut |m| broken |= m.kind == EntryType::Broken);
    broken
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Frame by frame, for comparison.
    fn covered_by_a_scan(ranges: &[GfnRange], piece: GfnRange) -> bool {
        piece
            .numbers()
            .all(|g| ranges.iter().any(|r| r.start.0 <= g && g < r.end.0))
    }

    proptest! {
        /// Disjoint ranges (built from gaps and lengths, so they cannot overlap) and
        /// any non-empty piece: the binary search answers as the scan does.
        #[test]
        fn covered_agrees_with_a_scan(
            spans in proptest::collection::vec((0u64..4, 1u64..4), 0..12),
            start in 0u64..60,
            len in 1u64..8,
        ) {
            let mut ranges = Vec::new();
            let mut at = 0;
            for (gap, n) in spans {
                ranges.push(GfnRange::new(Gfn(at + gap), Gfn(at + gap + n)));
                at += gap + n;
            }
            let piece = GfnRange::new(Gfn(start), Gfn(start + len));
            prop_assert_eq!(covered(&ranges, piece), covered_by_a_scan(&ranges, piece));
        }
    }

    #[test]
    fn covered_edges() {
        let ranges = [
            GfnRange::new(Gfn(2), Gfn(4)),
            GfnRange::new(Gfn(4), Gfn(6)),
            GfnRange::new(Gfn(7), Gfn(8)),
        ];
        assert!(covered(&ranges, GfnRange::new(Gfn(2), Gfn(4))));
        assert!(covered(&ranges, GfnRange::new(Gfn(5), Gfn(6))));
        // By the two adjacent ones together.
        assert!(covered(&ranges, GfnRange::new(Gfn(3), Gfn(5))));
        assert!(covered(&ranges, GfnRange::new(Gfn(2), Gfn(6))));
        // A hole at 6.
        assert!(!covered(&ranges, GfnRange::new(Gfn(5), Gfn(8))));
        assert!(!covered(&ranges, GfnRange::new(Gfn(1), Gfn(3))));
        assert!(!covered(&ranges, GfnRange::new(Gfn(7), Gfn(9))));
        assert!(!covered(&[], GfnRange::new(Gfn(0), Gfn(1))));
    }
}
