//! Property tests: random sequences of heap, p2m, hypercall and offline operations,
//! checking every invariant after every step (`Hypervisor::check_invariants`: each
//! frame in one state, tot_pages equals frames owned, p2m and ownership agree, free
//! lists hold exactly the free frames, no frame mapped twice) and that the NPT mirror
//! rebuilt from the change log equals the p2m. Injected reservation faults
//! (`fail-next`) cut or fail some of the guest's populates and decreases.

mod common;

use common::*;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn, Order};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::error::{Errno, Error};
use ebbhv_core::hv::{Config, Fault, FaultEffect, FaultOp, MapSpace};
use ebbhv_core::hypercall::Caller;
use proptest::prelude::*;

const OTHER: DomId = DomId(2);
const GFNS: u64 = 0x1400;

#[derive(Clone, Debug)]
enum Op {
    Populate { order: u32, gfn: u64 },
    Decrease { order: u32, gfn: u64 },
    Increase,
    Exchange { gfn: u64, to: u64, big: bool },
    Shared { gfn: u64 },
    Grant { index: u64, gfn: u64 },
    Move { from: u64, to: u64 },
    Remove { gfn: u64 },
    Offline { frame: u64, broken: bool },
    Online { frame: u64 },
    Remerge { gfn: Option<u64>, budget: u64 },
    LogDirty { on: bool },
    Clean,
    WriteFault { gfn: u64 },
    HypervisorAlloc { order: u8 },
    HypervisorFree,
    SetMax { pages: u64 },
    Other { create: bool },
    BootMemory { gfn: u64, frames: u64 },
    Inject(FaultOp, Fault),
    Batch { grow: bool, order: u32, gfn: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let gfn = 0..GFNS;
    prop_oneof![
        4 => (prop_oneof![Just(0u32), Just(9u32)], gfn.clone()).prop_map(|(order, gfn)| Op::Populate { order, gfn }),
        3 => (prop_oneof![Just(0u32), Just(9u32)], gfn.clone()).prop_map(|(order, gfn)| Op::Decrease { order, gfn }),
        1 => Just(Op::Increase),
        2 => (gfn.clone(), gfn.clone(), any::<bool>()).prop_map(|(gfn, to, big)| Op::Exchange { gfn, to, big }),
        1 => gfn.clone().prop_map(|gfn| Op::Shared { gfn }),
        1 => (0..4u64, gfn.clone()).prop_map(|(index, gfn)| Op::Grant { index, gfn }),
        1 => (gfn.clone(), gfn.clone()).prop_map(|(from, to)| Op::Move { from, to }),
        1 => gfn.clone().prop_map(|gfn| Op::Remove { gfn }),
        2 => (0..HEAP_FREE + HEAP_HYPERVISOR + 20, any::<bool>()).prop_map(|(frame, b)| Op::Offline { frame, broken: b && frame % 7 == 0 }),
        1 => (0..HEAP_FREE + 20).prop_map(|frame| Op::Online { frame }),
        2 => (prop::option::of(gfn.clone()), 0..2048u64).prop_map(|(gfn, budget)| Op::Remerge { gfn, budget }),
        1 => any::<bool>().prop_map(|on| Op::LogDirty { on }),
        1 => Just(Op::Clean),
        2 => gfn.clone().prop_map(|gfn| Op::WriteFault { gfn }),
        1 => prop_oneof![Just(0u8), Just(3u8), Just(9u8)].prop_map(|order| Op::HypervisorAlloc { order }),
        1 => Just(Op::HypervisorFree),
        1 => (0..0x3000u64).prop_map(|pages| Op::SetMax { pages }),
        1 => any::<bool>().prop_map(|create| Op::Other { create }),
        1 => (gfn.clone(), 0..1500u64).prop_map(|(gfn, frames)| Op::BootMemory { gfn, frames }),
        1 => (fault_op(), 1..4u64, prop_oneof![
            (0..6u64).prop_map(FaultEffect::Stop),
            Just(FaultEffect::Fail(Errno::EBUSY)),
        ]).prop_map(|(op, calls, effect)| Op::Inject(op, Fault { calls, effect })),
        // Offlines of guest frames that stay pending until the guest frees them.
        1 => (1..4u64).prop_map(|calls| Op::Inject(FaultOp::OfflineCopy, Fault {
            calls,
            effect: FaultEffect::Fail(Errno::ENOMEM),
        })),
        2 => (any::<bool>(), prop_oneof![Just(0u32), Just(9u32)], gfn)
            .prop_map(|(grow, order, gfn)| Op::Batch { grow, order, gfn }),
    ]
}

fn fault_op() -> impl Strategy<Value = FaultOp> {
    prop_oneof![Just(FaultOp::Populate), Just(FaultOp::Decrease)]
}

/// Runs one operation; requests may fail, but nothing may be fatal.
fn apply(bed: &mut Bed, hypervisor_blocks: &mut Vec<(Mfn, Order)>, op: &Op) {
    let frames = &mut bed.frames;
    let result: Result<(), Error> = match *op {
        Op::Populate { order, gfn } => {
            bed.populate(order, &[gfn]);
            Ok(())
        }
        Op::Decrease { order, gfn } => {
            bed.decrease(order, &[gfn]);
            Ok(())
        }
        Op::Increase => {
            bed.put_reservation(0, &[0], DomId::SELF.0);
            bed.memory_op(Caller::Guest(DOM), XENMEM_INCREASE_RESERVATION, ARG);
            Ok(())
        }
        Op::Exchange { gfn, to, big } => {
            if big {
                let ins: Vec<Gfn> = (0..512).map(|i| Gfn((gfn & !511) + i)).collect();
                bed.hv.exchange_chunk(
                    DOM,
                    &ins,
                    Order::ORDER_4K,
                    &[Gfn(to & !511)],
                    Order::ORDER_2M,
                    frames,
                )
            } else {
                bed.hv.exchange_chunk(
                    DOM,
                    &[Gfn(gfn), Gfn(gfn + 1)],
                    Order::ORDER_4K,
                    &[Gfn(to), Gfn(to + 3)],
                    Order::ORDER_4K,
                    frames,
                )
            }
        }
        Op::Shared { gfn } => bed
            .hv
            .add_to_physmap(DOM, MapSpace::SharedInfo, Gfn(gfn), frames),
        Op::Grant { index, gfn } => {
            bed.hv
                .add_to_physmap(DOM, MapSpace::GrantTable(index), Gfn(gfn), frames)
        }
        Op::Move { from, to } => {
            bed.hv
                .add_to_physmap(DOM, MapSpace::Gmfn(Gfn(from)), Gfn(to), frames)
        }
        Op::Remove { gfn } => bed.hv.remove_from_physmap(DOM, Gfn(gfn)),
        Op::Offline { frame, broken } => bed
            .hv
            .page_offline(Mfn(HEAP_START + frame), broken, frames)
            .map(|_| ()),
        Op::Online { frame } => {
            bed.hv.page_online(Mfn(HEAP_START + frame));
            Ok(())
        }
        Op::Remerge { gfn: Some(gfn), .. } => bed.hv.remerge_2m(DOM, Gfn(gfn), frames).map(|_| ()),
        Op::Remerge { gfn: None, budget } => {
            let copied = frames.copied;
            bed.hv.remerge_split(DOM, budget, frames).map(|pass| {
                assert!(
                    frames.copied - copied <= budget,
                    "a merge pass overran its budget"
                );
                assert!(pass.visited * 512 <= budget);
            })
        }
        Op::LogDirty { on: true } => bed.hv.log_dirty_enable(DOM).map_err(Error::from),
        Op::LogDirty { on: false } => bed.hv.log_dirty_disable(DOM).map_err(Error::from),
        Op::Clean => bed.hv.log_dirty_clean(DOM).map_err(Error::from),
        Op::WriteFault { gfn } => match bed.hv.write_fault(DOM, Gfn(gfn)) {
            Ok(_) => Ok(()),
            // Touching an unmapped frame kills the guest, which is the right answer.
            Err(ebbhv_core::error::Fatal::UnhandledAccess { .. }) => Ok(()),
            Err(fatal) => Err(Error::Fatal(fatal)),
        },
        Op::HypervisorAlloc { order } => {
            let order = Order::new(u64::from(order)).unwrap();
            if let Some(mfn) = bed.hv.alloc_hypervisor_frames(order, frames) {
                hypervisor_blocks.push((mfn, order));
            }
            Ok(())
        }
        Op::HypervisorFree => {
            if let Some((mfn, order)) = hypervisor_blocks.pop() {
                bed.hv.free_hypervisor_frames(mfn, order).unwrap();
            }
            Ok(())
        }
        Op::SetMax { pages } => bed.hv.set_max_pages(DOM, pages).map_err(Error::from),
        Op::Other { create: true } => {
            let config = DomainConfig {
                id: OTHER,
                max_pages: 0x800,
                memory_map: Vec::new(),
            };
            let created = bed.hv.create_domain(config, frames);
            if created.is_ok() {
                let _ = bed.hv.populate_boot_memory(
                    OTHER,
                    GfnRange::new(Gfn(0x100), Gfn(0x700)),
                    frames,
                );
            }
            Ok(())
        }
        Op::Other { create: false } => match bed.hv.destroy_domain(OTHER) {
            Err(Error::Fatal(fatal)) => Err(Error::Fatal(fatal)),
            _ => Ok(()),
        },
        Op::Inject(op, fault) => bed.hv.add_fault(DOM, op, fault).map_err(Error::from),
        Op::Batch { grow, order, gfn } => {
            // Five extents from an aligned gfn, populated (grow) or decreased, for
            // faults to cut into.
            let base = gfn >> order << order;
            let gfns: Vec<u64> = (0..5).map(|i| base + (i << order)).collect();
            if grow {
                bed.populate(order, &gfns);
            } else {
                bed.decrease(order, &gfns);
            }
            Ok(())
        }
        Op::BootMemory { gfn, frames: count } => {
            let range = GfnRange::new(Gfn(gfn), Gfn(gfn + count));
            bed.hv.populate_boot_memory(DOM, range, frames)
        }
    };
    if let Err(Error::Fatal(fatal)) = result {
        panic!("{op:?} was fatal: {fatal:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(ops in prop::collection::vec(op(), 1..80)) {
        let config = Config { preempt_frames: 1024, ..Config::default() };
        let mut bed = Bed::with(config, HEAP_FREE, 0x3000);
        let mut hypervisor_blocks = Vec::new();
        for op in &ops {
            apply(&mut bed, &mut hypervisor_blocks, op);
            if let Err(broken) = bed.hv.check_invariants() {
                panic!("after {op:?}: {broken}");
            }
            bed.check();
        }
        // Destroying every domain gives back every frame but the hypervisor's.
        while let Some((mfn, order)) = hypervisor_blocks.pop() {
            bed.hv.free_hypervisor_frames(mfn, order).unwrap();
        }
        let _ = bed.hv.destroy_domain(OTHER);
        bed.hv.destroy_domain(DOM).unwrap();
        let census = bed.hv.heap().census();
        prop_assert_eq!(census.domain + census.hypervisor, HEAP_HYPERVISOR);
        prop_assert_eq!(census.free + census.offlined + census.broken, HEAP_FREE);
        bed.hv.check_invariants().unwrap();
    }
}
