//! Placing single frames in a domain's p2m: add_to_physmap and remove_from_physmap.
//!
//! Whatever is mapped at the target guest frame goes first: the domain's own RAM is
//! freed (Linux PVH maps its shared info over a RAM page it allocated, and that page
//! is given back), a lent hypervisor frame is just unmapped. A lent frame mapped
//! elsewhere moves, so it is never mapped twice. The platform's special pages (the
//! xenstore ring) are neither removed nor replaced: both are `EPERM`.

use alloc::vec::Vec;

use super::{inconsistent_heap, inconsistent_p2m, Hypervisor};
use crate::addr::{DomId, Gfn, Mfn, Order};
use crate::domain::Domain;
use crate::error::{Errno, Error};
use crate::heap::{FrameHeap, FrameState, Owner};
use crate::p2m::{EntryType, Mapping};
use crate::platform::FrameOps;

/// What add_to_physmap maps (`XENMAPSPACE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapSpace {
    /// The domain's shared info page.
    SharedInfo,
    /// Grant table frame `n` (allocated on first use, up to the configured limit).
    GrantTable(u64),
    /// The domain's own RAM frame now at this guest frame (it moves).
    Gmfn(Gfn),
}

impl Hypervisor {
    /// Maps `space` at `gpfn` in domain `id`.
    pub fn add_to_physmap(
        &mut self,
        id: DomId,
        space: MapSpace,
        gpfn: Gfn,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let target = gpfn.single().ok_or(Errno::EINVAL)?;
        if !self.gfn_in_limit(target) {
            return Err(Errno::EINVAL.into());
        }
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        let mut need = dom.p2m.tables_to_reach(gpfn, Order::ORDER_4K);
        if let MapSpace::Gmfn(source) = space {
            // Moving a frame out of a superpage splits it.
            need = need.plus(dom.p2m.tables_to_reach(source, Order::ORDER_4K));
        }
        self.charged(id, need, |hv| hv.map_space(id, space, gpfn, frames))
    }

    fn map_space(
        &mut self,
        id: DomId,
        space: MapSpace,
        gpfn: Gfn,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        match space {
            MapSpace::SharedInfo => {
                let frame = self.domain_mut(id)?.shared_info;
                self.map_lent_frame(id, frame, gpfn)
            }
            MapSpace::GrantTable(index) => {
                let frame = self.grant_frame(id, index, frames)?;
                self.map_lent_frame(id, frame, gpfn)
            }
            MapSpace::Gmfn(source) => self.move_ram_frame(id, source, gpfn),
        }
    }

    /// Lends a new, zeroed hypervisor frame to domain `id` and maps it at `gpfn`
    /// (replacing what was there, as for add_to_physmap): a page the platform
    /// shares with the guest for one of its services, such as the xenstore ring.
    /// The frame stays lent until the domain is destroyed.
    pub fn map_special_page(
        &mut self,
        id: DomId,
        gpfn: Gfn,
        frames: &mut dyn FrameOps,
    ) -> Result<Mfn, Error> {
        let target = gpfn.single().ok_or(Errno::EINVAL)?;
        if !self.gfn_in_limit(target) {
            return Err(Errno::EINVAL.into());
        }
        if !self.domains.contains_key(&id) {
            return Err(Errno::ESRCH.into());
        }
        let frame = self
            .heap
            .alloc(Order::ORDER_4K, Owner::Hypervisor, frames)
            .ok_or(Errno::ENOMEM)?;
        self.heap.lend(frame, Some(id)).map_err(inconsistent_heap)?;
        self.domain_mut(id)?.special_pages.push(frame);
        self.map_lent_frame(id, frame, gpfn)?;
        Ok(frame)
    }

    /// Removes whatever `gpfn` maps (`EINVAL` if nothing, `EPERM` for a special
    /// page): RAM is freed, a lent frame unmapped.
    pub fn remove_from_physmap(&mut self, id: DomId, gpfn: Gfn) -> Result<(), Error> {
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        if dom.p2m.entry(gpfn).is_none() {
            return Err(Errno::EINVAL.into());
        }
        let need = dom.p2m.tables_to_reach(gpfn, Order::ORDER_4K);
        self.charged(id, need, |hv| {
            let Hypervisor { heap, domains, .. } = hv;
            let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
            clear_gfn(heap, dom, gpfn)
        })
    }

    fn map_lent_frame(&mut self, id: DomId, frame: Mfn, gpfn: Gfn) -> Result<(), Error> {
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        let old = match heap.state(frame) {
            Some(FrameState::Hypervisor { gfn: Some(old), .. }) if old == gpfn => return Ok(()),
            Some(FrameState::Hypervisor { gfn, .. }) => gfn,
            _ => None,
        };
        // The target first: if it refuses (a special page), nothing has changed.
        clear_gfn(heap, dom, gpfn)?;
        if let Some(old) = old {
            clear_gfn(heap, dom, old)?;
        }
        dom.p2m
            .map(gpfn, frame, Order::ORDER_4K, EntryType::HypervisorShared)
            .map_err(inconsistent_p2m)?;
        heap.set_gfn(frame, id, Some(gpfn))
            .map_err(inconsistent_heap)
    }

    fn grant_frame(
        &mut self,
        id: DomId,
        index: u64,
        frames: &mut dyn FrameOps,
    ) -> Result<Mfn, Error> {
        if index >= u64::from(self.config.max_grant_frames) {
            return Err(Errno::EINVAL.into());
        }
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        while dom.grant_frames.len() as u64 <= index {
            let frame = heap
                .alloc(Order::ORDER_4K, Owner::Hypervisor, frames)
                .ok_or(Errno::ENOMEM)?;
            heap.lend(frame, Some(id)).map_err(inconsistent_heap)?;
            dom.grant_frames.push(frame);
        }
        dom.grant_frames
            .get(index as usize)
            .copied()
            .ok_or(Error::Request(Errno::EINVAL))
    }

    fn move_ram_frame(&mut self, id: DomId, source: Gfn, gpfn: Gfn) -> Result<(), Error> {
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        let entry = dom.p2m.entry(source).ok_or(Errno::EINVAL)?;
        if !entry.kind.is_ram() || !entry.kind.accessible() {
            return Err(Errno::EINVAL.into());
        }
        if source == gpfn {
            return Ok(());
        }
        let page = source.single().ok_or(Errno::EINVAL)?;
        // The target first: if it refuses (a special page), the source stays mapped.
        clear_gfn(heap, dom, gpfn)?;
        dom.p2m.unmap(page, &mut |_| {}).map_err(inconsistent_p2m)?;
        dom.p2m
            .map(gpfn, entry.mfn, Order::ORDER_4K, entry.kind)
            .map_err(inconsistent_p2m)?;
        heap.set_gfn(entry.mfn, id, Some(gpfn))
            .map_err(inconsistent_heap)
    }
}

/// Empties guest frame `gfn` of `dom`: its RAM frame is freed, a lent frame unmapped.
/// A special page stays where the platform put it (`EPERM`): its service and the
/// params the guest reads it from (which it may not set either) name that gfn.
fn clear_gfn(heap: &mut FrameHeap, dom: &mut Domain, gfn: Gfn) -> Result<(), Error> {
    let page = gfn.single().ok_or(Errno::EINVAL)?;
    if let Some(entry) = dom.p2m.entry(gfn) {
        if dom.special_pages.contains(&entry.mfn) {
            return Err(Errno::EPERM.into());
        }
    }
    let mut removed: Vec<Mapping> = Vec::new();
    dom.p2m
        .unmap(page, &mut |m| removed.push(m))
        .map_err(inconsistent_p2m)?;
    for m in removed {
        if m.kind.is_ram() {
            heap.free(m.mfn, Order::ORDER_4K, Owner::Domain(dom.id))
                .map_err(inconsistent_heap)?;
            dom.tot_pages -= 1;
        } else {
            heap.set_gfn(m.mfn, dom.id, None)
                .map_err(inconsistent_heap)?;
        }
    }
    Ok(())
}
