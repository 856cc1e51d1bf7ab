//! Growing and shrinking a domain by extents: the work behind populate_physmap,
//! decrease_reservation and increase_reservation.
//!
//! Each extent is all or nothing: it is checked completely before anything changes,
//! so a failing extent leaves the domain as it was (Xen may leave a decrease extent
//! half done; Linux never depends on that).

use alloc::vec::Vec;

use super::{inconsistent_heap, inconsistent_p2m, Hypervisor};
use crate::addr::{DomId, Gfn, GfnRange, Order};
use crate::error::{Errno, Error};
use crate::heap::Owner;
use crate::p2m::{EntryType, Mapping};
use crate::platform::FrameOps;

impl Hypervisor {
    /// Backs the `order` block at `gfn` with a new, zeroed block of machine frames
    /// mapped read-write. Fails with `EINVAL` (unaligned or beyond the p2m limit),
    /// `EEXIST` (part of it is mapped), `ENOMEM` (over `max_pages` or no free block).
    pub fn populate(
        &mut self,
        id: DomId,
        gfn: Gfn,
        order: Order,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let block = GfnRange::block(gfn, order).ok_or(Errno::EINVAL)?;
        if !gfn.is_aligned(order) || !self.gfn_in_limit(block) {
            return Err(Errno::EINVAL.into());
        }
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        if !dom.p2m.is_unmapped(block) {
            return Err(Errno::EEXIST.into());
        }
        if dom.tot_pages + order.frames() > dom.max_pages {
            return Err(Errno::ENOMEM.into());
        }
        let need = dom.p2m.tables_to_reach(gfn, order);
        self.charged(id, need, |hv| {
            hv.populate_unmapped(id, block, order, frames)
        })
    }

    /// `populate` of a checked, unmapped block, within the domain's limits.
    fn populate_unmapped(
        &mut self,
        id: DomId,
        block: GfnRange,
        order: Order,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let gfn = block.start;
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        let mfn = self
            .heap
            .alloc(order, Owner::Domain(id), frames)
            .ok_or(Errno::ENOMEM)?;
        for i in 0..order.frames() {
            self.heap
                .set_gfn(mfn.plus(i), id, Some(gfn.plus(i)))
                .map_err(inconsistent_heap)?;
        }
        dom.p2m
            .map(gfn, mfn, order, EntryType::RamRw)
            .map_err(inconsistent_p2m)?;
        dom.tot_pages += order.frames();
        // A frame that appears during log-dirty is new content to the reader of the log.
        if let Some(log) = dom.log_dirty.as_mut() {
            log.mark_range(block);
        }
        Ok(())
    }

    /// Gives back the guest frames of the `order` block at `gfn`: unmapped and their
    /// machine frames freed (or offlined, if an offline was pending). Every frame of
    /// the block must be the domain's RAM, else `EINVAL` and nothing changes.
    pub fn decrease(&mut self, id: DomId, gfn: Gfn, order: Order) -> Result<(), Error> {
        let block = GfnRange::block(gfn, order).ok_or(Errno::EINVAL)?;
        if !self.gfn_in_limit(block) {
            return Err(Errno::EINVAL.into());
        }
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        if ram_frames_in(&dom.p2m, block) != order.frames() {
            return Err(Errno::EINVAL.into());
        }
        // Giving back part of a superpage splits it: that costs tables too.
        let need = dom.p2m.tables_to_reach(gfn, order);
        self.charged(id, need, |hv| hv.decrease_mapped(id, block, order))
    }

    /// `decrease` of a checked block that is all the domain's RAM.
    fn decrease_mapped(&mut self, id: DomId, block: GfnRange, order: Order) -> Result<(), Error> {
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        let mut removed: Vec<Mapping> = Vec::new();
        dom.p2m
            .unmap(block, &mut |m| removed.push(m))
            .map_err(inconsistent_p2m)?;
        for m in removed {
            self.heap
                .free(m.mfn, m.size.order(), Owner::Domain(id))
                .map_err(inconsistent_heap)?;
        }
        dom.tot_pages -= order.frames();
        Ok(())
    }

    /// Allocates an `order` block to the domain without mapping it: Xen's
    /// `increase_reservation` for a translated guest. The frames count in `tot_pages`
    /// and stay unmapped until the domain is destroyed.
    pub fn increase(
        &mut self,
        id: DomId,
        order: Order,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        if dom.tot_pages + order.frames() > dom.max_pages {
            return Err(Errno::ENOMEM.into());
        }
        self.heap
            .alloc(order, Owner::Domain(id), frames)
            .ok_or(Errno::ENOMEM)?;
        dom.tot_pages += order.frames();
        Ok(())
    }
}

/// Frames of `range` that the p2m maps as the domain's RAM.
pub(super) fn ram_frames_in(p2m: &crate::p2m::P2m, range: GfnRange) -> u64 {
    let mut frames = 0;
    p2m.for_each_mapping(range, &mut |m| {
        if m.kind.is_ram() {
            let start = m.gfn.0.max(range.start.0);
            let end = (m.gfn.0 + m.size.frames()).min(range.end.0);
            frames += end - start;
        }
    });
    frames
}
