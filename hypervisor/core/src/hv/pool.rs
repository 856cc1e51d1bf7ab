//! Each domain's memory pool: the hypervisor memory its requests made the
//! hypervisor allocate, charged to it and capped by a per-domain limit (Xen's
//! paging mempool, `XEN_DOMCTL_{get,set}_paging_mempool_size`).
//!
//! Four things are charged:
//! - the p2m's tables, which the core counts itself ([`crate::p2m::TableCount`]);
//! - the platform's nested page tables, reported by the mirror at every
//!   [`Hypervisor::sync_p2m`]; between two syncs the core adds one page per table
//!   an operation created, so that several operations in one hypercall cannot
//!   outrun the check;
//! - event channel state and the domain's xenstore connection and nodes, which the
//!   platform owns and reports with [`Hypervisor::set_platform_charge`].
//!
//! A guest operation that may add p2m tables first asks for the worst case it can
//! add (p2m tables and the mirror pages for them) and fails with `ENOMEM` if that
//! would take the charge over the limit, so the charge never passes the limit
//! because of a guest. Operations the control plane starts (page offline,
//! log-dirty) are charged but never refused.

use super::Hypervisor;
use crate::addr::{DomId, PAGE_SIZE};
use crate::error::{Errno, Error};
use crate::p2m::TableCount;

/// The smallest default limit: room for the xenstore quota, the event channels
/// and a few hundred scattered 4 KiB mappings.
pub const MIN_DEFAULT_LIMIT: u64 = 8 << 20;

/// What the platform charges to a domain on its behalf.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PlatformCharge {
    /// Event channel state.
    EventChannels,
    /// The domain's xenstore nodes, transactions, watches and queued output.
    Xenstore,
}

/// One domain's charge and limit, in bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct MemPool {
    limit: u64,
    nested_tables: u64,
    nested_tables_pending: u64,
    event_channels: u64,
    xenstore: u64,
}

/// A domain's pool as `ebbctl info` shows it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct PoolUsage {
    /// The limit.
    pub limit: u64,
    /// Everything charged.
    pub used: u64,
    /// Of which the p2m's tables.
    pub p2m: u64,
    /// The nested page tables (as last reported, plus the estimate since).
    pub nested_tables: u64,
    /// Event channel state.
    pub event_channels: u64,
    /// xenstore.
    pub xenstore: u64,
}

impl MemPool {
    pub(crate) fn new(limit: u64) -> MemPool {
        MemPool {
            limit,
            ..MemPool::default()
        }
    }

    fn usage(&self, tables: TableCount) -> PoolUsage {
        let p2m = tables.bytes();
        let nested_tables = self.nested_tables + self.nested_tables_pending;
        PoolUsage {
            limit: self.limit,
            used: p2m + nested_tables + self.event_channels + self.xenstore,
            p2m,
            nested_tables,
            event_channels: self.event_channels,
            xenstore: self.xenstore,
        }
    }
}

/// The cost of `tables` to a domain: their own bytes and one mirror page each.
pub fn tables_cost(tables: TableCount) -> u64 {
    tables.bytes() + tables.mirror_pages() * PAGE_SIZE
}

/// The default limit for a domain of `max_pages`: the tables that map all of it
/// with 4 KiB leaves (one 4 KiB table per 2 MiB, one 2 MiB table and top-level
/// slot per 1 GiB, each with its mirror page), plus [`MIN_DEFAULT_LIMIT`] for
/// xenstore, event channels and slack; never more than `cap`.
pub fn default_limit(max_pages: u64, cap: u64) -> u64 {
    let per_2m = tables_cost(TableCount {
        tables_4k: 1,
        ..TableCount::default()
    });
    let per_1g = tables_cost(TableCount {
        top_slots: 1,
        tables_2m: 1,
        tables_4k: 0,
    });
    let tables = max_pages.div_ceil(1 << 9) * per_2m + max_pages.div_ceil(1 << 18) * per_1g;
    tables.saturating_add(MIN_DEFAULT_LIMIT).min(cap)
}

impl Hypervisor {
    /// A domain's charge and limit.
    pub fn mem_pool(&self, id: DomId) -> Result<PoolUsage, Errno> {
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        Ok(dom.pool.usage(dom.p2m.tables()))
    }

    /// Sets a domain's limit. Refused with `EBUSY` below what it uses now and with
    /// `EINVAL` above the most the hypervisor gives one domain
    /// ([`super::Config::mem_pool_max`]).
    pub fn set_mem_pool_limit(&mut self, id: DomId, bytes: u64) -> Result<(), Errno> {
        let max = self.config.mem_pool_max;
        let dom = self.domains.get_mut(&id).ok_or(Errno::ESRCH)?;
        if bytes > max {
            return Err(Errno::EINVAL);
        }
        if bytes < dom.pool.usage(dom.p2m.tables()).used {
            return Err(Errno::EBUSY);
        }
        dom.pool.limit = bytes;
        Ok(())
    }

    /// Records what the platform now holds for the domain in `what`.
    pub fn set_platform_charge(
        &mut self,
        id: DomId,
        what: PlatformCharge,
        bytes: u64,
    ) -> Result<(), Errno> {
        let pool = &mut self.domains.get_mut(&id).ok_or(Errno::ESRCH)?.pool;
        match what {
            PlatformCharge::EventChannels => pool.event_channels = bytes,
            PlatformCharge::Xenstore => pool.xenstore = bytes,
        }
        Ok(())
    }

    /// Bytes the domain may still be charged for `what` before it reaches its
    /// limit, counting what `what` holds now as free (the platform's own quota for
    /// it, such as xenstore's, is checked against this).
    pub fn platform_headroom(&self, id: DomId, what: PlatformCharge) -> Result<u64, Errno> {
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        let usage = dom.pool.usage(dom.p2m.tables());
        let own = match what {
            PlatformCharge::EventChannels => usage.event_channels,
            PlatformCharge::Xenstore => usage.xenstore,
        };
        Ok(usage.limit.saturating_sub(usage.used - own))
    }

    /// Records the bytes the domain's mirror (its nested page tables) holds after
    /// a sync; the estimate kept since the last one is dropped.
    pub(crate) fn charge_mirror(&mut self, id: DomId, bytes: u64) {
        if let Some(dom) = self.domains.get_mut(&id) {
            dom.pool.nested_tables = bytes;
            dom.pool.nested_tables_pending = 0;
        }
    }

    /// Runs a guest's p2m operation that adds at most `need` tables: refused with
    /// `ENOMEM` if their cost would take the domain over its limit; otherwise the
    /// tables it did add get their mirror pages charged until the next sync.
    pub(crate) fn charged<T>(
        &mut self,
        id: DomId,
        need: TableCount,
        op: impl FnOnce(&mut Hypervisor) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let dom = self.domains.get(&id).ok_or(Errno::ESRCH)?;
        let usage = dom.pool.usage(dom.p2m.tables());
        if usage.used.saturating_add(tables_cost(need)) > usage.limit {
            return Err(Errno::ENOMEM.into());
        }
        let before = dom.p2m.tables();
        let result = op(self);
        if let Some(dom) = self.domains.get_mut(&id) {
            let added = dom.p2m.tables().growth_from(before);
            dom.pool.nested_tables_pending += added.mirror_pages() * PAGE_SIZE;
        }
        result
    }
}
