//! The boot sequence, from the hardware layer's [`Boot`] to the exit loop: the
//! firmware's start info and memory map, ebbhv's options, SVM, the clocks and the
//! host timer, the core's frame heap, then the guest from the payload bundle (or
//! the built-in self-test guest when there is none).

use ebbhv_core::addr::{DomId, HostPhys, MfnRange};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor};
use ebbhv_hal::boot::{Boot, Firmware};
use ebbhv_hal::qemu_exit::{exit_qemu, ExitCode};
use ebbhv_hal::{clock, heap, log, memory, svm, timer};
use ebbhv_x86::cpio;
use ebbhv_x86::ranges::RangeSet;

use crate::machine::Machine;
use crate::xen::time::Clocks;
use crate::{loader, store, stub};

/// The guest's domain id (Xen's first domU).
const GUEST_DOMID: DomId = DomId(1);

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

/// Logs the start info QEMU's PVH loader built.
fn log_firmware(fw: &Firmware) {
    let si = &fw.start_info;
    log!(
        "start_info: version {} flags {:#x} rsdp {:#x}",
        si.version,
        si.flags,
        si.rsdp_paddr
    );
    if !fw.cmdline.is_empty() {
        log!("command line: {:?}", fw.cmdline);
    }
    for e in fw.memmap() {
        log!(
            "  e820 {:#014x}-{:#014x} type {}",
            e.addr,
            e.addr + e.size,
            e.kind
        );
    }
    for (i, e) in fw.modules().enumerate() {
        log!("  module {i}: {:#x}+{:#x}", e.paddr, e.size);
    }
}

/// The core's heap over the free machine memory.
#[expect(
    clippy::expect_used,
    reason = "boot: no guest yet; a machine without free RAM stops here"
)]
fn frame_heap(free: &RangeSet<64>) -> FrameHeap {
    let frames = |r: &ebbhv_x86::ranges::Range| {
        MfnRange::new(HostPhys(r.start).mfn(), HostPhys(r.end).mfn())
    };
    let ranges = free.as_slice();
    let first = frames(ranges.first().expect("free RAM for guests")).start;
    let last = frames(ranges.last().expect("free RAM for guests")).end;
    let mut heap = FrameHeap::new(MfnRange::new(first, last)).expect("heap metadata fits the pool");
    for r in ranges {
        heap.add_free_ram(frames(r)).expect("disjoint free RAM");
    }
    heap
}

/// The boot sequence (named by `ebbhv_hal::entry!` in the crate root).
pub fn main(boot: Boot) -> ! {
    log!("ebbhv {} starting", env!("CARGO_PKG_VERSION"));
    let fw = boot.firmware();
    log_firmware(&fw);
    let opts = parse_options(fw.cmdline);
    let mem = memory::init(boot, &fw);
    log!(
        "memory: pool {:#x}-{:#x}, {} MiB free for guests, bundle {:x?}",
        mem.pool.start,
        mem.pool.end,
        mem.free.total() >> 20,
        mem.bundle_range
    );
    svm::enable();
    let tsc_hz = clock::calibrate_tsc();
    let apic_hz = timer::init(tsc_hz);
    let frames = frame_heap(&mem.free);
    // A quarter of what is left of ebbhv's own memory stays its own (VMCB,
    // permission maps, console and control buffers); no domain's memory pool may
    // take more than the rest.
    let config = Config {
        mem_pool_max: (heap::free_bytes() / 4 * 3) as u64,
        ..Config::default()
    };
    let mut hv = Hypervisor::new(frames, config);
    log!(
        "core heap: {} free frames, {} KiB of ebbhv memory left",
        hv.heap().free_frames(),
        heap::free_bytes() >> 10
    );
    let Some(archive) = mem.bundle else {
        stub::run(hv, GUEST_DOMID)
    };

    let wall = clock::rtc_unix_seconds();
    log!(
        "TSC {} kHz, host APIC timer {} kHz, RTC {} s since the epoch",
        tsc_hz / 1000,
        apic_hz / 1000,
        wall
    );

    #[expect(
        clippy::expect_used,
        reason = "boot: no guest yet; a bundle without a kernel stops here"
    )]
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
    let built =
        loader::build(&mut hv, GUEST_DOMID, opts.memory, opts.maxmem, &payload).and_then(|entry| {
            let store = store::StoreService::build(&mut hv, GUEST_DOMID, opts.memory, opts.maxmem)?;
            Ok((entry, store))
        });
    let (entry, store) = match built {
        Ok(b) => b,
        Err(why) => {
            log!("cannot build the guest: {why}");
            exit_qemu(ExitCode::GuestFatal)
        }
    };
    // Guest system time 0 is now, when it is about to start.
    let clocks = Clocks::new(tsc_hz, clock::rdtsc(), wall);
    let mut m = Machine::new(hv, GUEST_DOMID, entry, clocks, store);
    log!("starting the guest");
    m.run()
}
