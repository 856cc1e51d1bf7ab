//! The nested page tables as the p2m's mirror: [`NptMirror`] is the core's
//! [`P2mMirror`] over any tree of nested tables with its memory ([`NptTree`]).
//!
//! The image drives its tree (`ebbhv_hal::npt::Npt`, table pages from ebbhv's
//! heap) through this adapter, and the host tests and the `npt` fuzz target drive
//! [`crate::testing::HostNpt`] through the same one, so what they check is the
//! code that keeps the hardware's tables equal to the p2m.

use ebbhv_core::addr::{GfnRange, GuestPhys, HostPhys};
use ebbhv_core::p2m::{Mapping, P2mMirror, PageSize};

use crate::npt::NptError;
use crate::paging::LeafSize;

/// A nested page table tree together with the memory of its table pages.
pub trait NptTree {
    /// Installs one leaf mapping `gpa` to `hpa` ([`crate::npt::NestedTables::map`]).
    fn map(
        &mut self,
        gpa: GuestPhys,
        hpa: HostPhys,
        size: LeafSize,
        writable: bool,
    ) -> Result<(), NptError>;

    /// Drops every leaf in `[start, end)` ([`crate::npt::NestedTables::unmap`]).
    fn unmap(&mut self, start: GuestPhys, end: GuestPhys);

    /// Bytes of hypervisor memory the tree's table pages take.
    fn table_bytes(&self) -> u64;
}

/// The p2m's mirror over `tree`. A leaf that could not be installed is
/// remembered: the caller must not run the guest on tables that miss it.
pub struct NptMirror<'a> {
    tree: &'a mut dyn NptTree,
    failed: Option<NptError>,
}

impl<'a> NptMirror<'a> {
    /// The mirror over `tree`.
    pub fn new(tree: &'a mut dyn NptTree) -> NptMirror<'a> {
        NptMirror { tree, failed: None }
    }

    /// Why the first leaf that could not be installed since this mirror was made
    /// was refused, if one was.
    pub fn failed(&self) -> Option<NptError> {
        self.failed
    }
}

/// The NPT leaf of a p2m leaf size (the same three sizes).
pub fn leaf_size(size: PageSize) -> LeafSize {
    match size {
        PageSize::Size4K => LeafSize::Size4K,
        PageSize::Size2M => LeafSize::Size2M,
        PageSize::Size1G => LeafSize::Size1G,
    }
}

impl P2mMirror for NptMirror<'_> {
    fn unmap(&mut self, range: GfnRange) {
        self.tree.unmap(range.start.addr(), range.end.addr());
    }

    fn map(&mut self, m: Mapping) {
        let r = self.tree.map(
            m.gfn.addr(),
            m.mfn.addr(),
            leaf_size(m.size),
            m.kind.writable(),
        );
        // The p2m hands out aligned leaves of its own frames after unmapping their
        // range; what is left to fail is running out of memory for tables (or, in
        // the image, a frame outside the guest-frame pool).
        if let Err(e) = r {
            self.failed.get_or_insert(e);
        }
    }

    fn table_bytes(&self) -> u64 {
        self.tree.table_bytes()
    }
}
