//! Faults injected into populate_physmap and decrease_reservation (`fail-next`):
//! a cut call does exactly its first extents and nothing else, a failed call does
//! nothing, calls count down, continuations and other callers are not counted.

mod common;

use common::*;
use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn};
use ebbhv_core::error::Errno;
use ebbhv_core::hv::{Config, Fault, FaultEffect, FaultOp};
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};

fn inject(bed: &mut Bed, op: FaultOp, calls: u64, effect: FaultEffect) {
    bed.hv.add_fault(DOM, op, Fault { calls, effect }).unwrap();
}

fn pending(bed: &Bed, op: FaultOp) -> Vec<Fault> {
    bed.hv
        .domain(DOM)
        .unwrap()
        .faults()
        .pending(op)
        .copied()
        .collect()
}

/// 2 MiB extents at gfn 0x400, 0x600, ...
fn superpages(n: u64) -> Vec<u64> {
    (0..n).map(|i| 0x400 + i * 512).collect()
}

fn mapped(bed: &Bed, gfns: &[u64]) -> Vec<bool> {
    gfns.iter().map(|&g| bed.mfn_of(g).is_some()).collect()
}

#[test]
fn a_cut_populate_does_exactly_its_first_extents() {
    let mut bed = Bed::new();
    let gfns = superpages(8);
    let free = bed.hv.heap().free_frames();
    inject(&mut bed, FaultOp::Populate, 1, FaultEffect::Stop(3));
    assert_eq!(bed.populate(9, &gfns), 3);
    assert_eq!(bed.tot_pages(), 3 * 512);
    assert_eq!(bed.hv.heap().free_frames(), free - 3 * 512);
    let want: Vec<bool> = (0..8).map(|i| i < 3).collect();
    assert_eq!(mapped(&bed, &gfns), want);
    // Every frame of the extents done is mapped, none after them.
    for g in [0x400, 0x5ff, 0x800, 0x9ff] {
        assert!(bed.mfn_of(g).is_some(), "{g:#x}");
    }
    assert!(bed.mfn_of(0xa00).is_none());
    bed.check();
    // Used up: the rest populates.
    assert_eq!(pending(&bed, FaultOp::Populate), []);
    assert_eq!(bed.populate(9, &gfns[3..]), 5);
    assert_eq!(bed.tot_pages(), 8 * 512);
    bed.check();
}

#[test]
fn a_cut_decrease_gives_back_exactly_its_first_extents() {
    let mut bed = Bed::new();
    let gfns = superpages(6);
    assert_eq!(bed.populate(9, &gfns), 6);
    let kept: Vec<_> = gfns.iter().map(|&g| bed.mfn_of(g)).collect();
    let free = bed.hv.heap().free_frames();
    inject(&mut bed, FaultOp::Decrease, 1, FaultEffect::Stop(2));
    assert_eq!(bed.decrease(9, &gfns), 2);
    assert_eq!(bed.tot_pages(), 4 * 512);
    assert_eq!(bed.hv.heap().free_frames(), free + 2 * 512);
    assert_eq!(mapped(&bed, &gfns), [false, false, true, true, true, true]);
    // The extents not done keep the very frames they had.
    for i in 2..6 {
        assert_eq!(bed.mfn_of(gfns[i]), kept[i]);
    }
    bed.check();
    // Zero extents done is a cut too: nothing moves.
    inject(&mut bed, FaultOp::Decrease, 1, FaultEffect::Stop(0));
    assert_eq!(bed.decrease(9, &gfns[2..]), 0);
    assert_eq!(bed.tot_pages(), 4 * 512);
    assert_eq!(bed.decrease(9, &gfns[2..]), 4);
    assert_eq!(bed.tot_pages(), 0);
    bed.check();
}

#[test]
fn an_errno_fails_the_call_before_any_extent() {
    let mut bed = Bed::new();
    let gfns = superpages(4);
    inject(
        &mut bed,
        FaultOp::Populate,
        1,
        FaultEffect::Fail(Errno::EBUSY),
    );
    assert_eq!(bed.populate(9, &gfns), -16);
    assert_eq!(bed.tot_pages(), 0);
    assert_eq!(mapped(&bed, &gfns), [false; 4]);
    bed.check();
    assert_eq!(bed.populate(9, &gfns), 4);
    let census = bed.hv.heap().census();
    inject(
        &mut bed,
        FaultOp::Decrease,
        1,
        FaultEffect::Fail(Errno::EINVAL),
    );
    assert_eq!(bed.decrease(0, &[0x400, 0x401]), -22);
    assert_eq!(bed.tot_pages(), 4 * 512);
    assert_eq!(bed.hv.heap().census(), census);
    assert_eq!(mapped(&bed, &gfns), [true; 4]);
    bed.check();
}

#[test]
fn calls_count_down_per_op() {
    let mut bed = Bed::new();
    inject(&mut bed, FaultOp::Populate, 3, FaultEffect::Stop(1));
    inject(
        &mut bed,
        FaultOp::Decrease,
        2,
        FaultEffect::Fail(Errno::EAGAIN),
    );
    for (left, gfn) in [(2, 0x10), (1, 0x20)] {
        assert_eq!(bed.populate(0, &[gfn, gfn + 1]), 1);
        assert!(bed.mfn_of(gfn + 1).is_none());
        assert_eq!(
            pending(&bed, FaultOp::Populate),
            [Fault {
                calls: left,
                effect: FaultEffect::Stop(1)
            }]
        );
        assert_eq!(bed.decrease(0, &[gfn]), -11);
    }
    assert_eq!(pending(&bed, FaultOp::Decrease), []);
    // The third populate is the last one cut; the fourth is whole again.
    assert_eq!(bed.populate(0, &[0x30, 0x31]), 1);
    assert_eq!(pending(&bed, FaultOp::Populate), []);
    assert_eq!(bed.populate(0, &[0x40, 0x41, 0x42]), 3);
    assert_eq!(bed.tot_pages(), 2 + 1 + 3);
    // Ops do not affect each other's count: an increase or a decrease is not a populate.
    inject(&mut bed, FaultOp::Populate, 1, FaultEffect::Stop(0));
    assert_eq!(bed.decrease(0, &[0x10]), 1);
    bed.put_reservation(0, &[0], DomId::SELF.0);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_INCREASE_RESERVATION, ARG),
        1
    );
    assert_eq!(pending(&bed, FaultOp::Populate).len(), 1);
    bed.hv.clear_faults(DOM).unwrap();
    assert_eq!(pending(&bed, FaultOp::Populate), []);
    assert_eq!(bed.populate(0, &[0x50]), 1);
    bed.check();
}

#[test]
fn queued_faults_apply_in_order() {
    let mut bed = Bed::new();
    let gfns = superpages(6);
    assert_eq!(bed.populate(9, &gfns), 6);
    inject(&mut bed, FaultOp::Decrease, 1, FaultEffect::Stop(2));
    inject(&mut bed, FaultOp::Decrease, 2, FaultEffect::Stop(0));
    inject(
        &mut bed,
        FaultOp::Decrease,
        1,
        FaultEffect::Fail(Errno::EBUSY),
    );
    assert_eq!(bed.decrease(9, &gfns), 2);
    assert_eq!(bed.decrease(9, &gfns[2..]), 0);
    assert_eq!(bed.decrease(9, &gfns[2..]), 0);
    assert_eq!(bed.decrease(9, &gfns[2..]), -16);
    assert_eq!(bed.tot_pages(), 4 * 512);
    assert_eq!(bed.decrease(9, &gfns[2..]), 4);
    assert_eq!(bed.tot_pages(), 0);
    for _ in 0..ebbhv_core::hv::MAX_PENDING {
        inject(&mut bed, FaultOp::Populate, 1, FaultEffect::Stop(0));
    }
    let fault = Fault {
        calls: 1,
        effect: FaultEffect::Stop(0),
    };
    assert_eq!(
        bed.hv.add_fault(DOM, FaultOp::Populate, fault),
        Err(Errno::ENOSPC)
    );
    assert_eq!(pending(&bed, FaultOp::Populate).len(), 8);
    bed.check();
}

#[test]
fn a_cut_larger_than_the_call_lets_it_finish() {
    let mut bed = Bed::new();
    inject(&mut bed, FaultOp::Populate, 1, FaultEffect::Stop(100));
    assert_eq!(bed.populate(0, &[0x10, 0x11]), 2);
    assert_eq!(pending(&bed, FaultOp::Populate), []);
    bed.check();
}

#[test]
fn the_control_plane_and_refused_requests_are_not_counted() {
    let mut bed = Bed::new();
    inject(
        &mut bed,
        FaultOp::Populate,
        1,
        FaultEffect::Fail(Errno::EBUSY),
    );
    bed.put_reservation(0, &[0x60], DOM.0);
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_POPULATE_PHYSMAP, ARG),
        1
    );
    // Malformed: order above the guest's maximum.
    assert_eq!(bed.populate(10, &[0x40000]), 0);
    assert_eq!(pending(&bed, FaultOp::Populate).len(), 1);
    assert_eq!(bed.populate(0, &[0x61]), -16);
    bed.check();
}

#[test]
fn a_continued_call_is_one_call_cut_at_the_same_extent() {
    let config = Config {
        preempt_frames: 1024,
        ..Config::default()
    };
    let mut bed = Bed::with(config, HEAP_FREE, 0x4000);
    let gfns: Vec<u64> = (0..8).map(|i| i * 512).collect();
    inject(&mut bed, FaultOp::Populate, 1, FaultEffect::Stop(5));
    bed.put_reservation(9, &gfns, DomId::SELF.0);
    let mut call = Hypercall {
        nr: MEMORY_OP,
        args: [XENMEM_POPULATE_PHYSMAP, ARG, 0, 0, 0],
    };
    let mut continuations = 0;
    let done = loop {
        match bed.call_once(Caller::Guest(DOM), call) {
            Outcome::Continue(next) => {
                continuations += 1;
                call = next;
            }
            Outcome::Return(done) => break done,
        }
    };
    assert_eq!((done, continuations), (5, 2));
    assert_eq!(bed.tot_pages(), 5 * 512);
    assert!(bed.mfn_of(5 * 512).is_none());
    // A populate after the cut call ends is whole, continuations and all.
    assert_eq!(bed.populate(9, &gfns[5..]), 3);
    assert_eq!(bed.tot_pages(), 8 * 512);
    assert_eq!(bed.hv.domain(DOM).unwrap().p2m().mapped_frames(), 8 * 512);
    assert!(bed.mfn_of(Gfn(7 * 512 + 511).0).is_some());
    bed.check();
}

#[test]
fn bad_injections_change_nothing() {
    let mut bed = Bed::new();
    let fault = Fault {
        calls: 0,
        effect: FaultEffect::Stop(1),
    };
    assert_eq!(
        bed.hv.add_fault(DOM, FaultOp::Populate, fault),
        Err(Errno::EINVAL)
    );
    let fault = Fault { calls: 1, ..fault };
    assert_eq!(
        bed.hv.add_fault(DomId(9), FaultOp::Populate, fault),
        Err(Errno::ESRCH)
    );
    assert_eq!(pending(&bed, FaultOp::Populate), []);
    assert_eq!(bed.populate(0, &[0x10, 0x11]), 2);
}
