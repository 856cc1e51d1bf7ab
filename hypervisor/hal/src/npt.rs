//! The guest's nested page tables, kept equal to its p2m in `ebbhv-core`.
//!
//! The tree logic is `ebbhv_x86::npt`, tested on the host; this module supplies
//! its memory and keeps the two facts that make handing the tree to the hardware
//! sound.
//!
//! # Invariants
//!
//! - Every table page of the tree is a one-page [`Pages`] allocation that
//!   [`HeapTables`] made and still owns (its address is in `pages`); entries are
//!   read and written only there.
//! - Every leaf points into the guest-frame pool ([`crate::frame`]): the guest can
//!   reach no memory of ebbhv's own through its nested paging.

use alloc::collections::BTreeSet;

use ebbhv_core::addr::{GuestPhys, HostPhys, PAGE_SIZE};
use ebbhv_x86::npt::{NestedTables, NptError, TableMemory};
use ebbhv_x86::npt_mirror::NptTree;
use ebbhv_x86::paging::LeafSize;

use crate::heap::Pages;

/// Table pages from ebbhv's allocator, each leaked while the tree (and the
/// hardware) may use it and taken back when the tree frees it.
struct HeapTables {
    /// Machine addresses of the live table pages.
    pages: BTreeSet<u64>,
}

impl HeapTables {
    /// The entry `index` of the live table `table`.
    fn entry(&self, table: HostPhys, index: usize) -> *mut u64 {
        assert!(
            self.pages.contains(&table.0) && index < 512,
            "{table:?}[{index}] is not an entry of a live table page"
        );
        (table.0 as usize as *mut u64).wrapping_add(index)
    }
}

impl TableMemory for HeapTables {
    fn alloc_table(&mut self) -> Option<HostPhys> {
        let table = Pages::new(1)?.leak();
        self.pages.insert(table.0);
        Some(table)
    }

    fn free_table(&mut self, table: HostPhys) {
        if self.pages.remove(&table.0) {
            // SAFETY: `pages` held the address, so it is a one-page allocation leaked
            // by `alloc_table` and not taken back before; the tree unlinked it and
            // the caller flushes the guest TLB before the guest runs again.
            drop(unsafe { Pages::from_leaked(table, 1) });
        }
    }

    fn read(&self, table: HostPhys, index: usize) -> u64 {
        let p = self.entry(table, index);
        // SAFETY: `entry` checked that this is an entry of a live table page this
        // value owns; nothing else writes it while the hypervisor runs (the guest
        // is stopped, and the CPU's walker only sets no bits: leaves are created
        // accessed and dirty).
        unsafe { p.read() }
    }

    fn write(&mut self, table: HostPhys, index: usize, value: u64) {
        let p = self.entry(table, index);
        // SAFETY: as in `read`; `&mut self` serialises writers.
        unsafe { p.write(value) };
    }
}

/// The nested page tables of one guest.
pub struct Npt {
    tables: NestedTables,
    memory: HeapTables,
}

impl Npt {
    /// An empty tree, or `None` if ebbhv's allocator has no page for its root.
    pub fn new() -> Option<Npt> {
        let mut memory = HeapTables {
            pages: BTreeSet::new(),
        };
        let tables = NestedTables::new(&mut memory).ok()?;
        Some(Npt { tables, memory })
    }

    /// The root for the VMCB.
    pub(crate) fn root(&self) -> HostPhys {
        self.tables.root()
    }

    /// The machine address of `gpa` and whether the guest may write it.
    pub fn translate(&self, gpa: GuestPhys) -> Option<(HostPhys, bool)> {
        self.tables.translate(&self.memory, gpa)
    }
}

impl NptTree for Npt {
    /// Installs one leaf mapping `gpa` to `hpa`; refused with
    /// [`NptError::Forbidden`] for a leaf that would reach outside the guest-frame
    /// pool.
    fn map(
        &mut self,
        gpa: GuestPhys,
        hpa: HostPhys,
        size: LeafSize,
        writable: bool,
    ) -> Result<(), NptError> {
        if !crate::frame::in_pool(hpa.0, size.bytes()) {
            return Err(NptError::Forbidden);
        }
        self.tables.map(&mut self.memory, gpa, hpa, size, writable)
    }

    /// Drops every leaf in `[start, end)`.
    fn unmap(&mut self, start: GuestPhys, end: GuestPhys) {
        self.tables.unmap(&mut self.memory, start, end);
    }

    /// Bytes of ebbhv's allocator the tree's table pages take, with the set that
    /// records them (an address per page, counted twice for the B-tree's slack).
    fn table_bytes(&self) -> u64 {
        self.memory.pages.len() as u64 * (PAGE_SIZE + 2 * size_of::<u64>() as u64)
    }
}
