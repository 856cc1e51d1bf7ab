//! A test bed: a small heap, one guest domain, fake guest memory and frames.
#![allow(dead_code)] // Each test binary uses a different part of the bed.

use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn, MfnRange};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor};
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::testing::{FakeFrames, FakeGuestMemory, FakeNpt};

/// The guest under test.
pub const DOM: DomId = DomId(1);
/// Where hypercall argument structures go in the fake guest memory.
pub const ARG: u64 = 0x10_0000;
/// Where extent lists go.
pub const LIST: u64 = 0x10_1000;
/// A second list (exchange outputs).
pub const LIST2: u64 = 0x18_0000;
/// A buffer for results.
pub const BUF: u64 = 0x1f_0000;
/// First machine frame of the heap.
pub const HEAP_START: u64 = 0x10_0000;
/// Free frames in the heap (64 MiB).
pub const HEAP_FREE: u64 = 0x4000;
/// Frames the hypervisor uses, right after the free ones.
pub const HEAP_HYPERVISOR: u64 = 0x10;

pub struct Bed {
    pub hv: Hypervisor,
    pub mem: FakeGuestMemory,
    pub frames: FakeFrames,
    pub npt: FakeNpt,
    /// Hypercalls issued, continuations included.
    pub calls: u64,
}

pub fn heap(free: u64) -> FrameHeap {
    let start = Mfn(HEAP_START);
    let mut heap = FrameHeap::new(MfnRange::new(
        start,
        start.plus(free + HEAP_HYPERVISOR + 16),
    ))
    .unwrap();
    heap.add_free_ram(MfnRange::new(start, start.plus(free)))
        .unwrap();
    heap.add_hypervisor_ram(MfnRange::new(
        start.plus(free),
        start.plus(free + HEAP_HYPERVISOR),
    ))
    .unwrap();
    heap
}

impl Bed {
    pub fn new() -> Bed {
        Bed::with(Config::default(), HEAP_FREE, 0x2000)
    }

    pub fn with(config: Config, free: u64, max_pages: u64) -> Bed {
        let mut bed = Bed {
            hv: Hypervisor::new(heap(free), config),
            mem: FakeGuestMemory::new(ARG, 0x10_0000),
            frames: FakeFrames::default(),
            npt: FakeNpt::default(),
            calls: 0,
        };
        let memory_map = vec![
            E820Entry {
                addr: 0,
                size: 0xa0000,
                kind: E820_RAM,
            },
            E820Entry {
                addr: 0x10_0000,
                size: 0x700_0000,
                kind: E820_RAM,
            },
            E820Entry {
                addr: 0xfee0_0000,
                size: 0x1000,
                kind: E820_RESERVED,
            },
        ];
        let config = DomainConfig {
            id: DOM,
            max_pages,
            memory_map,
        };
        bed.hv.create_domain(config, &mut bed.frames).unwrap();
        bed
    }

    /// Issues a hypercall, following continuations; returns rax.
    pub fn call(&mut self, caller: Caller, nr: u64, args: [u64; 5]) -> i64 {
        let mut call = Hypercall { nr, args };
        loop {
            self.calls += 1;
            let outcome = self
                .hv
                .hypercall(caller, call, &mut self.mem, &mut self.frames)
                .expect("hypercall was fatal");
            match outcome {
                Outcome::Return(value) => return value,
                Outcome::Continue(next) => {
                    assert_eq!(next.nr, nr);
                    call = next;
                }
            }
        }
    }

    /// Issues one call without following continuations.
    pub fn call_once(&mut self, caller: Caller, call: Hypercall) -> Outcome {
        self.hv
            .hypercall(caller, call, &mut self.mem, &mut self.frames)
            .expect("hypercall was fatal")
    }

    pub fn memory_op(&mut self, caller: Caller, cmd: u64, arg: u64) -> i64 {
        self.call(caller, MEMORY_OP, [cmd, arg, 0, 0, 0])
    }

    /// Writes a reservation for `gfns` at ARG/LIST.
    pub fn put_reservation(&mut self, order: u32, gfns: &[u64], domid: u16) {
        for (i, gfn) in gfns.iter().enumerate() {
            self.mem.put(LIST + 8 * i as u64, gfn);
        }
        let request = XenMemoryReservation {
            extent_start: LIST,
            nr_extents: gfns.len() as u64,
            extent_order: order,
            domid,
            ..Default::default()
        };
        self.mem.put(ARG, &request);
    }

    /// A reservation op by the guest on itself; returns the extents done.
    pub fn reservation(&mut self, op: u64, order: u32, gfns: &[u64]) -> i64 {
        self.put_reservation(order, gfns, DomId::SELF.0);
        self.memory_op(Caller::Guest(DOM), op, ARG)
    }

    pub fn populate(&mut self, order: u32, gfns: &[u64]) -> i64 {
        self.reservation(XENMEM_POPULATE_PHYSMAP, order, gfns)
    }

    pub fn decrease(&mut self, order: u32, gfns: &[u64]) -> i64 {
        self.reservation(XENMEM_DECREASE_RESERVATION, order, gfns)
    }

    pub fn tot_pages(&self) -> u64 {
        self.hv.domain(DOM).unwrap().tot_pages()
    }

    pub fn mfn_of(&self, gfn: u64) -> Option<Mfn> {
        self.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .entry(Gfn(gfn))
            .map(|e| e.mfn)
    }

    /// Invariants hold and the fake NPT follows the p2m (every leaf but broken ones,
    /// which the guest must not reach).
    pub fn check(&mut self) {
        self.hv.check_invariants().unwrap();
        self.hv.sync_p2m(DOM, &mut self.npt).unwrap();
        assert_eq!(self.npt.violation, None);
        let mut leaves = Vec::new();
        let all = GfnRange::new(Gfn(0), self.hv.config().gfn_limit);
        self.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .for_each_mapping(all, &mut |m| {
                if m.kind.accessible() {
                    leaves.push(m)
                }
            });
        assert_eq!(
            self.npt.leaves.values().copied().collect::<Vec<_>>(),
            leaves
        );
    }
}
