//! Guest-virtual → guest-physical translation: the walk a hypercall needs to read
//! its arguments.
//!
//! Xen hypercall arguments are guest-virtual addresses. This walker follows the
//! guest's own page tables (read through [`GuestPhysMemory`], i.e. through the p2m)
//! in the mode the guest is in: paging off means identity, long mode means 4 levels
//! with 2 MiB and 1 GiB leaves. 32-bit paging and LA57 are not offered to the guest
//! (CPUID hides LA57; Linux PVH enters long mode before its first hypercall), so a
//! guest in them gets [`WalkError::UnsupportedMode`], i.e. `-EFAULT`.

use crate::paging::{index, level_shift, PTE_ADDR, PTE_P, PTE_PS, PTE_RW};
use ebbhv_core::addr::{GuestPhys, GuestVirt, PAGE_SIZE};

/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// CR4.LA57.
pub const CR4_LA57: u64 = 1 << 12;

/// Reading the guest's physical memory (its page tables), 8 bytes at a time.
pub trait GuestPhysMemory {
    /// The little-endian u64 at `gpa`, or `None` if the address is not guest RAM.
    fn read_u64(&self, gpa: GuestPhys) -> Option<u64>;
}

/// The guest's paging state at the time of the walk.
#[derive(Clone, Copy, Debug)]
pub struct PagingMode {
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// EFER.
    pub efer: u64,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A paging-structure entry was not present.
    NotPresent,
    /// A write through a read-only mapping with CR0.WP set.
    ReadOnly,
    /// A paging structure lies outside guest RAM.
    BadTable,
    /// The guest uses a paging mode ebbhv does not offer.
    UnsupportedMode,
    /// The address is not canonical.
    NonCanonical,
}

/// Translates `gva` for an access by the guest kernel (`write` for a write).
pub fn translate(
    mem: &dyn GuestPhysMemory,
    mode: &PagingMode,
    gva: GuestVirt,
    write: bool,
) -> Result<GuestPhys, WalkError> {
    if mode.cr0 & CR0_PG == 0 {
        return Ok(GuestPhys(gva.0));
    }
    if mode.efer & EFER_LMA == 0 || mode.cr4 & CR4_LA57 != 0 {
        return Err(WalkError::UnsupportedMode);
    }
    let top = gva.0 >> 47;
    if top != 0 && top != 0x1ffff {
        return Err(WalkError::NonCanonical);
    }
    let mut table = mode.cr3 & PTE_ADDR;
    let mut writable = true;
    for level in (1..=4).rev() {
        let entry_gpa = GuestPhys(table + index(gva.0, level) as u64 * 8);
        let e = mem.read_u64(entry_gpa).ok_or(WalkError::BadTable)?;
        if e & PTE_P == 0 {
            return Err(WalkError::NotPresent);
        }
        writable &= e & PTE_RW != 0;
        if level == 1 || (level <= 3 && e & PTE_PS != 0) {
            if write && !writable && mode.cr0 & CR0_WP != 0 {
                return Err(WalkError::ReadOnly);
            }
            let mask = (1u64 << level_shift(level)) - 1;
            return Ok(GuestPhys((e & PTE_ADDR & !mask) | (gva.0 & mask)));
        }
        table = e & PTE_ADDR;
    }
    Err(WalkError::NotPresent)
}

/// One piece of a guest-virtual buffer that lies inside one 4 KiB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Where the piece is, guest-physically.
    pub gpa: GuestPhys,
    /// Offset of the piece in the buffer.
    pub offset: usize,
    /// Its length.
    pub len: usize,
}

/// Splits the buffer `[gva, gva + len)` at page boundaries and translates each
/// piece, calling `each` in order; stops at the first failure.
pub fn for_each_chunk(
    mem: &dyn GuestPhysMemory,
    mode: &PagingMode,
    gva: GuestVirt,
    len: usize,
    write: bool,
    each: &mut dyn FnMut(Chunk) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    gva.0
        .checked_add(len as u64)
        .ok_or(WalkError::NonCanonical)?;
    let mut offset = 0usize;
    while offset < len {
        let va = GuestVirt(gva.0 + offset as u64);
        let in_page = (PAGE_SIZE - va.page_offset()) as usize;
        let piece = in_page.min(len - offset);
        let gpa = translate(mem, mode, va, write)?;
        each(Chunk {
            gpa,
            offset,
            len: piece,
        })?;
        offset += piece;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{PTE_PS, PTE_US};
    extern crate std;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    #[derive(Default)]
    struct FakeRam(BTreeMap<u64, u64>);

    impl GuestPhysMemory for FakeRam {
        fn read_u64(&self, gpa: GuestPhys) -> Option<u64> {
            if gpa.0 >= 0x100_0000 {
                return None;
            }
            Some(*self.0.get(&gpa.0).unwrap_or(&0))
        }
    }

    const P: u64 = PTE_P | PTE_RW | PTE_US;
    const LONG: PagingMode = PagingMode {
        cr0: CR0_PG | CR0_WP | 1,
        cr3: 0x1000,
        cr4: 0x20,
        efer: EFER_LMA | (1 << 8),
    };

    /// PML4 at 0x1000; gva 0xffff_8000_0000_0000 → 1 GiB leaf at 0;
    /// gva 0x40_0000 → 2 MiB leaf at 0x20_0000; gva 0x1000 → 4 KiB page 0x5000, and
    /// gva 0x2000 → read-only 4 KiB page 0x6000.
    fn tables() -> FakeRam {
        let mut m = FakeRam::default();
        m.0.insert(0x1000, 0x2000 | P); // pml4[0]
        m.0.insert(0x1000 + 256 * 8, 0x3000 | P); // pml4[256]
        m.0.insert(0x3000, PTE_PS | P); // pdpt[0] of the high half: 1 GiB at 0
        m.0.insert(0x2000, 0x4000 | P); // pdpt[0]
        m.0.insert(0x4000 + 2 * 8, 0x20_0000 | PTE_PS | P); // pd[2]: 2 MiB
        m.0.insert(0x4000, 0x7000 | P); // pd[0]
        m.0.insert(0x7000 + 8, 0x5000 | P); // pt[1]
        m.0.insert(0x7000 + 16, 0x6000 | PTE_P); // pt[2], read-only
        m
    }

    #[test]
    fn walks_all_leaf_sizes() {
        let m = tables();
        let t = |va: u64| translate(&m, &LONG, GuestVirt(va), false);
        assert_eq!(t(0x1234), Ok(GuestPhys(0x5234)));
        assert_eq!(t(0x41_2345), Ok(GuestPhys(0x21_2345)));
        assert_eq!(t(0xffff_8000_0012_3456), Ok(GuestPhys(0x12_3456)));
        assert_eq!(t(0x3000), Err(WalkError::NotPresent));
        assert_eq!(t(0x0000_8000_0000_0000), Err(WalkError::NonCanonical));
        assert_eq!(
            translate(&m, &LONG, GuestVirt(0x2000), true),
            Err(WalkError::ReadOnly)
        );
        assert_eq!(
            translate(&m, &LONG, GuestVirt(0x2000), false),
            Ok(GuestPhys(0x6000))
        );
    }

    #[test]
    fn paging_off_is_identity_and_32bit_paging_is_refused() {
        let m = tables();
        let off = PagingMode {
            cr0: 1,
            cr3: 0,
            cr4: 0,
            efer: 0,
        };
        assert_eq!(
            translate(&m, &off, GuestVirt(0x1234), true),
            Ok(GuestPhys(0x1234))
        );
        let pae32 = PagingMode { efer: 0, ..LONG };
        assert_eq!(
            translate(&m, &pae32, GuestVirt(0x1234), false),
            Err(WalkError::UnsupportedMode)
        );
    }

    #[test]
    fn buffers_crossing_pages_are_split() {
        let m = tables();
        let mut pieces = Vec::new();
        for_each_chunk(&m, &LONG, GuestVirt(0x1ff0), 0x20, false, &mut |c| {
            pieces.push(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            pieces,
            [
                Chunk {
                    gpa: GuestPhys(0x5ff0),
                    offset: 0,
                    len: 0x10
                },
                Chunk {
                    gpa: GuestPhys(0x6000),
                    offset: 0x10,
                    len: 0x10
                },
            ]
        );
        let r = for_each_chunk(&m, &LONG, GuestVirt(0x2ff0), 0x20, false, &mut |_| Ok(()));
        assert_eq!(r, Err(WalkError::NotPresent));
    }

    #[test]
    fn page_tables_outside_ram_fault() {
        let mut m = tables();
        m.0.insert(0x1000 + 8, 0x200_0000 | P); // pml4[1] → beyond RAM
        let r = translate(&m, &LONG, GuestVirt(1 << 39), false);
        assert_eq!(r, Err(WalkError::BadTable));
    }
}
