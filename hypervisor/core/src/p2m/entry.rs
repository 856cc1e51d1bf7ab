//! What one p2m leaf says: which machine frames back a guest range, and how.

use crate::addr::{Gfn, Mfn, Order};

/// The kind of memory a p2m entry maps. New kinds (MMIO, grants, paged-out) go here;
/// every `match` on it is exhaustive inside the crate so that adding one is checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum EntryType {
    /// The domain's own RAM, readable and writable.
    RamRw,
    /// The domain's own RAM while log-dirty tracking is on: present but read-only, so
    /// the first write faults and is recorded.
    RamLogDirty,
    /// A hypervisor frame lent to the domain (shared info, grant table), read-write.
    /// It is not the domain's RAM: it does not count in `tot_pages` and cannot be
    /// ballooned out.
    HypervisorShared,
    /// The domain's RAM whose frame was reported broken (`mem-offline --broken`, a
    /// machine check): its contents are lost. The domain still owns the frame until
    /// it gives the gfn back, but nothing maps it, so neither the guest nor a copy
    /// of a guest buffer ever reads what is left in it.
    Broken,
}

impl EntryType {
    /// Whether the guest may write through this entry without a fault.
    pub fn writable(self) -> bool {
        match self {
            EntryType::RamRw | EntryType::HypervisorShared => true,
            EntryType::RamLogDirty | EntryType::Broken => false,
        }
    }

    /// Whether the guest (and the hypervisor on its behalf) may access the frame at
    /// all: false for a broken frame, which stays out of the nested tables.
    pub fn accessible(self) -> bool {
        match self {
            EntryType::RamRw | EntryType::RamLogDirty | EntryType::HypervisorShared => true,
            EntryType::Broken => false,
        }
    }

    /// Whether the entry maps the domain's own RAM (frames it owns).
    pub fn is_ram(self) -> bool {
        match self {
            EntryType::RamRw | EntryType::RamLogDirty | EntryType::Broken => true,
            EntryType::HypervisorShared => false,
        }
    }
}

/// The three leaf sizes of x86-64 page tables.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum PageSize {
    /// 4 KiB.
    Size4K,
    /// 2 MiB.
    Size2M,
    /// 1 GiB.
    Size1G,
}

impl PageSize {
    /// The order of a leaf of this size.
    pub fn order(self) -> Order {
        match self {
            PageSize::Size4K => Order::ORDER_4K,
            PageSize::Size2M => Order::ORDER_2M,
            PageSize::Size1G => Order::ORDER_1G,
        }
    }

    /// Frames in a leaf of this size.
    pub fn frames(self) -> u64 {
        self.order().frames()
    }
}

/// One leaf's content: the first machine frame it maps and its type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The machine frame backing the leaf's first guest frame; the rest follow
    /// contiguously.
    pub mfn: Mfn,
    /// What kind of mapping it is.
    pub kind: EntryType,
}

impl Entry {
    /// The entry for the frame `offset` frames into this one's leaf.
    pub(super) fn offset(self, offset: u64) -> Entry {
        Entry {
            mfn: self.mfn.plus(offset),
            kind: self.kind,
        }
    }
}

/// A leaf of the p2m as the platform sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mapping {
    /// First guest frame (aligned to `size`).
    pub gfn: Gfn,
    /// First machine frame (aligned to `size`).
    pub mfn: Mfn,
    /// Leaf size.
    pub size: PageSize,
    /// Entry type.
    pub kind: EntryType,
}
