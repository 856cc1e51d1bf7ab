//! Guest-virtual → guest-physical translation: the walk a hypercall needs to read
//! its arguments, checked as the CPU would check the caller's own access.
//!
//! Xen hypercall arguments are guest-virtual addresses. This walker follows the
//! guest's own page tables (read through [`GuestPhysMemory`], i.e. through the p2m)
//! in the mode the guest is in: paging off means identity, long mode means 4 levels
//! with 2 MiB and 1 GiB leaves. 32-bit paging and LA57 are not offered to the guest
//! (CPUID hides LA57; Linux PVH enters long mode before its first hypercall), so a
//! guest in them gets [`WalkError::UnsupportedMode`], i.e. `-EFAULT`.
//!
//! The checks follow Xen's `guest_walk_tables` for a hypercall's copy to or from
//! the guest (a data access, never an instruction fetch):
//! - the address must be canonical;
//! - every entry's reserved bits must be clear: the address bits from the guest's
//!   MAXPHYADDR up to bit 51 (never folded into a smaller address), NX while
//!   EFER.NXE is off, PS in a PML4 entry, and bits 13 up to the leaf's size in a
//!   2 MiB or 1 GiB leaf (bit 12 is its PAT bit);
//! - a caller at CPL 3 needs U/S on every level, and W on every level to write;
//! - a supervisor caller (CPL 0..2) writes read-only pages only while CR0.WP is
//!   off, and reaches user pages (U/S on every level) only as SMAP allows: with
//!   CR4.SMAP on, only while RFLAGS.AC is set (Linux sets it around hypercalls
//!   whose buffers are user memory, as privcmd does). This is Xen's choice for HVM
//!   guests: a kernel buffer is always reachable, a user buffer exactly when the
//!   guest kernel itself could touch it.
//!
//! NX does not restrict a copy (it is a data access), and SMEP only concerns
//! fetches. Protection keys are not checked: hypercalls from CPL 3 are refused
//! before any walk, and a kernel's buffers sit on supervisor pages, which keys do
//! not cover.

use crate::paging::{index, level_shift, PTE_ADDR, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US};
use ebbhv_core::addr::{GuestPhys, GuestVirt, PAGE_SIZE};

/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: the NX bit of page-table entries is defined (reserved otherwise).
pub const EFER_NXE: u64 = 1 << 11;
/// CR4.LA57.
pub const CR4_LA57: u64 = 1 << 12;
/// CR4.SMAP: supervisor data accesses to user pages fault unless RFLAGS.AC.
pub const CR4_SMAP: u64 = 1 << 21;
/// RFLAGS.AC: with SMAP, lets the kernel reach user pages.
pub const RFLAGS_AC: u64 = 1 << 18;
/// The highest physical-address width 4-level paging can express (bits 12..51).
pub const MAX_PHYS_BITS: u32 = 52;

/// Reading the guest's physical memory (its page tables), 8 bytes at a time.
pub trait GuestPhysMemory {
    /// The little-endian u64 at `gpa`, or `None` if the address is not guest RAM.
    fn read_u64(&self, gpa: GuestPhys) -> Option<u64>;
}

/// The guest's paging state and the caller's privilege at the time of the walk.
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
    /// RFLAGS (AC decides SMAP).
    pub rflags: u64,
    /// The caller's privilege level (3 is user mode).
    pub cpl: u8,
    /// The guest's MAXPHYADDR (CPUID 0x80000008 EAX[7:0]); address bits from it
    /// up to bit 51 are reserved in every entry.
    pub phys_bits: u32,
}

impl PagingMode {
    /// Whether the caller runs in user mode (Xen's `PFEC_user_mode`: CPL 3).
    fn user(&self) -> bool {
        self.cpl == 3
    }

    /// The entry bits that must be clear at `level` (leaf or not).
    fn reserved_bits(&self, level: u32, leaf: bool) -> u64 {
        let bits = self.phys_bits.clamp(level_shift(1), MAX_PHYS_BITS);
        let mut reserved = PTE_ADDR & !((1u64 << bits) - 1);
        if self.efer & EFER_NXE == 0 {
            reserved |= PTE_NX;
        }
        if level == 4 {
            reserved |= PTE_PS;
        }
        if leaf && level > 1 {
            // Bits 13 up to the leaf's alignment; bit 12 is the large page's PAT.
            reserved |= ((1u64 << level_shift(level)) - 1) & !((1u64 << 13) - 1);
        }
        reserved
    }
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A paging-structure entry was not present.
    NotPresent,
    /// A write through a read-only mapping (from user mode, or with CR0.WP set).
    ReadOnly,
    /// A user-mode access to a supervisor page, or a supervisor access to a user
    /// page that SMAP forbids.
    Privilege,
    /// A paging-structure entry (or CR3) has a reserved bit set.
    Reserved,
    /// A paging structure lies outside guest RAM.
    BadTable,
    /// The guest uses a paging mode ebbhv does not offer.
    UnsupportedMode,
    /// The address is not canonical.
    NonCanonical,
}

/// Translates `gva` for a data access by the caller `mode` describes (`write`
/// for a write).
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
    if mode.cr3 & PTE_ADDR & mode.reserved_bits(1, false) != 0 {
        return Err(WalkError::Reserved);
    }
    let mut table = mode.cr3 & PTE_ADDR;
    let (mut writable, mut user) = (true, true);
    for level in (1..=4).rev() {
        let entry_gpa = GuestPhys(table + index(gva.0, level) as u64 * 8);
        let e = mem.read_u64(entry_gpa).ok_or(WalkError::BadTable)?;
        if e & PTE_P == 0 {
            return Err(WalkError::NotPresent);
        }
        let leaf = level == 1 || (level <= 3 && e & PTE_PS != 0);
        if e & mode.reserved_bits(level, leaf) != 0 {
            return Err(WalkError::Reserved);
        }
        writable &= e & PTE_RW != 0;
        user &= e & PTE_US != 0;
        if leaf {
            check_access(mode, write, writable, user)?;
            let mask = (1u64 << level_shift(level)) - 1;
            return Ok(GuestPhys((e & PTE_ADDR & !mask) | (gva.0 & mask)));
        }
        table = e & PTE_ADDR;
    }
    Err(WalkError::NotPresent)
}

/// The permission check at the leaf, with the U/S and R/W bits of all levels.
fn check_access(
    mode: &PagingMode,
    write: bool,
    writable: bool,
    user_page: bool,
) -> Result<(), WalkError> {
    if mode.user() {
        if !user_page {
            return Err(WalkError::Privilege);
        }
        if write && !writable {
            return Err(WalkError::ReadOnly);
        }
        return Ok(());
    }
    if user_page && mode.cr4 & CR4_SMAP != 0 && mode.rflags & RFLAGS_AC == 0 {
        return Err(WalkError::Privilege);
    }
    if write && !writable && mode.cr0 & CR0_WP != 0 {
        return Err(WalkError::ReadOnly);
    }
    Ok(())
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
        rflags: 0x2,
        cpl: 0,
        phys_bits: 40,
    };
    const USER: PagingMode = PagingMode { cpl: 3, ..LONG };

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
            ..LONG
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

    /// `tables()` plus: gva 0x7000 → user page 0xf000, gva 0x8000 → supervisor page 0x9000 (writable), gva 0x9000 →
    /// supervisor read-only page 0xa000, and the last canonical low page
    /// 0x7fff_ffff_f000 → 0xb000.
    fn tables_with_privilege() -> FakeRam {
        let mut m = tables();
        m.0.insert(0x7000 + 7 * 8, 0xf000 | P); // pt[7]: user
        m.0.insert(0x7000 + 8 * 8, 0x9000 | PTE_P | PTE_RW); // pt[8]: supervisor
        m.0.insert(0x7000 + 9 * 8, 0xa000 | PTE_P); // pt[9]: supervisor, read-only
        m.0.insert(0x7000 + 10 * 8, 0x6000 | PTE_P | PTE_US); // pt[10]: user, read-only
        m.0.insert(0x1000 + 255 * 8, 0xc000 | P); // pml4[255]
        m.0.insert(0xc000 + 511 * 8, 0xd000 | P); // pdpt[511]
        m.0.insert(0xd000 + 511 * 8, 0xe000 | P); // pd[511]
        m.0.insert(0xe000 + 511 * 8, 0xb000 | P); // pt[511]
        m
    }

    #[test]
    fn user_mode_needs_user_pages_and_write_permission() {
        let m = tables_with_privilege();
        let t = |mode: &PagingMode, va: u64, write: bool| translate(&m, mode, GuestVirt(va), write);
        assert_eq!(t(&USER, 0x8010, false), Err(WalkError::Privilege));
        assert_eq!(t(&USER, 0x8010, true), Err(WalkError::Privilege));
        assert_eq!(t(&LONG, 0x8010, true), Ok(GuestPhys(0x9010)));
        assert_eq!(t(&USER, 0x1010, true), Ok(GuestPhys(0x5010)));
        // A user write to a read-only page faults whatever CR0.WP says.
        let user_no_wp = PagingMode {
            cr0: USER.cr0 & !CR0_WP,
            ..USER
        };
        assert_eq!(t(&user_no_wp, 0xa000, true), Err(WalkError::ReadOnly));
        assert_eq!(t(&user_no_wp, 0xa000, false), Ok(GuestPhys(0x6000)));
    }

    #[test]
    fn a_user_bit_missing_at_an_upper_level_makes_the_page_supervisor() {
        let mut m = tables();
        m.0.insert(0x4000, 0x7000 | PTE_P | PTE_RW); // pd[0] without U/S
        let r = translate(&m, &USER, GuestVirt(0x1000), false);
        assert_eq!(r, Err(WalkError::Privilege));
        assert_eq!(
            translate(&m, &LONG, GuestVirt(0x1000), false),
            Ok(GuestPhys(0x5000))
        );
    }

    #[test]
    fn supervisor_writes_to_read_only_pages_follow_cr0_wp() {
        let m = tables_with_privilege();
        let no_wp = PagingMode {
            cr0: LONG.cr0 & !CR0_WP,
            ..LONG
        };
        let r = translate(&m, &LONG, GuestVirt(0x9000), true);
        assert_eq!(r, Err(WalkError::ReadOnly));
        let r = translate(&m, &no_wp, GuestVirt(0x9000), true);
        assert_eq!(r, Ok(GuestPhys(0xa000)));
    }

    #[test]
    fn smap_keeps_the_kernel_from_user_pages_unless_ac_is_set() {
        let m = tables_with_privilege();
        let smap = PagingMode {
            cr4: LONG.cr4 | CR4_SMAP,
            ..LONG
        };
        let smap_ac = PagingMode {
            rflags: LONG.rflags | RFLAGS_AC,
            ..smap
        };
        let t = |mode: &PagingMode, va: u64| translate(&m, mode, GuestVirt(va), false);
        assert_eq!(t(&smap, 0x1000), Err(WalkError::Privilege));
        assert_eq!(t(&smap_ac, 0x1000), Ok(GuestPhys(0x5000)));
        assert_eq!(t(&smap, 0x8000), Ok(GuestPhys(0x9000)));
        assert_eq!(t(&LONG, 0x1000), Ok(GuestPhys(0x5000)));
    }

    #[test]
    fn address_bits_above_maxphyaddr_are_reserved_never_folded() {
        let mut m = tables();
        let t = |m: &FakeRam, mode: &PagingMode| translate(m, mode, GuestVirt(0x1000), false);
        // Bits 48..51 of a leaf: with a 48-bit MAXPHYADDR they are reserved.
        m.0.insert(0x7000 + 8, (1 << 48) | 0x5000 | P);
        let wide = PagingMode {
            phys_bits: 48,
            ..LONG
        };
        assert_eq!(t(&m, &wide), Err(WalkError::Reserved));
        assert_eq!(t(&m, &LONG), Err(WalkError::Reserved));
        // Bit 40 with a 40-bit MAXPHYADDR, and the same in a table (non-leaf) entry.
        m.0.insert(0x7000 + 8, (1 << 40) | 0x5000 | P);
        assert_eq!(t(&m, &LONG), Err(WalkError::Reserved));
        assert_eq!(t(&m, &wide), Ok(GuestPhys((1 << 40) | 0x5000)));
        let mut m = tables();
        m.0.insert(0x4000, (1 << 51) | 0x7000 | P);
        assert_eq!(t(&m, &LONG), Err(WalkError::Reserved));
        let high_cr3 = PagingMode {
            cr3: (1 << 45) | 0x1000,
            ..LONG
        };
        assert_eq!(t(&tables(), &high_cr3), Err(WalkError::Reserved));
    }

    #[test]
    fn nx_is_reserved_without_efer_nxe_and_no_bar_to_a_data_copy_with_it() {
        let mut m = tables();
        m.0.insert(0x7000 + 8, PTE_NX | 0x5000 | P);
        let t = |mode: &PagingMode| translate(&m, mode, GuestVirt(0x1000), true);
        assert_eq!(t(&LONG), Err(WalkError::Reserved));
        let nxe = PagingMode {
            efer: LONG.efer | EFER_NXE,
            ..LONG
        };
        assert_eq!(t(&nxe), Ok(GuestPhys(0x5000)));
    }

    #[test]
    fn large_leaves_and_pml4_entries_have_their_own_reserved_bits() {
        let t = |m: &FakeRam, va: u64| translate(m, &LONG, GuestVirt(va), false);
        let mut m = tables();
        m.0.insert(0x4000 + 2 * 8, 0x20_0000 | (1 << 13) | PTE_PS | P);
        assert_eq!(t(&m, 0x40_0000), Err(WalkError::Reserved));
        // Bit 12 of a 2 MiB leaf is its PAT bit, not an address bit.
        m.0.insert(0x4000 + 2 * 8, 0x20_0000 | (1 << 12) | PTE_PS | P);
        assert_eq!(t(&m, 0x40_0010), Ok(GuestPhys(0x20_0010)));
        let mut m = tables();
        m.0.insert(0x3000, (1 << 29) | PTE_PS | P);
        assert_eq!(t(&m, 0xffff_8000_0000_0000), Err(WalkError::Reserved));
        let mut m = tables();
        m.0.insert(0x1000, 0x2000 | PTE_PS | P);
        assert_eq!(t(&m, 0x1000), Err(WalkError::Reserved));
    }

    #[test]
    fn page_crossing_buffers_are_checked_page_by_page() {
        let m = tables_with_privilege();
        let mut seen = Vec::new();
        // From user mode: the first page is the user's, the second the kernel's.
        let r = for_each_chunk(&m, &USER, GuestVirt(0x7ff8), 0x10, false, &mut |c| {
            seen.push(c.gpa);
            Ok(())
        });
        assert_eq!(r, Err(WalkError::Privilege));
        assert_eq!(seen, [GuestPhys(0xfff8)]);
        seen.clear();
        // A kernel write that runs from a writable page into a read-only one.
        let r = for_each_chunk(&m, &LONG, GuestVirt(0x8ff8), 0x10, true, &mut |c| {
            seen.push(c.gpa);
            Ok(())
        });
        assert_eq!(r, Err(WalkError::ReadOnly));
        assert_eq!(seen, [GuestPhys(0x9ff8)]);
        // A buffer that runs from the last canonical low page past the hole.
        seen.clear();
        let r = for_each_chunk(
            &m,
            &LONG,
            GuestVirt(0x7fff_ffff_fff8),
            0x10,
            false,
            &mut |c| {
                seen.push(c.gpa);
                Ok(())
            },
        );
        assert_eq!(r, Err(WalkError::NonCanonical));
        assert_eq!(seen, [GuestPhys(0xbff8)]);
        let r = for_each_chunk(&m, &LONG, GuestVirt(u64::MAX - 4), 0x10, false, &mut |_| {
            Ok(())
        });
        assert_eq!(r, Err(WalkError::NonCanonical));
    }
}
