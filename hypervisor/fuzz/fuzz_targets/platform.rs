//! The Xen platform hypercalls ebbhv serves itself (`ebbhv_core::platform::xen`):
//! xen_version, console_io, vcpu_op, hvm_op, sched_op, set_timer_op and
//! event_channel_op, plus the hypervisor's own deliveries (raising a virq,
//! notifying a port, taking a due timer, publishing the clocks).
//!
//! The first byte says how many 24-byte steps of script follow; the bytes after
//! the script become the caller's memory, so every argument structure is whatever
//! the fuzzer makes it, and a pointer may also lie anywhere at all (unmapped). A
//! step may instead carry its argument structure itself (its last 16 bytes, copied
//! to a scratch place in the caller's memory), so that a sequence of calls with
//! well-formed arguments (set the callback vector, bind a virq, register
//! vcpu_info, raise it) is a few steps apart rather than a pointer and a structure
//! that must agree. A step may also poke the caller's memory or move the clock
//! between calls.
//!
//! After every step: nothing panicked (the fake frames panic on an access that
//! leaves its frame, as the image's do); the parameters the guest may not set are
//! unchanged; the store port is still the hypervisor's; the hypervisor's memory
//! for the domain stays bounded: the event channel table within a full table's
//! bytes, frame bytes written only to the shared_info page and the one registered
//! vcpu_info frame, at most one log line per call, at most one console chunk per
//! call, and the hypercall statistics within `CountKey::COUNT` keys.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ebbhv_core::abi::hypercall as nr;
use ebbhv_core::abi::platform::hvmop;
use ebbhv_core::addr::{CallerAddr, DomId, Gfn, GfnRange, Mfn, MfnRange};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::evtchn::{Binding, EventChannels};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor};
use ebbhv_core::hypercall::count::CountKey;
use ebbhv_core::platform::xen::console_io::{console_io, CONSOLE_CHUNK};
use ebbhv_core::platform::xen::sched_op::sched_op;
use ebbhv_core::platform::xen::version::xen_version;
use ebbhv_core::platform::xen::XenPlatform;
use ebbhv_core::testing::{
    FakeClock, FakeConsole, FakeFrameBytes, FakeFrames, FakeGuestMemory, FakeLog,
};
use libfuzzer_sys::fuzz_target;

const GUEST: DomId = DomId(1);
const STORE_GFN: Gfn = Gfn(0xfeffc);
const MEMORY_BASE: u64 = 0x10000;
const MEMORY_BYTES: usize = 0x3000;
const STEP_BYTES: usize = 24;
/// Where a step's own argument structure goes: the caller's last 16 bytes.
const INLINE_ARG: u64 = MEMORY_BASE + MEMORY_BYTES as u64 - 16;
/// Guest RAM frames (gfn 0 up), so that vcpu_info may land in or out of it.
const GUEST_FRAMES: u64 = 0x40;

/// The guest's domain, built once: the platform hypercalls only read it (its p2m
/// and shared_info frame), and building it costs more than a run.
fn bed() -> &'static Hypervisor {
    static HV: OnceLock<Hypervisor> = OnceLock::new();
    HV.get_or_init(build)
}

fn build() -> Hypervisor {
    let mut heap = FrameHeap::new(MfnRange::new(Mfn(0x100), Mfn(0x200))).unwrap();
    heap.add_free_ram(MfnRange::new(Mfn(0x100), Mfn(0x200))).unwrap();
    let mut hv = Hypervisor::new(heap, Config::default());
    let mut frames = FakeFrames::default();
    let domain = DomainConfig { id: GUEST, max_pages: 0x80, memory_map: Vec::new() };
    hv.create_domain(domain, &mut frames).unwrap();
    hv.populate_boot_memory(GUEST, GfnRange::new(Gfn(0), Gfn(GUEST_FRAMES)), &mut frames)
        .unwrap();
    hv
}

/// Bytes a table with every port taken holds: the most the guest can make the
/// hypervisor keep for its event channels. Filled once (taking 4096 ports one by
/// one costs more than a whole run).
fn full_table_bytes() -> u64 {
    static BYTES: OnceLock<u64> = OnceLock::new();
    *BYTES.get_or_init(|| {
        let mut table = EventChannels::new(GUEST);
        while table.alloc_unbound(GUEST).is_ok() {}
        table.bytes() as u64
    })
}

fn word(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(buf)
}

fuzz_target!(|data: &[u8]| {
    let Some((&steps, rest)) = data.split_first() else {
        return;
    };
    let (script, memory_bytes) = rest.split_at(rest.len().min(usize::from(steps) * STEP_BYTES));
    let memory_bytes = &memory_bytes[..memory_bytes.len().min(MEMORY_BYTES)];
    let mut mem = FakeGuestMemory::new(MEMORY_BASE, MEMORY_BYTES);
    mem.bytes[..memory_bytes.len()].copy_from_slice(memory_bytes);
    let hv = bed();
    let dom = hv.domain(GUEST).unwrap();
    let mut xen = XenPlatform::new(GUEST, FakeClock::default(), STORE_GFN);
    let mut frames = FakeFrameBytes::default();
    let mut log = FakeLog::default();
    let mut console = FakeConsole::default();
    let mut stats: BTreeMap<CountKey, u64> = BTreeMap::new();
    let initial_params = *xen.params();
    let store_port = xen.store_port().unwrap();
    let table_bound = full_table_bytes();
    let mut vcpu_info = None;

    for step in script.chunks(STEP_BYTES) {
        let pointer = |raw: u64| {
            // Mostly inside the fake memory, sometimes anything at all.
            if raw & 0x8000_0000 != 0 { raw } else { MEMORY_BASE + raw % MEMORY_BYTES as u64 }
        };
        // Every Xen sub-op is a small number; 0xff stands for an arbitrary one.
        let sub = match step.get(1) {
            Some(0xff) | None => word(step.get(2..10).unwrap_or(&[])),
            Some(&s) => u64::from(s),
        };
        let a = word(step.get(2..6).unwrap_or(&[]));
        let b = word(step.get(6..10).unwrap_or(&[]));
        let c = word(step.get(10..16).unwrap_or(&[]));
        // The top bit of the first byte: the argument is the step's last 16 bytes.
        let arg = match step.get(8..24) {
            Some(inline) if step[0] & 0x80 != 0 => {
                ebbhv_core::guest::GuestMemory::write(&mut mem, CallerAddr(INLINE_ARG), inline)
                    .unwrap();
                CallerAddr(INLINE_ARG)
            }
            _ => CallerAddr(pointer(a)),
        };
        let lines_before = log.lines;
        let call = match (step[0] & 0x7f) % 13 {
            0 => Some((nr::XEN_VERSION, [sub, arg.0, 0, 0, 0], xen_version(&mut mem, sub, arg))),
            1 => {
                // The length is anything; the console's input is whatever b says.
                console.input = b.to_le_bytes()[..(c % 9) as usize].to_vec();
                let args = [sub % 3, c, arg.0, 0, 0];
                let r = console_io(&mut mem, &mut console, args);
                assert!(console.output.len() <= CONSOLE_CHUNK, "one call, one chunk");
                if let Ok(n) = r {
                    assert!(n >= 0 && n as usize <= CONSOLE_CHUNK);
                }
                console.output.clear();
                Some((nr::CONSOLE_IO, args, r))
            }
            2 => {
                // The vCPU is mostly 0, the one there is.
                let vcpu = if c & 0xf == 0 { c >> 4 } else { 0 };
                let args = [sub, vcpu, arg.0, 0, 0];
                Some((nr::VCPU_OP, args, xen.vcpu_op(dom, &mut mem, &mut frames, &mut log, args)))
            }
            3 => {
                let cmd = sub % 3;
                Some((nr::HVM_OP, [cmd, arg.0, 0, 0, 0], xen.hvm_op(&mut mem, &mut log, cmd, arg)))
            }
            4 => {
                let r = sched_op(&mut mem, sub, arg).map(|_| 0);
                Some((nr::SCHED_OP, [sub, arg.0, 0, 0, 0], r))
            }
            5 => Some((nr::SET_TIMER_OP, [b, 0, 0, 0, 0], xen.set_timer_op(b))),
            6 | 7 => {
                let r = xen.event_channel_op(dom, &mut mem, &mut frames, sub, arg);
                if let Ok(Some(port)) = r {
                    assert_eq!(port, store_port, "only the store port kicks a service");
                }
                Some((nr::EVENT_CHANNEL_OP, [sub, arg.0, 0, 0, 0], r.map(|_| 0)))
            }
            8 => {
                xen.raise_virq(dom, &mut frames, a as u32);
                None
            }
            9 => {
                xen.notify(dom, &mut frames, a as u32);
                None
            }
            10 => {
                xen.clocks().now_ns.set(b);
                xen.take_due_timer();
                let _ = xen.pending_upcall(dom, &mut frames);
                None
            }
            11 => {
                xen.publish_time(dom, &mut frames);
                None
            }
            _ => {
                // The guest changes its memory between two calls.
                let at = MEMORY_BASE + a % MEMORY_BYTES as u64;
                let _ = ebbhv_core::guest::GuestMemory::write(
                    &mut mem,
                    CallerAddr(at),
                    &c.to_le_bytes()[..6],
                );
                None
            }
        };
        if let Some((number, args, _result)) = call {
            *stats.entry(CountKey::new(number, args[0])).or_default() += 1;
        }

        assert!(stats.len() <= CountKey::COUNT, "statistics grow with the guest's arguments");
        assert!(log.lines - lines_before <= 1, "a call logs at most one line");
        for (i, (&now, &then)) in xen.params().iter().zip(&initial_params).enumerate() {
            if !hvmop::guest_may_set(i as u32) {
                assert_eq!(now, then, "read-only HVM param {i} changed");
            }
        }
        assert_eq!(xen.store_port(), Some(store_port));
        assert_eq!(xen.event_channels().binding(store_port), Binding::Hypervisor);
        assert!(xen.event_channel_bytes() <= table_bound, "event channels beyond a full table");
        if let Some(place) = xen.vcpu_info_place() {
            assert!(place.offset + 64 <= 4096);
            assert!(place.gfn.0 < GUEST_FRAMES, "vcpu_info outside guest RAM");
            assert!(vcpu_info.is_none_or(|v| v == place), "vcpu_info moved");
            vcpu_info = Some(place);
        }
        let vcpu_frame = vcpu_info.and_then(|p| dom.p2m().entry(p.gfn)).map(|e| e.mfn);
        for frame in frames.frames.keys() {
            assert!(
                *frame == dom.shared_info() || Some(*frame) == vcpu_frame,
                "a write to {frame:?}, neither shared_info nor vcpu_info"
            );
        }
        assert_eq!(mem.bytes.len(), MEMORY_BYTES);
    }
});
