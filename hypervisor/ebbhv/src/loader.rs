//! Building the PVH domain: the core creates the domain and populates its RAM, then
//! the loader writes the vmlinux segments, the initramfs, the ACPI tables and the
//! start info into it, and hands back the entry state.
//!
//! Guest-physical layout (RAM from 0, populated by the core in the largest pages
//! that fit):
//!
//! | range | e820 | what |
//! |---|---|---|
//! | 0 – 0xA0000 | RAM | zero-filled, private low memory (Linux's trampoline) |
//! | 0xA0000 – 0x100000 | reserved | ACPI tables at 0xE0000, start info at 0xE1000, xenstore ring at 0xFE000 ([`crate::store`]) |
//! | 0x100000 – memory | RAM | vmlinux at its PT_LOAD addresses (16 MiB), initramfs at the top |

use alloc::vec;
use alloc::vec::Vec;

use ebbhv_core::abi::memory::{E820Entry, E820_RAM, E820_RESERVED};
use ebbhv_core::addr::GuestPhys;
use ebbhv_core::addr::{frames_in, DomId, Gfn, GfnRange};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::hv::Hypervisor;
use ebbhv_x86::acpi;
use ebbhv_x86::elf::Elf;
use ebbhv_x86::start_info::{self, BootInfo, HvmMemmapEntry, Module};

use ebbhv_hal::log;

use crate::guest_memory::{write_guest_phys, HostFrames, Translate};

const LOW_RAM_END: u64 = 0xa_0000;
const HOLE_END: u64 = 0x10_0000;
const ACPI_BASE: u64 = 0xe_0000;
const START_INFO_BASE: u64 = 0xe_1000;

/// What the guest is built from.
pub struct Payload<'a> {
    /// The kernel ELF.
    pub vmlinux: &'a [u8],
    /// The initramfs, if any.
    pub initramfs: Option<&'a [u8]>,
    /// The kernel command line.
    pub cmdline: &'a [u8],
}

/// Where the guest starts.
pub struct EntryState {
    /// `XEN_ELFNOTE_PHYS32_ENTRY`.
    pub rip: u64,
    /// EBX: the start info's guest-physical address.
    pub start_info: u64,
}

/// Creates and loads domain `domid` with `memory` bytes of RAM and room for
/// `maxmem`.
pub fn build(
    hv: &mut Hypervisor,
    domid: DomId,
    memory: u64,
    maxmem: u64,
    p: &Payload<'_>,
) -> Result<EntryState, &'static str> {
    let memory = memory & !0xfff;
    let e820 = [
        E820Entry {
            addr: 0,
            size: LOW_RAM_END,
            kind: E820_RAM,
        },
        E820Entry {
            addr: LOW_RAM_END,
            size: HOLE_END - LOW_RAM_END,
            kind: E820_RESERVED,
        },
        E820Entry {
            addr: HOLE_END,
            size: memory - HOLE_END,
            kind: E820_RAM,
        },
    ];
    let config = DomainConfig {
        id: domid,
        max_pages: frames_in(maxmem.max(memory)),
        memory_map: e820.to_vec(),
    };
    hv.create_domain(config, &mut HostFrames)
        .map_err(|_| "the core refused to create the domain")?;
    hv.populate_boot_memory(
        domid,
        GfnRange::new(Gfn(0), GuestPhys(memory).gfn()),
        &mut HostFrames,
    )
    .map_err(|_| "not enough free memory for the guest")?;
    let dom = hv.domain(domid).ok_or("domain vanished")?;
    let t = Translate::P2m(dom);
    let pool_limit = hv.mem_pool(domid).map_or(0, |p| p.limit);
    log!(
        "domain {}: {} MiB RAM, max {} MiB, {} frames, memory pool limit {} KiB",
        domid.0,
        memory >> 20,
        maxmem >> 20,
        dom.tot_pages(),
        pool_limit >> 10
    );

    let elf = Elf::parse(p.vmlinux).map_err(|_| "vmlinux is not an x86-64 ELF")?;
    let rip = elf
        .pvh_entry()
        .map_err(|_| "vmlinux has no PVH entry note")?;
    let mut kernel_end = 0u64;
    for seg in elf.segments() {
        let seg = seg.map_err(|_| "vmlinux has a truncated segment")?;
        let end = seg
            .paddr
            .checked_add(seg.mem_size)
            .ok_or("segment overflows")?;
        if seg.paddr < HOLE_END || end > memory {
            return Err("a vmlinux segment lies outside guest RAM");
        }
        write_guest_phys(&t, GuestPhys(seg.paddr), seg.data).map_err(|_| "segment not mapped")?;
        log!(
            "  vmlinux segment {:#x}-{:#x} ({:#x} from the file)",
            seg.paddr,
            end,
            seg.data.len()
        );
        kernel_end = kernel_end.max(end);
    }

    let mut modules = Vec::new();
    if let Some(initrd) = p.initramfs {
        let at = memory
            .checked_sub(initrd.len() as u64)
            .ok_or("initramfs larger than RAM")?
            & !0xfff;
        if at < kernel_end {
            return Err("initramfs does not fit above the kernel");
        }
        write_guest_phys(&t, GuestPhys(at), initrd).map_err(|_| "initramfs not mapped")?;
        log!("  initramfs at {:#x}, {} KiB", at, initrd.len() >> 10);
        modules.push(Module {
            addr: GuestPhys(at),
            size: initrd.len() as u64,
        });
    }

    let mut tables = [0u8; acpi::TABLES_BYTES];
    let rsdp = acpi::build(GuestPhys(ACPI_BASE), &mut tables);
    write_guest_phys(&t, GuestPhys(ACPI_BASE), &tables).map_err(|_| "ACPI area not mapped")?;

    let memmap: Vec<HvmMemmapEntry> = e820
        .iter()
        .map(|e| HvmMemmapEntry {
            addr: e.addr,
            size: e.size,
            kind: e.kind,
            reserved: 0,
        })
        .collect();
    for e in &memmap {
        log!(
            "  guest e820 {:#014x}-{:#014x} type {}",
            e.addr,
            e.addr + e.size,
            e.kind
        );
    }
    let mut page = vec![0u8; start_info::PAGE_BYTES];
    let info = BootInfo {
        base: GuestPhys(START_INFO_BASE),
        memmap: &memmap,
        cmdline: p.cmdline,
        modules: &modules,
        rsdp,
    };
    start_info::build(&info, &mut page).map_err(|_| "start info does not fit")?;
    write_guest_phys(&t, GuestPhys(START_INFO_BASE), &page)
        .map_err(|_| "start info page not mapped")?;
    log!(
        "  entry {rip:#x}, start_info {START_INFO_BASE:#x}, rsdp {:#x}, cmdline {:?}",
        rsdp.0,
        core::str::from_utf8(p.cmdline).unwrap_or("?")
    );
    Ok(EntryState {
        rip,
        start_info: START_INFO_BASE,
    })
}
