//! The hypervisor's memory state as one value: the heap, the domains and their p2ms,
//! kept consistent by every operation here.
//!
//! The platform owns one [`Hypervisor`] behind one lock. It creates it from the heap
//! it built from the boot memory map, creates domains, forwards hypercalls
//! ([`Hypervisor::hypercall`]) and nested page faults ([`Hypervisor::write_fault`]),
//! and after each of those mirrors the p2m changes into its NPT
//! ([`Hypervisor::sync_p2m`]).

mod check;
mod domains;
mod exchange;
mod fault;
mod log_dirty;
mod offline;
mod physmap;
mod pool;
mod reservation;
mod superpage;

use alloc::collections::BTreeMap;

pub use exchange::Moved;
pub(crate) use fault::Applied;
pub use fault::{Fault, FaultEffect, FaultOp, Faults, MAX_PENDING};
pub use log_dirty::{DirtyLog, WriteFault};
pub use physmap::MapSpace;
pub use pool::{default_limit, tables_cost, MemPool, PlatformCharge, PoolUsage, MIN_DEFAULT_LIMIT};
pub use superpage::{Remerge, RemergePass, MAX_SPLIT_REGIONS};

use crate::addr::{DomId, Gfn, Mfn, Order};
use crate::domain::Domain;
use crate::error::{Errno, Error, Fatal};
use crate::heap::{FrameHeap, HeapError, Owner};
use crate::p2m::{P2mError, P2mMirror};
use crate::platform::FrameOps;

/// Policy knobs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Largest extent order a guest may use in reservation ops and exchange (Xen's
    /// `domu_max_order`, 9 by default).
    pub guest_max_order: Order,
    /// Largest extent order the control plane may use.
    pub control_max_order: Order,
    /// Frames of work after which a long hypercall returns a continuation (frames
    /// populated, released, exchanged or moved): the bound on one exit's work.
    pub preempt_frames: u64,
    /// Grant table frames a domain may map.
    pub max_grant_frames: u32,
    /// First guest frame no p2m may map (1 << 36: 48-bit guest-physical addresses,
    /// what 4-level nested paging can translate).
    pub gfn_limit: Gfn,
    /// The largest memory pool limit one domain may have, in bytes (the platform
    /// sets it from the memory it has for its own allocations).
    pub mem_pool_max: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            guest_max_order: Order::ORDER_2M,
            control_max_order: Order::ORDER_1G,
            // 32 MiB: one exit zeroes at most that much (1 GiB before: seconds of
            // work under QEMU's TCG, with the guest and the control channel waiting).
            preempt_frames: 1 << 13,
            max_grant_frames: 64,
            gfn_limit: Gfn(1 << 36),
            mem_pool_max: 1 << 30,
        }
    }
}

/// The heap and the domains.
///
/// # Invariants
///
/// Those of [`FrameHeap`] and [`Domain`], plus: every frame a domain owns or is lent
/// belongs to a domain in `domains`. [`Hypervisor::check_invariants`] checks them all.
pub struct Hypervisor {
    pub(crate) heap: FrameHeap,
    pub(crate) domains: BTreeMap<DomId, Domain>,
    pub(crate) config: Config,
}

impl Hypervisor {
    /// Takes over a heap built from the boot memory map.
    pub fn new(heap: FrameHeap, config: Config) -> Hypervisor {
        Hypervisor {
            heap,
            domains: BTreeMap::new(),
            config,
        }
    }

    /// The policy in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The frame heap (read-only: frames change hands through the operations here).
    pub fn heap(&self) -> &FrameHeap {
        &self.heap
    }

    /// A domain.
    pub fn domain(&self, id: DomId) -> Option<&Domain> {
        self.domains.get(&id)
    }

    /// All domains, by id.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// Allocates frames for the hypervisor's own use (page tables, VMCBs), zeroed.
    pub fn alloc_hypervisor_frames(
        &mut self,
        order: Order,
        frames: &mut dyn FrameOps,
    ) -> Option<Mfn> {
        self.heap.alloc(order, Owner::Hypervisor, frames)
    }

    /// Returns frames from [`Hypervisor::alloc_hypervisor_frames`].
    pub fn free_hypervisor_frames(&mut self, mfn: Mfn, order: Order) -> Result<(), HeapError> {
        self.heap.free(mfn, order, Owner::Hypervisor)
    }

    /// Zeroes up to `budget` free frames ahead of time (for the idle loop).
    pub fn scrub_free(&mut self, budget: u64, frames: &mut dyn FrameOps) -> u64 {
        self.heap.scrub_free(budget, frames)
    }

    /// Replays the changes to `domain`'s p2m since the last call into `mirror` (its
    /// NPT). Returns how many ranges changed: non-zero means the guest TLB must be
    /// flushed before the domain runs again.
    pub fn sync_p2m(&mut self, domain: DomId, mirror: &mut dyn P2mMirror) -> Result<usize, Errno> {
        let dom = self.domains.get_mut(&domain).ok_or(Errno::ESRCH)?;
        let changed = dom.p2m.sync_mirror(mirror);
        self.charge_mirror(domain, mirror.table_bytes());
        Ok(changed)
    }

    pub(crate) fn domain_mut(&mut self, id: DomId) -> Result<&mut Domain, Errno> {
        self.domains.get_mut(&id).ok_or(Errno::ESRCH)
    }
}

/// A heap refusal where the core itself chose the arguments: its bookkeeping is off.
pub(crate) fn inconsistent_heap(_: HeapError) -> Error {
    Error::Fatal(Fatal::Inconsistent(
        "heap refused a frame the p2m or domain recorded",
    ))
}

/// A p2m refusal where the core had checked the arguments first.
pub(crate) fn inconsistent_p2m(_: P2mError) -> Error {
    Error::Fatal(Fatal::Inconsistent(
        "p2m refused a change the core had checked",
    ))
}
