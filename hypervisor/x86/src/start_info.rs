//! `hvm_start_info`: the PVH boot protocol, in both directions.
//!
//! QEMU's PVH loader hands ebbhv one (version 1, with an e820-style memory map, the
//! command line and the `-initrd` module), and ebbhv builds one for its guest. The
//! layouts follow Xen's `public/arch-x86/hvm/start_info.h` (also Linux's
//! `include/xen/interface/hvm/start_info.h`).

use ebbhv_core::abi_struct;
use ebbhv_core::addr::GuestPhys;

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const START_MAGIC: u32 = 0x336e_c578;

/// e820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// e820 type: ACPI tables (reclaimable).
pub const E820_ACPI: u32 = 3;

abi_struct! {
    /// `struct hvm_start_info` (56 bytes).
    pub struct HvmStartInfo(56) {
        /// [`START_MAGIC`].
        magic: u32 = 0,
        /// Version of the structure: 1 has the memory map.
        version: u32 = 4,
        /// `SIF_*` flags.
        flags: u32 = 8,
        /// Entries in the module list.
        nr_modules: u32 = 12,
        /// Physical address of the module list.
        modlist_paddr: u64 = 16,
        /// Physical address of the NUL-terminated command line.
        cmdline_paddr: u64 = 24,
        /// Physical address of the ACPI RSDP.
        rsdp_paddr: u64 = 32,
        /// Physical address of the memory map (version 1).
        memmap_paddr: u64 = 40,
        /// Entries in the memory map (version 1).
        memmap_entries: u32 = 48,
        /// Must be zero.
        reserved: u32 = 52,
    }
}

abi_struct! {
    /// `struct hvm_modlist_entry` (32 bytes).
    pub struct HvmModlistEntry(32) {
        /// Physical address of the module.
        paddr: u64 = 0,
        /// Size in bytes.
        size: u64 = 8,
        /// Physical address of the module's command line, or 0.
        cmdline_paddr: u64 = 16,
        /// Must be zero.
        reserved: u64 = 24,
    }
}

abi_struct! {
    /// `struct hvm_memmap_table_entry` (24 bytes).
    pub struct HvmMemmapEntry(24) {
        /// Start address.
        addr: u64 = 0,
        /// Length in bytes.
        size: u64 = 8,
        /// e820 type.
        kind: u32 = 16,
        /// Must be zero.
        reserved: u32 = 20,
    }
}

/// Where the pieces go inside the one page that [`build`] fills.
const MODLIST_OFFSET: usize = 64;
const MAX_MODULES: usize = 4;
const MEMMAP_OFFSET: usize = MODLIST_OFFSET + MAX_MODULES * HvmModlistEntry::SIZE;
/// Entries that fit before the command line.
pub const MAX_MEMMAP: usize = (CMDLINE_OFFSET - MEMMAP_OFFSET) / HvmMemmapEntry::SIZE;
const CMDLINE_OFFSET: usize = 1024;
/// Bytes one start-info page needs.
pub const PAGE_BYTES: usize = 4096;

/// Why a start-info page could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// More modules than fit.
    TooManyModules,
    /// More memory-map entries than fit.
    MemmapTooLong,
    /// The command line (with its NUL) does not fit.
    CmdlineTooLong,
    /// The output buffer is smaller than [`PAGE_BYTES`].
    ShortBuffer,
}

/// A module for the guest (module 0 is Linux's initrd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// Where it was loaded.
    pub addr: GuestPhys,
    /// Its size in bytes.
    pub size: u64,
}

/// What goes into the guest's start info.
pub struct BootInfo<'a> {
    /// Guest-physical address of the page [`build`] fills.
    pub base: GuestPhys,
    /// The guest's memory map.
    pub memmap: &'a [HvmMemmapEntry],
    /// The kernel command line, without a NUL.
    pub cmdline: &'a [u8],
    /// The modules.
    pub modules: &'a [Module],
    /// Guest-physical address of the RSDP.
    pub rsdp: GuestPhys,
}

/// Fills `out` (one page that the guest will see at `info.base`) with an
/// `hvm_start_info` v1 and everything it points to. The start info itself is at
/// offset 0, so EBX at entry is `info.base`.
pub fn build(info: &BootInfo<'_>, out: &mut [u8]) -> Result<(), BuildError> {
    let Some(page) = out.first_chunk_mut::<PAGE_BYTES>() else {
        return Err(BuildError::ShortBuffer);
    };
    if info.modules.len() > MAX_MODULES {
        return Err(BuildError::TooManyModules);
    }
    if info.memmap.len() > MAX_MEMMAP {
        return Err(BuildError::MemmapTooLong);
    }
    if info.cmdline.len() + 1 > PAGE_BYTES - CMDLINE_OFFSET {
        return Err(BuildError::CmdlineTooLong);
    }
    page.fill(0);
    let at = |off: usize| info.base.0 + off as u64;
    let si = HvmStartInfo {
        magic: START_MAGIC,
        version: 1,
        flags: 0,
        nr_modules: info.modules.len() as u32,
        modlist_paddr: if info.modules.is_empty() {
            0
        } else {
            at(MODLIST_OFFSET)
        },
        cmdline_paddr: at(CMDLINE_OFFSET),
        rsdp_paddr: info.rsdp.0,
        memmap_paddr: at(MEMMAP_OFFSET),
        memmap_entries: info.memmap.len() as u32,
        reserved: 0,
    };
    si.write_to(page);
    // The counts were checked above, so every module, memmap entry and byte of the
    // command line has its slot (the NUL after the command line is the fill's).
    let slots = page[MODLIST_OFFSET..MEMMAP_OFFSET].chunks_exact_mut(HvmModlistEntry::SIZE);
    for (m, slot) in info.modules.iter().zip(slots) {
        let e = HvmModlistEntry {
            paddr: m.addr.0,
            size: m.size,
            ..Default::default()
        };
        e.write_to(slot);
    }
    let slots = page[MEMMAP_OFFSET..CMDLINE_OFFSET].chunks_exact_mut(HvmMemmapEntry::SIZE);
    for (e, slot) in info.memmap.iter().zip(slots) {
        e.write_to(slot);
    }
    for (dst, src) in page[CMDLINE_OFFSET..].iter_mut().zip(info.cmdline) {
        *dst = *src;
    }
    Ok(())
}

/// Checks the start info that the firmware (QEMU's PVH loader) handed over.
pub fn parse(b: &[u8]) -> Option<HvmStartInfo> {
    HvmStartInfo::read_from(b).filter(|si| si.magic == START_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_v1_page_that_parses_back() {
        let memmap = [
            HvmMemmapEntry {
                addr: 0,
                size: 0xa0000,
                kind: E820_RAM,
                reserved: 0,
            },
            HvmMemmapEntry {
                addr: 0x100000,
                size: 0x7f00000,
                kind: E820_RAM,
                reserved: 0,
            },
        ];
        let modules = [Module {
            addr: GuestPhys(0x400_0000),
            size: 1234,
        }];
        let info = BootInfo {
            base: GuestPhys(0xf000),
            memmap: &memmap,
            cmdline: b"console=hvc0",
            modules: &modules,
            rsdp: GuestPhys(0xe0000),
        };
        let mut page = [0xffu8; PAGE_BYTES];
        build(&info, &mut page).unwrap();
        let si = parse(&page).unwrap();
        assert_eq!(si.version, 1);
        assert_eq!(si.nr_modules, 1);
        assert_eq!(si.rsdp_paddr, 0xe0000);
        assert_eq!(si.memmap_entries, 2);
        let mm = (si.memmap_paddr - 0xf000) as usize;
        assert_eq!(
            HvmMemmapEntry::read_from(&page[mm + 24..]).unwrap(),
            memmap[1]
        );
        let ml = (si.modlist_paddr - 0xf000) as usize;
        assert_eq!(
            HvmModlistEntry::read_from(&page[ml..]).unwrap().paddr,
            0x400_0000
        );
        let cl = (si.cmdline_paddr - 0xf000) as usize;
        assert_eq!(&page[cl..cl + 13], b"console=hvc0\0");
    }

    #[test]
    fn rejects_what_does_not_fit() {
        let mut page = [0u8; PAGE_BYTES];
        let long = [b'x'; PAGE_BYTES];
        let info = BootInfo {
            base: GuestPhys(0),
            memmap: &[],
            cmdline: &long,
            modules: &[],
            rsdp: GuestPhys(0),
        };
        assert_eq!(build(&info, &mut page), Err(BuildError::CmdlineTooLong));
        assert_eq!(build(&info, &mut page[..100]), Err(BuildError::ShortBuffer));
        assert!(parse(&[0u8; 56]).is_none());
    }
}
