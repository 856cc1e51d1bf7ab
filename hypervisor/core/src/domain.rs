//! Domains: what the hypervisor knows about each guest's memory.
//!
//! A domain owns frames (counted in `tot_pages`, capped by `max_pages`), maps them
//! through its [`P2m`], and is lent a few hypervisor frames (its shared info page and
//! grant table frames) that it may map but never owns. All changes go through
//! [`crate::hv::Hypervisor`], which keeps the domain, the heap and the p2m in step.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::abi::memory::E820Entry;
use crate::addr::{DomId, Gfn, Mfn};
use crate::hv::{DirtyLog, Faults, MemPool};
use crate::p2m::P2m;

/// How to create a domain.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// Its id (below `DOMID_FIRST_RESERVED`).
    pub id: DomId,
    /// The most frames it may own (`maxmem`).
    pub max_pages: u64,
    /// The e820 map `XENMEM_memory_map` returns to it (may be empty: the guest then
    /// gets `-ENOENT` and must use the map in its start info).
    pub memory_map: Vec<E820Entry>,
}

/// One domain.
///
/// # Invariants
///
/// Kept by [`crate::hv::Hypervisor`] and checked by its `check_invariants`:
/// - `tot_pages` is the number of heap frames whose owner is this domain.
/// - Every RAM leaf of `p2m` maps frames this domain owns, each recorded in the heap
///   at exactly the guest frame that maps it; every other p2m leaf maps a hypervisor
///   frame lent to this domain, likewise recorded.
/// - `shared_info`, `grant_frames` and `special_pages` are hypervisor frames lent to
///   this domain.
/// - `log_dirty` is `Some` exactly while log-dirty mode is on.
pub struct Domain {
    pub(crate) id: DomId,
    pub(crate) tot_pages: u64,
    pub(crate) max_pages: u64,
    pub(crate) p2m: P2m,
    pub(crate) shared_info: Mfn,
    pub(crate) grant_frames: Vec<Mfn>,
    pub(crate) special_pages: Vec<Mfn>,
    pub(crate) memory_map: Vec<E820Entry>,
    pub(crate) log_dirty: Option<DirtyLog>,
    pub(crate) faults: Faults,
    pub(crate) pool: MemPool,
    /// 2 MiB-aligned guest frames of regions an offline or exchange split, to be
    /// merged again (`hv/superpage.rs`); at most `MAX_SPLIT_REGIONS`.
    pub(crate) split_2m: BTreeSet<Gfn>,
    /// Regions merged again so far.
    pub(crate) remerged_2m: u64,
}

impl Domain {
    pub(crate) fn new(
        config: DomainConfig,
        gfn_limit: Gfn,
        shared_info: Mfn,
        pool_limit: u64,
    ) -> Domain {
        // INVARIANT: owns nothing, maps nothing, shared_info was lent by the caller.
        Domain {
            id: config.id,
            tot_pages: 0,
            max_pages: config.max_pages,
            p2m: P2m::new(gfn_limit),
            shared_info,
            grant_frames: Vec::new(),
            special_pages: Vec::new(),
            memory_map: config.memory_map,
            log_dirty: None,
            faults: Faults::default(),
            pool: MemPool::new(pool_limit),
            split_2m: BTreeSet::new(),
            remerged_2m: 0,
        }
    }

    /// The domain's id.
    pub fn id(&self) -> DomId {
        self.id
    }

    /// 2 MiB regions split by an offline or exchange and merged again since boot.
    pub fn remerged_2m(&self) -> u64 {
        self.remerged_2m
    }

    /// Split regions waiting to be merged again.
    pub fn split_regions(&self) -> usize {
        self.split_2m.len()
    }

    /// Frames the domain owns (`current_reservation`).
    pub fn tot_pages(&self) -> u64 {
        self.tot_pages
    }

    /// The most frames it may own (`maximum_reservation`).
    pub fn max_pages(&self) -> u64 {
        self.max_pages
    }

    /// Its p2m, to enumerate mappings; changes go through the hypervisor.
    pub fn p2m(&self) -> &P2m {
        &self.p2m
    }

    /// The hypervisor frame holding its shared info page.
    pub fn shared_info(&self) -> Mfn {
        self.shared_info
    }

    /// The hypervisor frames of its grant table allocated so far.
    pub fn grant_frames(&self) -> &[Mfn] {
        &self.grant_frames
    }

    /// The hypervisor frames lent to it for the platform's services (its xenstore
    /// ring), in the order they were mapped.
    pub fn special_pages(&self) -> &[Mfn] {
        &self.special_pages
    }

    /// The memory map it is given.
    pub fn memory_map(&self) -> &[E820Entry] {
        &self.memory_map
    }

    /// The faults the host injects into its reservation hypercalls.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Its dirty log, while log-dirty mode is on.
    pub fn log_dirty(&self) -> Option<&DirtyLog> {
        self.log_dirty.as_ref()
    }
}
