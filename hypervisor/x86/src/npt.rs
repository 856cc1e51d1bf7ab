//! Nested page tables as a mirror of the p2m: map a leaf, drop a range of leaves.
//!
//! The tables decide nothing: `ebbhv` replays the core's p2m changes into them
//! (`ebbhv_core::p2m::P2mMirror`). Table pages come from, and go back to, a
//! [`TableMemory`] (the hypervisor's frame heap in the image, a vector in tests), so
//! the walking logic here is tested on the host.
//!
//! Leaves are present, user (the NPT walk is a user access), accessed and dirty (so
//! the CPU never has to write them back), and writable unless the caller says
//! otherwise. Intermediate entries allow everything; the leaf decides.

use crate::paging::{
    index, level_shift, LeafSize, ENTRIES, PTE_A, PTE_ADDR, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US,
};
use ebbhv_core::addr::{GuestPhys, HostPhys};

/// Storage for table pages.
pub trait TableMemory {
    /// A zeroed 4 KiB table page, or `None` when memory is exhausted.
    fn alloc_table(&mut self) -> Option<HostPhys>;
    /// Gives back a page from [`TableMemory::alloc_table`] (all entries zero).
    fn free_table(&mut self, table: HostPhys);
    /// Reads entry `index` of `table`.
    fn read(&self, table: HostPhys, index: usize) -> u64;
    /// Writes entry `index` of `table`.
    fn write(&mut self, table: HostPhys, index: usize, value: u64);
}

/// Why a leaf could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NptError {
    /// No page for an intermediate table.
    NoMemory,
    /// The addresses are not aligned to the leaf size.
    Misaligned,
    /// A larger leaf already covers the address (the caller must unmap first).
    Occupied,
    /// The leaf would give the guest memory it may not reach (the platform's
    /// check, outside the tree logic).
    Forbidden,
}

/// A 4-level nested page table tree.
///
/// # Invariants
///
/// `root` is a table page from the tree's [`TableMemory`]; every non-leaf entry
/// points to a table page of the same memory that only this tree references.
pub struct NestedTables {
    root: HostPhys,
}

const TABLE_FLAGS: u64 = PTE_P | PTE_RW | PTE_US;

impl NestedTables {
    /// An empty tree (maps nothing).
    pub fn new(mem: &mut dyn TableMemory) -> Result<NestedTables, NptError> {
        let root = mem.alloc_table().ok_or(NptError::NoMemory)?;
        // INVARIANT: the root is a fresh, zeroed table page.
        Ok(NestedTables { root })
    }

    /// The root table, for the VMCB's `n_cr3`.
    pub fn root(&self) -> HostPhys {
        self.root
    }

    /// Installs one leaf mapping `gpa` to `hpa`. A smaller-leaf subtree already
    /// at that place must be empty (the p2m mirror protocol unmaps first); it is
    /// freed.
    pub fn map(
        &mut self,
        mem: &mut dyn TableMemory,
        gpa: GuestPhys,
        hpa: HostPhys,
        size: LeafSize,
        writable: bool,
    ) -> Result<(), NptError> {
        if !gpa.0.is_multiple_of(size.bytes()) || !hpa.0.is_multiple_of(size.bytes()) {
            return Err(NptError::Misaligned);
        }
        let mut table = self.root;
        let mut level = 4;
        while level > size.level() {
            let i = index(gpa.0, level);
            let e = mem.read(table, i);
            table = if e & PTE_P == 0 {
                let t = mem.alloc_table().ok_or(NptError::NoMemory)?;
                mem.write(table, i, t.0 | TABLE_FLAGS);
                t
            } else if e & PTE_PS != 0 {
                return Err(NptError::Occupied);
            } else {
                HostPhys(e & PTE_ADDR)
            };
            level -= 1;
        }
        let i = index(gpa.0, level);
        let old = mem.read(table, i);
        if level > 1 && old & PTE_P != 0 && old & PTE_PS == 0 {
            free_subtree(mem, HostPhys(old & PTE_ADDR), level - 1);
        }
        let mut leaf = hpa.0 | PTE_P | PTE_US | PTE_A | PTE_D;
        if writable {
            leaf |= PTE_RW;
        }
        if level > 1 {
            leaf |= PTE_PS;
        }
        mem.write(table, i, leaf);
        Ok(())
    }

    /// Clears every leaf inside `[start, end)`. Leaves that straddle the ends are
    /// cleared too (the p2m only hands out ranges of whole leaves). A table left
    /// with no entry is freed (the root stays): the tree holds no more table pages
    /// than its leaves need, so a guest that maps and unmaps frames all over its
    /// address space cannot make it grow.
    pub fn unmap(&mut self, mem: &mut dyn TableMemory, start: GuestPhys, end: GuestPhys) {
        unmap_level(mem, self.root, 4, 0, start.0, end.0);
    }

    /// Translates `gpa` as the CPU would: the host address and whether it is
    /// writable. An address at or above 2^48, which 4 levels cannot index, maps
    /// to nothing (its high bits are never dropped to land on a lower page).
    pub fn translate(&self, mem: &dyn TableMemory, gpa: GuestPhys) -> Option<(HostPhys, bool)> {
        if gpa.0 >> level_shift(5) != 0 {
            return None;
        }
        let mut table = self.root;
        for level in (1..=4).rev() {
            let e = mem.read(table, index(gpa.0, level));
            if e & PTE_P == 0 {
                return None;
            }
            if level == 1 || e & PTE_PS != 0 {
                let mask = (1u64 << level_shift(level)) - 1;
                return Some((
                    HostPhys((e & PTE_ADDR & !mask) | (gpa.0 & mask)),
                    e & PTE_RW != 0,
                ));
            }
            table = HostPhys(e & PTE_ADDR);
        }
        None
    }
}

fn free_subtree(mem: &mut dyn TableMemory, table: HostPhys, level: u32) {
    for i in 0..ENTRIES {
        let e = mem.read(table, i);
        if e & PTE_P != 0 {
            if level > 1 && e & PTE_PS == 0 {
                free_subtree(mem, HostPhys(e & PTE_ADDR), level - 1);
            }
            mem.write(table, i, 0);
        }
    }
    mem.free_table(table);
}

/// Clears the leaves of `table` (at `level`, mapping from `base`) inside
/// `[start, end)`, freeing the tables below it that this leaves empty. Returns
/// whether `table` itself is left empty.
fn unmap_level(
    mem: &mut dyn TableMemory,
    table: HostPhys,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
) -> bool {
    let span = 1u64 << level_shift(level);
    let mut empty = true;
    for i in 0..ENTRIES {
        let lo = base + i as u64 * span;
        let hi = lo.saturating_add(span);
        let e = mem.read(table, i);
        if e & PTE_P == 0 {
            continue;
        }
        if hi <= start || lo >= end {
            empty = false;
            continue;
        }
        if level == 1 || e & PTE_PS != 0 {
            mem.write(table, i, 0);
        } else if start <= lo && hi <= end {
            free_subtree(mem, HostPhys(e & PTE_ADDR), level - 1);
            mem.write(table, i, 0);
        } else if unmap_level(mem, HostPhys(e & PTE_ADDR), level - 1, lo, start, end) {
            mem.write(table, i, 0);
            mem.free_table(HostPhys(e & PTE_ADDR));
        } else {
            empty = false;
        }
    }
    empty
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VecTables;
    use ebbhv_core::addr::{Gfn, Mfn};

    #[test]
    fn maps_translates_and_unmaps_all_sizes() {
        let mut mem = VecTables::default();
        let mut t = NestedTables::new(&mut mem).unwrap();
        t.map(
            &mut mem,
            GuestPhys(0x1000),
            HostPhys(0x80_0000),
            LeafSize::Size4K,
            true,
        )
        .unwrap();
        t.map(
            &mut mem,
            GuestPhys(0x20_0000),
            HostPhys(0x4000_0000),
            LeafSize::Size2M,
            false,
        )
        .unwrap();
        t.map(
            &mut mem,
            GuestPhys(0x4000_0000),
            HostPhys(0x8000_0000),
            LeafSize::Size1G,
            true,
        )
        .unwrap();
        assert_eq!(
            t.translate(&mem, GuestPhys(0x1234)),
            Some((HostPhys(0x80_0234), true))
        );
        assert_eq!(
            t.translate(&mem, GuestPhys(0x2f_f008)),
            Some((HostPhys(0x400f_f008), false))
        );
        assert_eq!(
            t.translate(&mem, GuestPhys(0x4123_4567)),
            Some((HostPhys(0x8123_4567), true))
        );
        assert_eq!(t.translate(&mem, GuestPhys(0x2000)), None);
        // Bits 48..51 set: no folding onto the page at 0x1000.
        assert_eq!(t.translate(&mem, GuestPhys((1 << 48) | 0x1234)), None);
        assert_eq!(t.translate(&mem, GuestPhys((0xf << 48) | 0x1234)), None);
        let leaf = mem.read(t.root(), 0);
        assert_ne!(leaf & PTE_US, 0, "nested entries need U=1");

        t.unmap(&mut mem, GuestPhys(0x20_0000), GuestPhys(0x40_0000));
        assert_eq!(t.translate(&mem, GuestPhys(0x20_0000)), None);
        assert_eq!(
            t.translate(&mem, GuestPhys(0x1000)),
            Some((HostPhys(0x80_0000), true))
        );
        assert_eq!(
            t.map(
                &mut mem,
                GuestPhys(0x1000),
                HostPhys(0x1),
                LeafSize::Size4K,
                true
            ),
            Err(NptError::Misaligned)
        );
        assert_eq!(
            t.map(
                &mut mem,
                GuestPhys(0x4000_1000),
                HostPhys(0x1000),
                LeafSize::Size4K,
                true
            ),
            Err(NptError::Occupied)
        );
    }

    #[test]
    fn superpage_replaces_an_emptied_subtree() {
        let mut mem = VecTables::default();
        let mut t = NestedTables::new(&mut mem).unwrap();
        for i in 0..512u64 {
            t.map(
                &mut mem,
                Gfn(i).addr(),
                Mfn(0x200 + i).addr(),
                LeafSize::Size4K,
                true,
            )
            .unwrap();
        }
        let tables = mem.live();
        t.unmap(&mut mem, GuestPhys(0), GuestPhys(0x20_0000));
        assert!(mem.live() < tables, "the emptied level-1 table is freed");
        t.map(
            &mut mem,
            GuestPhys(0),
            HostPhys(0x20_0000),
            LeafSize::Size2M,
            true,
        )
        .unwrap();
        assert_eq!(
            t.translate(&mem, GuestPhys(0x1_2345)),
            Some((HostPhys(0x21_2345), true))
        );
    }

    #[test]
    fn unmapping_leaf_by_leaf_frees_the_emptied_tables() {
        let mut mem = VecTables::default();
        let mut t = NestedTables::new(&mut mem).unwrap();
        // Two 4 KiB leaves in one level-1 table, one far away (its own level-3,
        // level-2 and level-1 tables), and a 2 MiB leaf beside the first.
        let leaves = [(0x1000, 0x5000), (0x2000, 0x6000), (0x80_0000_0000, 0x7000)];
        for &(gpa, hpa) in &leaves {
            t.map(
                &mut mem,
                GuestPhys(gpa),
                HostPhys(hpa),
                LeafSize::Size4K,
                true,
            )
            .unwrap();
        }
        t.map(
            &mut mem,
            GuestPhys(0x20_0000),
            HostPhys(0x20_0000),
            LeafSize::Size2M,
            true,
        )
        .unwrap();
        assert_eq!(mem.live(), 1 + 3 + 3);
        t.unmap(&mut mem, GuestPhys(0x1000), GuestPhys(0x2000));
        assert_eq!(mem.live(), 7, "the level-1 table still has a leaf");
        t.unmap(&mut mem, GuestPhys(0x2000), GuestPhys(0x3000));
        assert_eq!(mem.live(), 6, "the emptied level-1 table is freed");
        t.unmap(
            &mut mem,
            GuestPhys(0x80_0000_0000),
            GuestPhys(0x80_0000_1000),
        );
        assert_eq!(mem.live(), 3, "the far leaf's three tables are freed");
        t.unmap(&mut mem, GuestPhys(0x20_0000), GuestPhys(0x40_0000));
        assert_eq!(mem.live(), 1, "only the root is left");
        assert_eq!(t.translate(&mem, GuestPhys(0x20_0000)), None);
    }
}
