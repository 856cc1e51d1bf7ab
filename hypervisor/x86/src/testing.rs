//! A host stand-in for the nested page tables' memory, for the tests of this
//! crate, the `npt` fuzz target and whoever else checks the real tree on the host
//! (the `testing` feature; the image never enables it).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use ebbhv_core::addr::{GuestPhys, HostPhys, PAGE_SIZE};

use crate::npt::{NestedTables, NptError, TableMemory};
use crate::npt_mirror::NptTree;
use crate::paging::{level_shift, LeafSize, ENTRIES, PTE_ADDR, PTE_P, PTE_PS, PTE_RW};

/// Table pages in a map keyed by a made-up host address; freeing a page that
/// still has an entry panics, as does touching a page that is not live.
#[derive(Default)]
pub struct VecTables {
    pages: BTreeMap<u64, Vec<u64>>,
    next: u64,
    freed: usize,
}

impl VecTables {
    /// Table pages live now.
    pub fn live(&self) -> usize {
        self.pages.len()
    }

    /// Table pages freed so far.
    pub fn freed(&self) -> usize {
        self.freed
    }
}

impl TableMemory for VecTables {
    fn alloc_table(&mut self) -> Option<HostPhys> {
        self.next += PAGE_SIZE;
        self.pages.insert(self.next, vec![0; ENTRIES]);
        Some(HostPhys(self.next))
    }

    fn free_table(&mut self, table: HostPhys) {
        let page = self
            .pages
            .remove(&table.0)
            .expect("only live table pages are freed");
        assert!(page.iter().all(|&e| e == 0), "freed a non-empty table");
        self.freed += 1;
    }

    fn read(&self, table: HostPhys, index: usize) -> u64 {
        self.pages[&table.0][index]
    }

    fn write(&mut self, table: HostPhys, index: usize, value: u64) {
        self.pages
            .get_mut(&table.0)
            .expect("only live table pages are written")[index] = value;
    }
}

/// One leaf of a [`HostNpt`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Leaf {
    /// The first guest-physical address it maps.
    pub gpa: GuestPhys,
    /// The host address it maps that to.
    pub hpa: HostPhys,
    /// Its size.
    pub size: LeafSize,
    /// Whether the guest may write through it.
    pub writable: bool,
}

/// A [`NestedTables`] tree over [`VecTables`], as the image's `Npt` is one over
/// its heap (without the image's guest-frame pool check: the host has no pool).
pub struct HostNpt {
    tables: NestedTables,
    memory: VecTables,
}

impl Default for HostNpt {
    fn default() -> HostNpt {
        let mut memory = VecTables::default();
        let tables = NestedTables::new(&mut memory).expect("vector memory never runs out");
        HostNpt { tables, memory }
    }
}

impl HostNpt {
    /// The host address of `gpa` and whether the guest may write it.
    pub fn translate(&self, gpa: GuestPhys) -> Option<(HostPhys, bool)> {
        self.tables.translate(&self.memory, gpa)
    }

    /// Every leaf of the tree in guest order: where it maps from and to, its size
    /// and whether it is writable (a whole-tree comparison costs one read per
    /// entry instead of a walk per frame).
    pub fn leaves(&self) -> Vec<Leaf> {
        let mut leaves = Vec::new();
        self.collect(self.tables.root(), 4, 0, &mut leaves);
        leaves
    }

    fn collect(&self, table: HostPhys, level: u32, base: u64, leaves: &mut Vec<Leaf>) {
        for i in 0..ENTRIES {
            let e = self.memory.read(table, i);
            if e & PTE_P == 0 {
                continue;
            }
            let gpa = base + ((i as u64) << level_shift(level));
            let size = match level {
                1 => LeafSize::Size4K,
                2 if e & PTE_PS != 0 => LeafSize::Size2M,
                3 if e & PTE_PS != 0 => LeafSize::Size1G,
                _ => {
                    self.collect(HostPhys(e & PTE_ADDR), level - 1, gpa, leaves);
                    continue;
                }
            };
            leaves.push(Leaf {
                gpa: GuestPhys(gpa),
                hpa: HostPhys(e & PTE_ADDR & !(size.bytes() - 1)),
                size,
                writable: e & PTE_RW != 0,
            });
        }
    }

    /// Table pages the tree holds, its root included.
    pub fn table_pages(&self) -> usize {
        self.memory.live()
    }
}

impl NptTree for HostNpt {
    fn map(
        &mut self,
        gpa: GuestPhys,
        hpa: HostPhys,
        size: LeafSize,
        writable: bool,
    ) -> Result<(), NptError> {
        self.tables.map(&mut self.memory, gpa, hpa, size, writable)
    }

    fn unmap(&mut self, start: GuestPhys, end: GuestPhys) {
        self.tables.unmap(&mut self.memory, start, end);
    }

    fn table_bytes(&self) -> u64 {
        self.memory.live() as u64 * PAGE_SIZE
    }
}
