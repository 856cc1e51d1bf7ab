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
        for out in outputs {
            let mut outside_inputs = false;
            dom.p2m.for_each_mapping(*out, &mut |m| {
                let piece = GfnRange::new(
                    m.gfn.max(out.start),
                    m.gfn.plus(m.size.frames()).min(out.end),
                );
                outside_inputs |= !inputs
                    .iter()
                    .any(|r| r.start <= piece.start && piece.end <= r.end);
            });
            if outside_inputs {
                return Err(Errno::EINVAL.into());
            }
        }

        let mut fresh: Vec<Mfn> = Vec::with_capacity(outputs.len());
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
fn extents(starts: &[Gfn], order: Order) -> Result<Vec<GfnRange>, Errno> {
    let mut ranges = Vec::with_capacity(starts.len());
    for &gfn in starts {
        if !gfn.is_aligned(order) {
            return Err(Errno::EINVAL);
        }
        ranges.push(GfnRange::block(gfn, order).ok_or(Errno::EINVAL)?);
    }
    let mut sorted = ranges.clone();
    sorted.sort_unstable_by_key(|r| r.start);
    if sorted.windows(2).any(|w| w[0].overlaps(&w[1])) {
        return Err(Errno::EINVAL);
    }
    Ok(ranges)
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
        if ram_frames_in(&dom.p2m, range) != range.len() {
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
