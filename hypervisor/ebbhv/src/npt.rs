//! The guest's nested page tables, kept equal to its p2m in `ebbhv-core`.
//!
//! Table pages are [`Pages`] from ebbhv's own allocator, leaked while the hardware
//! may walk them and taken back when the tree frees them. The tree logic is
//! `ebbhv_x86::npt`, tested on the host; this file only supplies the memory.

use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::npt::{NestedTables, TableMemory};

use crate::heap::Pages;
use crate::phys;

/// Table pages from the hypervisor allocator.
pub struct HeapTables;

impl TableMemory for HeapTables {
    fn alloc_table(&mut self) -> Option<HostPhys> {
        Pages::new(1).map(Pages::leak)
    }

    fn free_table(&mut self, table: HostPhys) {
        // SAFETY: the tree frees only tables it got from `alloc_table` (a leaked
        // one-page `Pages`), once, after unlinking them; the caller flushes the guest
        // TLB before the guest runs again.
        drop(unsafe { Pages::from_leaked(table, 1) });
    }

    fn read(&self, table: HostPhys, index: usize) -> u64 {
        // SAFETY: `table` is a live table page owned by the tree; nothing else writes
        // it while the hypervisor runs (the guest is stopped).
        let b = unsafe { phys::slice(HostPhys(table.0 + index as u64 * 8), 8) };
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    fn write(&mut self, table: HostPhys, index: usize, value: u64) {
        // SAFETY: as in `read`; `&mut self` serialises writers.
        let b = unsafe { phys::slice_mut(HostPhys(table.0 + index as u64 * 8), 8) };
        b.copy_from_slice(&value.to_le_bytes());
    }
}

/// The nested page tables of one guest.
pub struct Npt {
    /// The tree.
    pub tables: NestedTables,
}

impl Npt {
    /// An empty tree.
    pub fn new() -> Npt {
        Npt {
            tables: NestedTables::new(&mut HeapTables).expect("hypervisor memory for the NPT root"),
        }
    }

    /// The root for the VMCB.
    pub fn root(&self) -> HostPhys {
        self.tables.root()
    }
}
