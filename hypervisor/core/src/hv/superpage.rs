//! Superpages come back: a 2 MiB region of a guest that a page offline or an
//! exchange split into 4 KiB leaves is mapped by one 2 MiB leaf again, which Xen
//! never does (its p2m stays split until the guest is migrated).
//!
//! The p2m merges a region by itself when its 512 frames become contiguous and
//! aligned (`P2m::map`), so a region still split after an offline or exchange
//! holds scattered frames. [`Hypervisor::remerge_2m`] makes it contiguous: it takes
//! a free order-9 block, copies the 512 frames into it through the platform's
//! [`FrameOps`], maps it with one leaf and frees the old frames (a frame waiting to
//! go offline goes offline then, as a freed pending frame always does).
//!
//! The operations that split a region on the guest's behalf without its asking
//! (control-plane offline and exchange, and the guest's own `XENMEM_exchange` into
//! 4 KiB extents) record it in the domain's set of split regions;
//! [`Hypervisor::remerge_split`] merges from that set within a budget of frames
//! copied, so that the platform can run it after such a request and at later exits
//! without any exit doing more than the per-exit bound of work. A region that cannot
//! be merged (a hole, a frame that is not the domain's plain RAM, mixed entry types,
//! a frame reported broken, no free order-9 block) leaves the set and stays split: merging is an
//! optimisation and never fails the operation that split the region.
//!
//! A merge never costs the domain's memory pool anything: it replaces a 4 KiB
//! table (and its nested page table page) by a leaf, so the pool has nothing to
//! refuse.

use alloc::vec::Vec;

use super::{inconsistent_heap, inconsistent_p2m, Hypervisor};
use crate::addr::{DomId, Gfn, GfnRange, Mfn, Order};
use crate::error::{Errno, Error};
use crate::heap::{FrameState, Owner};
use crate::p2m::{EntryType, PageSize};
use crate::platform::FrameOps;

/// Split regions a domain remembers at most; past that, newly split regions stay
/// split. Each one recorded holds a 4 KiB table the domain's pool already pays
/// for, so the set is small next to what it stands for.
pub const MAX_SPLIT_REGIONS: usize = 4096;

/// What [`Hypervisor::remerge_2m`] did with a region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Remerge {
    /// The region's frames were copied into the 2 MiB block at this frame, now
    /// mapped by one leaf.
    Merged(Mfn),
    /// One leaf (2 MiB or 1 GiB) maps the region already.
    Whole,
    /// The region has a hole, a frame that is not the domain's RAM, entries of
    /// different types or a frame reported broken: it stays split.
    Ineligible,
    /// No free order-9 block to copy into: it stays split.
    NoBlock,
}

/// What one [`Hypervisor::remerge_split`] pass did.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RemergePass {
    /// Regions now mapped by one 2 MiB leaf.
    pub merged: u64,
    /// Regions looked at (merged or dropped from the set).
    pub visited: u64,
}

impl Hypervisor {
    /// Maps the 2 MiB region containing `gfn` by one leaf, copying its 512 frames
    /// into a fresh 2 MiB block. `EINVAL` outside the p2m's limit, `ESRCH` for an
    /// unknown domain; every other reason not to merge is an [`Remerge`] outcome,
    /// and the domain is unchanged then.
    pub fn remerge_2m(
        &mut self,
        id: DomId,
        gfn: Gfn,
        frames: &mut dyn FrameOps,
    ) -> Result<Remerge, Error> {
        let base = gfn.align_down(Order::ORDER_2M);
        let region = GfnRange::block(base, Order::ORDER_2M).ok_or(Errno::EINVAL)?;
        if !self.gfn_in_limit(region) {
            return Err(Errno::EINVAL.into());
        }
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        if dom
            .p2m
            .lookup(base)
            .is_some_and(|m| m.size >= PageSize::Size2M)
        {
            return Ok(Remerge::Whole);
        }
        let Some((old, kind)) = plain_frames(dom, region) else {
            return Ok(Remerge::Ineligible);
        };
        // A broken frame's contents are not to be trusted, and never copied on.
        if old.iter().any(|&mfn| {
            matches!(
                self.heap.state(mfn),
                Some(FrameState::OfflinePending { broken: true, .. })
            )
        }) {
            return Ok(Remerge::Ineligible);
        }
        // Not zeroed: every frame is overwritten by its copy right below.
        let Some(new) = self
            .heap
            .alloc_to_overwrite(Order::ORDER_2M, Owner::Domain(id))
        else {
            return Ok(Remerge::NoBlock);
        };
        // The guest is out of guest mode (the platform's promise for every core
        // call) and its nested tables are synced before it runs again, so no write
        // can land in an old frame after its copy.
        for (i, &from) in old.iter().enumerate() {
            frames.copy(from, new.plus(i as u64));
        }
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        dom.p2m
            .unmap(region, &mut |_| {})
            .map_err(inconsistent_p2m)?;
        for i in 0..region.len() {
            heap.set_gfn(new.plus(i), id, Some(base.plus(i)))
                .map_err(inconsistent_heap)?;
        }
        dom.p2m
            .map(base, new, Order::ORDER_2M, kind)
            .map_err(inconsistent_p2m)?;
        for from in old {
            heap.free(from, Order::ORDER_4K, Owner::Domain(id))
                .map_err(inconsistent_heap)?;
        }
        dom.remerged_2m += 1;
        Ok(Remerge::Merged(new))
    }

    /// Merges regions from the domain's set of split regions, in guest order, while
    /// the frames it may copy (`budget`, 512 per region looked at) last. Regions
    /// left for a later pass stay in the set.
    pub fn remerge_split(
        &mut self,
        id: DomId,
        budget: u64,
        frames: &mut dyn FrameOps,
    ) -> Result<RemergePass, Error> {
        let mut pass = RemergePass::default();
        let mut left = budget;
        while left >= Order::ORDER_2M.frames() {
            let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
            let Some(base) = dom.split_2m.pop_first() else {
                break;
            };
            left -= Order::ORDER_2M.frames();
            pass.visited += 1;
            match self.remerge_2m(id, base, frames) {
                Ok(Remerge::Merged(_)) => pass.merged += 1,
                Ok(_) | Err(Error::Request(_)) => {}
                Err(fatal) => return Err(fatal),
            }
        }
        Ok(pass)
    }

    /// Whether the domain has split regions waiting for [`Hypervisor::remerge_split`].
    pub fn has_split_regions(&self, id: DomId) -> bool {
        self.domains
            .get(&id)
            .is_some_and(|d| !d.split_2m.is_empty())
    }

    /// Records that the 2 MiB region around `gfn` was split on the guest's behalf.
    pub(super) fn note_split(&mut self, id: DomId, gfn: Gfn) {
        if let Some(dom) = self.domains.get_mut(&id) {
            if dom.split_2m.len() < MAX_SPLIT_REGIONS {
                dom.split_2m.insert(gfn.align_down(Order::ORDER_2M));
            }
        }
    }
}

/// The machine frames behind the 512 guest frames of `region`, in guest order, and
/// their one entry type, if every frame is the domain's RAM mapped by a 4 KiB leaf
/// of the same type. Leaves of RAM map only frames the domain owns, recorded at
/// that gfn (`check_invariants`), so the heap agrees without asking it.
fn plain_frames(dom: &crate::domain::Domain, region: GfnRange) -> Option<(Vec<Mfn>, EntryType)> {
    let mut old = Vec::with_capacity(region.len() as usize);
    let mut kind: Option<EntryType> = None;
    let mut plain = true;
    dom.p2m.for_each_mapping(region, &mut |m| {
        plain &= m.size == PageSize::Size4K
            && m.kind.is_ram()
            && kind.is_none_or(|k| k == m.kind)
            && m.gfn == region.start.plus(old.len() as u64);
        kind = Some(m.kind);
        old.push(m.mfn);
    });
    (plain && old.len() as u64 == region.len()).then_some((old, kind?))
}
