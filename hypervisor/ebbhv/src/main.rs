//! ebbhv: a bare-metal x86-64 hypervisor (AMD SVM with nested paging) that runs one
//! Linux guest as a Xen PVH domain, with every memory decision made by
//! `ebbhv-core`.
//!
//! The crate root declares the modules and holds [`ebbhv_main`], the boot sequence:
//! serial and IDT, the firmware's start info and memory map, ebbhv's own allocator,
//! SVM, the core's frame heap, then the guest from the payload bundle (or the
//! built-in self-test guest when there is none), and finally the exit loop.
#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod clock;
mod console;
mod control;
mod events;
mod exit;
mod exits;
mod guest;
mod heap;
mod hosttimer;
mod hypercall;
mod idt;
mod loader;
mod machine;
mod msr;
mod msrs;
mod npt;
mod phys;
mod platform;
mod port;
mod power;
mod serial;
mod stats;
mod stub;
mod svm;
mod sync;
mod vtimer;
mod xenstore;

use alloc::vec;

use ebbhv_core::addr::{Mfn, MfnRange};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor};
use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::cpio;
use ebbhv_x86::lapic::VLapic;
use ebbhv_x86::ranges::RangeSet;
use ebbhv_x86::start_info::{self, HvmMemmapEntry, HvmModlistEntry, HvmStartInfo};
use ebbhv_x86::xen::hvmop;

use console::ConsoleStream;
use exit::{exit_qemu, ExitCode};
use guest::{Clocks, Machine};

/// Options from ebbhv's own command line (`-append`).
struct Options {
    /// Guest memory at boot, bytes (`memory=<MiB>`, default 256).
    memory: u64,
    /// Guest maximum memory, bytes (`maxmem=<MiB>`, default `memory`).
    maxmem: u64,
}

fn parse_options(cmdline: &str) -> Options {
    let mut memory = 256u64 << 20;
    let mut maxmem = None;
    for word in cmdline.split_ascii_whitespace() {
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let mib = value.parse::<u64>().ok().map(|v| v << 20);
        match (key, mib) {
            ("memory", Some(v)) => memory = v,
            ("maxmem", Some(v)) => maxmem = Some(v),
            _ => log!("ignoring option {word:?}"),
        }
    }
    Options {
        memory,
        maxmem: maxmem.unwrap_or(memory).max(memory),
    }
}

/// Reads and logs the start info QEMU's PVH loader built; returns it and ebbhv's
/// command line.
fn firmware_start_info(pa: u64) -> (HvmStartInfo, &'static str) {
    // SAFETY: the PVH boot protocol gives EBX = the physical address of the start info,
    // which the loader placed in low memory that nothing else uses.
    let bytes = unsafe { phys::slice(HostPhys(pa), HvmStartInfo::SIZE) };
    let si = start_info::parse(bytes).expect("no hvm_start_info from the loader");
    log!(
        "start_info at {pa:#x}: version {} flags {:#x} rsdp {:#x}",
        si.version,
        si.flags,
        si.rsdp_paddr
    );
    let mut cmdline = "";
    if si.cmdline_paddr != 0 {
        // SAFETY: the command line is a NUL-terminated string the loader placed in low
        // memory (below 1 MiB, never handed to any allocator); 256 bytes stay inside
        // it for the short options ebbhv takes, and nothing writes it.
        let raw = unsafe { phys::slice(HostPhys(si.cmdline_paddr), 256) };
        let len = raw.iter().position(|&c| c == 0).unwrap_or(0);
        cmdline = core::str::from_utf8(&raw[..len]).unwrap_or("");
        log!("command line: {cmdline:?}");
    }
    for i in 0..u64::from(si.memmap_entries) {
        // SAFETY: the loader's memory map array; read-only firmware data.
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
    (si, cmdline)
}

/// The core's heap over the free machine memory.
fn frame_heap(free: &RangeSet<64>) -> FrameHeap {
    let ranges = free.as_slice();
    let first = ranges.first().expect("free RAM for guests").start >> 12;
    let last = ranges.last().expect("free RAM for guests").end >> 12;
    let mut heap =
        FrameHeap::new(MfnRange::new(Mfn(first), Mfn(last))).expect("heap metadata fits the pool");
    for r in ranges {
        heap.add_free_ram(MfnRange::new(Mfn(r.start >> 12), Mfn(r.end >> 12)))
            .expect("disjoint free RAM");
    }
    heap
}

/// The boot sequence, called by the entry code in [`boot`] with EBX from the loader.
#[no_mangle]
extern "C" fn ebbhv_main(start_info_pa: u64) -> ! {
    serial::init();
    idt::init();
    log!("ebbhv {} starting", env!("CARGO_PKG_VERSION"));
    let (si, cmdline) = firmware_start_info(start_info_pa);
    let opts = parse_options(cmdline);
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
    let tsc_hz = clock::calibrate_tsc();
    let apic_hz = hosttimer::init(tsc_hz);
    let mut hv = Hypervisor::new(frame_heap(&mem.free), Config::default());
    log!(
        "core heap: {} free frames, {} KiB of ebbhv memory left",
        hv.heap().free_frames(),
        heap::free_bytes() >> 10
    );
    let Some(bundle) = mem.bundle else {
        stub::run(hv)
    };

    let wall = clock::rtc_unix_seconds();
    let (mul, shift) = ebbhv_x86::time::pvclock_scale(tsc_hz);
    log!(
        "TSC {} kHz, host APIC timer {} kHz, RTC {} s since the epoch",
        tsc_hz / 1000,
        apic_hz / 1000,
        wall
    );

    // SAFETY: the bundle is the loader's module, taken out of every allocator by
    // `plan`; nothing writes it.
    let archive = unsafe { phys::slice(HostPhys(bundle.start), bundle.len() as usize) };
    let vmlinux = cpio::find(archive, b"vmlinux")
        .expect("the bundle has no vmlinux")
        .data;
    let initramfs = cpio::find(archive, b"initramfs").map(|e| e.data);
    let cmdline = cpio::find(archive, b"cmdline").map_or(&b""[..], |e| e.data);
    let payload = loader::Payload {
        vmlinux,
        initramfs,
        cmdline,
    };
    let entry = match loader::build(&mut hv, opts.memory, opts.maxmem, &payload) {
        Ok(e) => e,
        Err(why) => {
            log!("cannot build the guest: {why}");
            exit_qemu(ExitCode::GuestFatal)
        }
    };
    let (store, store_ring) = match xenstore::build(&mut hv, opts.memory, opts.maxmem) {
        Ok(s) => s,
        Err(why) => {
            log!("cannot build the guest: {why}");
            exit_qemu(ExitCode::GuestFatal)
        }
    };
    // Guest system time 0 is now, when it is about to start.
    let tsc_at_boot = clock::rdtsc();
    let npt = npt::Npt::new();
    let vcpu = svm::Vcpu::new_pvh(npt.root(), entry.rip, entry.start_info);
    let mut m = Machine {
        hv,
        vcpu,
        npt,
        lapic: VLapic::default(),
        params: [0; hvmop::NR_PARAMS],
        vcpu_info: None,
        runstate: None,
        clocks: Clocks {
            tsc_hz,
            tsc_at_boot,
            wall_at_boot: wall,
            mul,
            shift,
        },
        console: ConsoleStream::new("[guest]", b"Run /init"),
        e9: ConsoleStream::new("[e9]", b""),
        console_in: Default::default(),
        logged_once: vec![],
        evtchn: events::new_table(),
        offered: None,
        timer_deadline: None,
        stats: Default::default(),
        store,
        store_ring,
        control: control::ControlChannel::new(),
    };
    events::init(&mut m);
    xenstore::init(&mut m);
    m.sync_npt();
    m.publish_time();
    log!("starting the guest");
    exits::run(&mut m)
}
