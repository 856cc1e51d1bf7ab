//! ebbhv: a bare-metal x86-64 hypervisor (AMD SVM with nested paging) that runs one
//! Linux guest as a Xen PVH domain, with every memory decision made by
//! `ebbhv-core`.
//!
//! The crate root declares the modules and holds [`ebbhv_main`], the boot sequence:
//! serial and IDT, the firmware's start info and memory map, then the guest.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod exit;
mod heap;
mod idt;
mod machine;
mod msr;
mod msrs;
mod npt;
mod phys;
mod port;
mod serial;
mod stub;
mod svm;
mod sync;

use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::start_info::{self, HvmMemmapEntry, HvmModlistEntry, HvmStartInfo};

use exit::{exit_qemu, ExitCode};

/// Reads and logs the start info QEMU's PVH loader built.
fn firmware_start_info(pa: u64) -> HvmStartInfo {
    // SAFETY: the PVH boot protocol gives EBX = the physical address of the start info,
    // which the loader placed in low memory that nothing else uses yet.
    let bytes = unsafe { phys::slice(HostPhys(pa), HvmStartInfo::SIZE) };
    let si = start_info::parse(bytes).expect("no hvm_start_info from the loader");
    log!(
        "start_info at {pa:#x}: version {} flags {:#x} rsdp {:#x}",
        si.version,
        si.flags,
        si.rsdp_paddr
    );
    if si.cmdline_paddr != 0 {
        // SAFETY: the command line is a NUL-terminated string the loader placed in low
        // memory; 4 KiB is within its page and nothing writes it.
        let raw = unsafe { phys::slice(HostPhys(si.cmdline_paddr), 4096) };
        let len = raw.iter().position(|&c| c == 0).unwrap_or(0);
        log!(
            "command line: {:?}",
            core::str::from_utf8(&raw[..len]).unwrap_or("<not utf-8>")
        );
    }
    for i in 0..u64::from(si.memmap_entries) {
        // SAFETY: the loader's memory map array; entries are read-only firmware data.
        let e = unsafe { phys::slice(HostPhys(si.memmap_paddr + i * 24), HvmMemmapEntry::SIZE) };
        let e = HvmMemmapEntry::read_from(e).expect("slice has the entry's size");
        log!(
            "  e820 {:#014x}-{:#014x} type {}",
            e.addr,
            e.addr + e.size,
            e.kind
        );
    }
    for i in 0..u64::from(si.nr_modules) {
        // SAFETY: the loader's module list; read-only firmware data.
        let e = unsafe { phys::slice(HostPhys(si.modlist_paddr + i * 32), HvmModlistEntry::SIZE) };
        let e = HvmModlistEntry::read_from(e).expect("slice has the entry's size");
        log!("  module {i}: {:#x}+{:#x}", e.paddr, e.size);
    }
    si
}

/// The boot sequence, called by the entry code in [`boot`] with EBX from the loader.
#[no_mangle]
extern "C" fn ebbhv_main(start_info_pa: u64) -> ! {
    serial::init();
    idt::init();
    log!("ebbhv {} starting", env!("CARGO_PKG_VERSION"));
    let si = firmware_start_info(start_info_pa);
    let mem = machine::plan(&si);
    // SAFETY: `plan` took the pool out of the free RAM, away from the image, the
    // bundle and the low 1 MiB, all below the identity-map limit; nothing else uses it.
    unsafe { heap::init(HostPhys(mem.pool.start), mem.pool.len() as usize) };
    log!(
        "memory: pool {:#x}-{:#x}, {} MiB free for guests, bundle {:x?}",
        mem.pool.start,
        mem.pool.end,
        mem.free.total() >> 20,
        mem.bundle
    );
    svm::enable();
    if mem.bundle.is_none() {
        stub::run();
    }
    exit_qemu(ExitCode::Success)
}
