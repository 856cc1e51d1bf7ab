//! The guest page-table walker (`ebbhv_x86::walk`) against hostile tables: the
//! input chooses the paging state, the caller's privilege, the address, the access
//! and the value of every entry the walk reads. Nothing may panic, and a walk that
//! succeeds must be one the CPU would allow: every entry it went through present
//! and free of reserved bits (no address bit at or above MAXPHYADDR, so nothing is
//! folded), U/S on every level for a user caller, R/W on every level for a write
//! the caller's mode checks, no user page for a supervisor under SMAP without
//! RFLAGS.AC, and the result the leaf's frame plus the address's offset in it,
//! below MAXPHYADDR. A buffer walk must cut the buffer into in-page pieces that
//! cover it in order, each translated as alone.
#![no_main]
#![forbid(unsafe_code)]

use std::cell::RefCell;

use ebbhv_core::addr::{GuestPhys, GuestVirt, PAGE_SIZE};
use ebbhv_x86::paging::{level_shift, PTE_ADDR, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US};
use ebbhv_x86::walk::{
    for_each_chunk, translate, Chunk, GuestPhysMemory, PagingMode, CR0_PG, CR0_WP, CR4_LA57,
    CR4_SMAP, EFER_LMA, EFER_NXE, MAX_PHYS_BITS, RFLAGS_AC,
};
use libfuzzer_sys::fuzz_target;

/// Guest RAM whose every 8-byte word is one of the input's words (the input is
/// repeated over the address space), ending where the input says. Records what a
/// walk read.
struct Tables<'a> {
    words: &'a [u8],
    ram_end: u64,
    read: RefCell<Vec<u64>>,
}

impl GuestPhysMemory for Tables<'_> {
    fn read_u64(&self, gpa: GuestPhys) -> Option<u64> {
        if gpa.0 >= self.ram_end {
            return None;
        }
        let n = self.words.len() / 8;
        let entry = match n {
            0 => 0,
            _ => {
                let i = (gpa.0 / 8 % n as u64) as usize * 8;
                u64::from_le_bytes(self.words[i..i + 8].try_into().unwrap())
            }
        };
        self.read.borrow_mut().push(entry);
        Some(entry)
    }
}

fn word(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

/// Checks one successful translation against the entries the walk read.
fn check(mode: &PagingMode, gva: GuestVirt, write: bool, gpa: GuestPhys, read: &[u64]) {
    if mode.cr0 & CR0_PG == 0 {
        assert_eq!(gpa.0, gva.0, "paging off is the identity");
        assert!(read.is_empty());
        return;
    }
    let top = gva.0 >> 47;
    assert!(
        top == 0 || top == 0x1ffff,
        "a non-canonical address translated"
    );
    assert!((1..=4).contains(&read.len()), "{} entries read", read.len());
    let bits = mode.phys_bits.clamp(12, MAX_PHYS_BITS);
    let above_maxphys = PTE_ADDR & !((1u64 << bits) - 1);
    for &e in read {
        assert!(e & PTE_P != 0, "through a not-present entry: {e:#x}");
        assert_eq!(
            e & above_maxphys,
            0,
            "address bits above MAXPHYADDR {bits}: {e:#x}"
        );
        if mode.efer & EFER_NXE == 0 {
            assert_eq!(e & PTE_NX, 0, "NX without EFER.NXE: {e:#x}");
        }
    }
    assert_eq!(read[0] & PTE_PS, 0, "PS in a PML4 entry");
    let user_all = read.iter().all(|e| e & PTE_US != 0);
    let writable_all = read.iter().all(|e| e & PTE_RW != 0);
    if mode.cpl == 3 {
        assert!(
            user_all,
            "a user walk through a supervisor entry: {read:x?}"
        );
        assert!(
            !write || writable_all,
            "a user write through a read-only entry"
        );
    } else {
        if write && mode.cr0 & CR0_WP != 0 {
            assert!(writable_all, "a kernel write through read-only with CR0.WP");
        }
        if mode.cr4 & CR4_SMAP != 0 && mode.rflags & RFLAGS_AC == 0 {
            assert!(
                !user_all,
                "a kernel reached a user page under SMAP without AC"
            );
        }
    }
    let level = 5 - read.len() as u32;
    let leaf = read[read.len() - 1];
    let mask = (1u64 << level_shift(level)) - 1;
    if level > 1 {
        assert!(leaf & PTE_PS != 0, "a walk ended early on a non-leaf");
        // Bits 13 up to the leaf's size are reserved (bit 12 is the PAT bit).
        assert_eq!(
            leaf & mask & !((1u64 << 13) - 1),
            0,
            "a misaligned large leaf"
        );
    }
    assert_eq!(gpa.0, (leaf & PTE_ADDR & !mask) | (gva.0 & mask));
    assert_eq!(gpa.0 >> bits, 0, "the result is above MAXPHYADDR");
}

fuzz_target!(|data: &[u8]| {
    // cr0 cr3 cr4 efer rflags gva (6 words), then flags, MAXPHYADDR, RAM size, length.
    if data.len() < 6 * 8 + 5 {
        return;
    }
    let (head, words) = data.split_at(6 * 8 + 5);
    let flags = head[48];
    let mut mode = PagingMode {
        cr0: word(head, 0),
        cr3: word(head, 8),
        cr4: word(head, 16),
        efer: word(head, 24),
        rflags: word(head, 32),
        cpl: flags & 3,
        // What CPUID can report in long mode (at least 36 bits): below the size of a
        // 1 GiB leaf the result could not lie under MAXPHYADDR at all.
        phys_bits: 36 + u32::from(head[49]) % 17,
    };
    // Most inputs should reach the walk itself: long mode with 4 levels, unless the
    // input asks for the rare modes.
    if flags & 0x80 == 0 {
        mode.cr0 |= CR0_PG;
        mode.efer |= EFER_LMA;
        mode.cr4 &= !CR4_LA57;
    }
    let gva = GuestVirt(word(head, 40));
    let write = flags & 4 != 0;
    let tables = Tables {
        words,
        ram_end: 1u64 << (12 + head[50] % 41),
        read: RefCell::new(Vec::new()),
    };

    let result = translate(&tables, &mode, gva, write);
    if let Ok(gpa) = result {
        check(&mode, gva, write, gpa, &tables.read.borrow());
    }

    let len = usize::from(u16::from_le_bytes([head[51], head[52]]));
    let mut next = 0usize;
    let walked = for_each_chunk(&tables, &mode, gva, len, write, &mut |c: Chunk| {
        assert_eq!(c.offset, next, "pieces out of order");
        assert!(c.len > 0 && c.gpa.page_offset() + c.len as u64 <= PAGE_SIZE);
        let va = GuestVirt(gva.0 + c.offset as u64);
        tables.read.borrow_mut().clear();
        assert_eq!(translate(&tables, &mode, va, write), Ok(c.gpa));
        next += c.len;
        Ok(())
    });
    if walked.is_ok() {
        assert_eq!(next, len, "the pieces do not cover the buffer");
    }
});
