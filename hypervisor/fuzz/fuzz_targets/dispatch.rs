//! Feeds raw bytes to the hypercall dispatcher: the first byte says how many 16-byte
//! steps of script follow (hypercalls and write faults from a guest and the control
//! plane, and faults injected into the guest's populates and decreases); the bytes after the script become the caller's memory, so argument
//! structures, extent lists and handles are whatever the fuzzer makes them. Nothing may panic, no hypercall may be fatal, and every invariant
//! must hold after every step. The guest's memory pool has little room above what its
//! boot memory takes: no step of the guest's may take its charge above the limit
//! (the control plane's offline and log-dirty splits are charged but not refused).
#![no_main]
#![forbid(unsafe_code)]

use ebbhv_core::abi::hypercall::{DOMCTL, MEMORY_OP, SYSCTL};
use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn, MfnRange};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::error::{Errno, Fatal};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Fault, FaultEffect, FaultOp, Hypervisor};
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::testing::{FakeFrames, FakeGuestMemory};
use libfuzzer_sys::fuzz_target;

const GUEST: DomId = DomId(1);
const MEMORY_BASE: u64 = 0x10000;
const MEMORY_BYTES: usize = 0x4000;
const HEAP_START: u64 = 0x800;
const HEAP_FREE: u64 = 0x800;
const STEP_BYTES: usize = 16;
const MAX_CONTINUATIONS: usize = 64;
/// The guest's memory pool room above its boot memory's tables: a few scattered
/// mappings.
const POOL_ROOM: u64 = 96 * 1024;

fn bed() -> (Hypervisor, FakeFrames) {
    let start = Mfn(HEAP_START);
    let mut heap = FrameHeap::new(MfnRange::new(start, start.plus(HEAP_FREE + 32))).unwrap();
    heap.add_free_ram(MfnRange::new(start, start.plus(HEAP_FREE))).unwrap();
    heap.add_hypervisor_ram(MfnRange::new(start.plus(HEAP_FREE), start.plus(HEAP_FREE + 16)))
        .unwrap();
    let config = Config { preempt_frames: 1024, ..Config::default() };
    let mut hv = Hypervisor::new(heap, config);
    let mut frames = FakeFrames::default();
    let domain = DomainConfig { id: GUEST, max_pages: 0x600, memory_map: Vec::new() };
    hv.create_domain(domain, &mut frames).unwrap();
    hv.populate_boot_memory(GUEST, GfnRange::new(Gfn(0), Gfn(0x280)), &mut frames)
        .unwrap();
    let used = hv.mem_pool(GUEST).unwrap().used;
    hv.set_mem_pool_limit(GUEST, used + POOL_ROOM).unwrap();
    (hv, frames)
}

fn word(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    u64::from_le_bytes(buf)
}

fuzz_target!(|data: &[u8]| {
    let Some((&steps, rest)) = data.split_first() else {
        return;
    };
    let (script, memory_bytes) = rest.split_at(rest.len().min(usize::from(steps) * STEP_BYTES));
    let memory_bytes = &memory_bytes[..memory_bytes.len().min(MEMORY_BYTES)];
    let mut memory = FakeGuestMemory::new(MEMORY_BASE, MEMORY_BYTES);
    memory.bytes[..memory_bytes.len()].copy_from_slice(memory_bytes);
    let (mut hv, mut frames) = bed();

    for step in script.chunks(STEP_BYTES) {
        let pool_before = hv.mem_pool(GUEST).unwrap();
        let control = step[0] & 1 != 0;
        let caller = if control { Caller::ControlPlane } else { Caller::Guest(GUEST) };
        let pointer = |raw: u64| {
            // Mostly inside the fake memory, sometimes anything at all.
            if raw & 0x8000_0000 != 0 { raw } else { MEMORY_BASE + raw % MEMORY_BYTES as u64 }
        };
        let a = word(step.get(2..6).unwrap_or(&[]));
        let b = word(step.get(6..10).unwrap_or(&[]));
        let kind = (step[0] >> 1) % 7;
        // Hypercalls the guest makes itself (write faults split leaves for log-dirty,
        // which the control plane started).
        let by_guest = !control && kind < 5;
        if kind == 6 {
            let op = FaultOp::ALL[(a % 3) as usize];
            let effect = if a & 4 == 0 {
                FaultEffect::Stop(b % 8)
            } else {
                FaultEffect::Fail(Errno::ALL[(b % Errno::ALL.len() as u64) as usize])
            };
            // Zero calls and a full queue are refused: also worth running.
            let _ = hv.add_fault(GUEST, op, Fault { calls: (a >> 3) % 4, effect });
        } else if kind == 5 {
            match hv.write_fault(GUEST, Gfn(a % 0x400)) {
                Ok(_) | Err(Fatal::UnhandledAccess { .. }) => {}
                Err(fatal) => panic!("write fault was fatal: {fatal:?}"),
            }
        } else {
            let nr = [MEMORY_OP, MEMORY_OP, MEMORY_OP, SYSCTL, DOMCTL][usize::from(kind)];
            let sub_op = u64::from(step.get(1).copied().unwrap_or(0));
            let args = match nr {
                MEMORY_OP => [sub_op & 0xf | (b & 0x3) << 6, pointer(a), 0, 0, 0],
                _ => [pointer(a), b, 0, 0, 0],
            };
            let mut call = Hypercall { nr, args };
            for _ in 0..MAX_CONTINUATIONS {
                match hv.hypercall(caller, call, &mut memory, &mut frames) {
                    Ok(Outcome::Return(_)) => break,
                    Ok(Outcome::Continue(next)) => call = next,
                    Err(fatal) => panic!("{call:?} from {caller:?} was fatal: {fatal:?}"),
                }
            }
        }
        if let Err(broken) = hv.check_invariants() {
            panic!("invariant broken after step {step:?}: {broken}");
        }
        let pool = hv.mem_pool(GUEST).unwrap();
        if by_guest {
            assert!(
                pool.used <= pool_before.used.max(pool.limit),
                "step {step:?} took the pool from {pool_before:?} to {pool:?}"
            );
        }
    }
});
