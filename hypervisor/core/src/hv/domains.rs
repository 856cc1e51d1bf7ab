//! Creating, sizing and destroying domains.

use alloc::vec::Vec;

use super::{inconsistent_heap, Hypervisor};
use crate::addr::{DomId, GfnRange, Order};
use crate::domain::{Domain, DomainConfig};
use crate::error::{Errno, Error};
use crate::heap::{FrameState, Owner};
use crate::platform::FrameOps;

impl Hypervisor {
    /// Creates an empty domain with its shared info frame.
    pub fn create_domain(
        &mut self,
        config: DomainConfig,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Errno> {
        if config.id >= DomId::FIRST_RESERVED {
            return Err(Errno::EINVAL);
        }
        if self.domains.contains_key(&config.id) {
            return Err(Errno::EEXIST);
        }
        let shared_info = self
            .heap
            .alloc(Order::ORDER_4K, Owner::Hypervisor, frames)
            .ok_or(Errno::ENOMEM)?;
        if self.heap.lend(shared_info, Some(config.id)).is_err() {
            return Err(Errno::ENOMEM);
        }
        let id = config.id;
        let limit = super::default_limit(config.max_pages, self.config.mem_pool_max);
        let domain = Domain::new(config, self.config.gfn_limit, shared_info, limit);
        self.domains.insert(id, domain);
        Ok(())
    }

    /// Populates `range` of a new domain's p2m with RAM, using 1 GiB and 2 MiB frames
    /// wherever the alignment and the heap allow and 4 KiB frames elsewhere. Stops at
    /// the first frame it cannot populate (out of memory, over `max_pages`, already
    /// mapped) and returns that error; what was populated stays.
    pub fn populate_boot_memory(
        &mut self,
        id: DomId,
        range: GfnRange,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let mut gfn = range.start;
        while gfn < range.end {
            let left = range.end.0 - gfn.0;
            let mut outcome = Err(Error::Request(Errno::ENOMEM));
            for order in [Order::ORDER_1G, Order::ORDER_2M, Order::ORDER_4K] {
                if !gfn.is_aligned(order) || order.frames() > left {
                    continue;
                }
                outcome = self.populate(id, gfn, order, frames).map(|()| order);
                match outcome {
                    Err(Error::Request(Errno::ENOMEM)) => continue,
                    _ => break,
                }
            }
            gfn = gfn.plus(outcome?.frames());
        }
        Ok(())
    }

    /// Sets the most frames a domain may own (`mem-max`). Lowering it below what the
    /// domain owns takes nothing away; the domain just cannot grow.
    pub fn set_max_pages(&mut self, id: DomId, max_pages: u64) -> Result<(), Errno> {
        self.domain_mut(id)?.max_pages = max_pages;
        Ok(())
    }

    /// Destroys a domain: every frame it owns goes back to the heap (or offline, if
    /// an offline was pending), its lent frames return to the hypervisor's free pool.
    pub fn destroy_domain(&mut self, id: DomId) -> Result<(), Error> {
        let domain = self.domains.remove(&id).ok_or(Errno::ESRCH)?;
        let owned: Vec<_> = self
            .heap
            .frames()
            .filter_map(|(mfn, state)| match state {
                FrameState::Domain { owner, .. } | FrameState::OfflinePending { owner, .. }
                    if owner == id =>
                {
                    Some(mfn)
                }
                _ => None,
            })
            .collect();
        for mfn in owned {
            self.heap
                .free(mfn, Order::ORDER_4K, Owner::Domain(id))
                .map_err(inconsistent_heap)?;
        }
        let lent = core::iter::once(domain.shared_info)
            .chain(domain.grant_frames.iter().copied())
            .chain(domain.special_pages.iter().copied());
        for mfn in lent {
            self.heap
                .set_gfn(mfn, id, None)
                .map_err(inconsistent_heap)?;
            self.heap.lend(mfn, None).map_err(inconsistent_heap)?;
            self.heap
                .free(mfn, Order::ORDER_4K, Owner::Hypervisor)
                .map_err(inconsistent_heap)?;
        }
        Ok(())
    }

    /// Whether `gfn` can be the start of a domain's mapping at all.
    pub(crate) fn gfn_in_limit(&self, range: GfnRange) -> bool {
        range.end <= self.config.gfn_limit && range.start <= range.end
    }
}
