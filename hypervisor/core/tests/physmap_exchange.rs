//! add_to_physmap, remove_from_physmap and exchange, through the dispatcher.

mod common;

use common::*;
use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, Mfn};
use ebbhv_core::heap::FrameState;
use ebbhv_core::hv::Config;
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::p2m::{EntryType, PageSize};

fn add(bed: &mut Bed, space: u32, idx: u64, gpfn: u64, size: u16) -> i64 {
    let request = XenAddToPhysmap {
        domid: DomId::SELF.0,
        size,
        space,
        idx,
        gpfn,
    };
    bed.mem.put(ARG, &request);
    bed.memory_op(Caller::Guest(DOM), XENMEM_ADD_TO_PHYSMAP, ARG)
}

#[test]
fn shared_info_replaces_ram_and_moves() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let ram = bed.mfn_of(0x250).unwrap();
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0x250, 0), 0);
    let shared = bed.hv.domain(DOM).unwrap().shared_info();
    assert_eq!(bed.mfn_of(0x250), Some(shared));
    assert_eq!(bed.tot_pages(), 511, "the RAM page under it was given back");
    assert!(matches!(
        bed.hv.heap().state(ram),
        Some(FrameState::Free { .. })
    ));
    bed.check();
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0x9000, 0), 0);
    assert_eq!(bed.mfn_of(0x250), None);
    assert_eq!(bed.mfn_of(0x9000), Some(shared));
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0x9000, 0), 0);
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 1, 0x9000, 0), -22);
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 1 << 36, 0), -22);
    // Decrease cannot take a shared frame away.
    assert_eq!(bed.decrease(0, &[0x9000]), 0);
    bed.check();
}

#[test]
fn special_pages_are_lent_mapped_and_freed_with_the_domain() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let free = bed.hv.heap().free_frames();
    let page = bed
        .hv
        .map_special_page(DOM, Gfn(0x2fe), &mut bed.frames)
        .unwrap();
    assert_eq!(bed.mfn_of(0x2fe), Some(page));
    assert_eq!(bed.tot_pages(), 511, "the RAM page under it was given back");
    assert_eq!(bed.hv.domain(DOM).unwrap().special_pages(), [page]);
    assert!(matches!(
        bed.hv.heap().state(page),
        Some(FrameState::Hypervisor {
            lent_to: Some(DOM),
            ..
        })
    ));
    bed.check();
    // XSA-277's class: neither decrease nor remove_from_physmap takes it away, and
    // nothing is mapped over it; it stays lent and mapped.
    assert_eq!(bed.decrease(0, &[0x2fe]), 0);
    bed.mem.put(
        ARG,
        &XenRemoveFromPhysmap {
            domid: DomId::SELF.0,
            pad: [0; 6],
            gpfn: 0x2fe,
        },
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_REMOVE_FROM_PHYSMAP, ARG),
        -1
    );
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0x2fe, 0), -1);
    assert_eq!(add(&mut bed, XENMAPSPACE_GRANT_TABLE, 0, 0x2fe, 0), -1);
    assert_eq!(add(&mut bed, XENMAPSPACE_GMFN, 0x2fd, 0x2fe, 0), -1);
    assert_eq!(bed.mfn_of(0x2fe), Some(page));
    assert!(
        bed.mfn_of(0x2fd).is_some(),
        "the refused move kept its source"
    );
    assert_eq!(bed.tot_pages(), 511);
    assert!(matches!(
        bed.hv.heap().state(page),
        Some(FrameState::Hypervisor {
            lent_to: Some(DOM),
            gfn: Some(Gfn(0x2fe)),
        })
    ));
    bed.check();
    // A bad frame or domain is refused.
    assert!(bed
        .hv
        .map_special_page(DOM, Gfn(1 << 36), &mut bed.frames)
        .is_err());
    assert!(bed
        .hv
        .map_special_page(DomId(9), Gfn(1), &mut bed.frames)
        .is_err());
    bed.check();
    bed.hv.destroy_domain(DOM).unwrap();
    assert!(bed.hv.heap().free_frames() > free);
    assert!(matches!(
        bed.hv.heap().state(page),
        Some(FrameState::Free { .. })
    ));
}

#[test]
fn grant_frames_are_allocated_on_first_map() {
    let mut bed = Bed::new();
    assert_eq!(add(&mut bed, XENMAPSPACE_GRANT_TABLE, 3, 0xa000, 0), 0);
    assert_eq!(bed.hv.domain(DOM).unwrap().grant_frames().len(), 4);
    assert_eq!(
        bed.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .entry(Gfn(0xa000))
            .unwrap()
            .kind,
        EntryType::HypervisorShared
    );
    assert_eq!(
        add(&mut bed, XENMAPSPACE_GRANT_TABLE, 64, 0xa001, 0),
        -22,
        "beyond max_grant_frames"
    );
    assert_eq!(
        add(
            &mut bed,
            XENMAPSPACE_GRANT_TABLE,
            XENMAPIDX_GRANT_TABLE_STATUS,
            0xa001,
            0
        ),
        -22
    );
    assert_eq!(add(&mut bed, 4, 0, 0xa001, 0), -22, "gmfn_foreign");
    // Mapping grant frame 3 over shared info unmaps the latter.
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0xb000, 0), 0);
    assert_eq!(add(&mut bed, XENMAPSPACE_GRANT_TABLE, 3, 0xb000, 0), 0);
    let shared = bed.hv.domain(DOM).unwrap().shared_info();
    assert_eq!(
        bed.hv.heap().state(shared),
        Some(FrameState::Hypervisor {
            lent_to: Some(DOM),
            gfn: None
        })
    );
    bed.check();
}

#[test]
fn gmfn_moves_a_ram_frame() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[0x10, 0x11, 0x12, 0x20]), 4);
    let frame = bed.mfn_of(0x10).unwrap();
    let displaced = bed.mfn_of(0x20).unwrap();
    assert_eq!(add(&mut bed, XENMAPSPACE_GMFN, 0x10, 0x20, 0), 0);
    assert_eq!(bed.mfn_of(0x20), Some(frame));
    assert_eq!(bed.mfn_of(0x10), None);
    assert!(matches!(
        bed.hv.heap().state(displaced),
        Some(FrameState::Free { .. })
    ));
    assert_eq!(bed.tot_pages(), 3);
    assert_eq!(
        add(&mut bed, XENMAPSPACE_GMFN, 0x10, 0x30, 0),
        -22,
        "source not mapped"
    );
    assert_eq!(
        add(&mut bed, XENMAPSPACE_GMFN, 0x20, 0x20, 0),
        0,
        "in place"
    );
    assert_eq!(add(&mut bed, XENMAPSPACE_GMFN_RANGE, 0x11, 0x40, 2), 0);
    assert!(bed.mfn_of(0x40).is_some() && bed.mfn_of(0x41).is_some());
    assert_eq!(
        add(&mut bed, XENMAPSPACE_GMFN_RANGE, 0x40, 0x50, 3),
        -22,
        "third is unmapped"
    );
    bed.check();
}

#[test]
fn remove_from_physmap() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[0x10]), 1);
    assert_eq!(add(&mut bed, XENMAPSPACE_SHARED_INFO, 0, 0x11, 0), 0);
    for (gpfn, expect) in [(0x10, 0), (0x11, 0), (0x12, -22)] {
        bed.mem.put(
            ARG,
            &XenRemoveFromPhysmap {
                domid: DomId::SELF.0,
                pad: [0; 6],
                gpfn,
            },
        );
        assert_eq!(
            bed.memory_op(Caller::Guest(DOM), XENMEM_REMOVE_FROM_PHYSMAP, ARG),
            expect
        );
    }
    assert_eq!(bed.tot_pages(), 0);
    bed.mem.put(
        ARG,
        &XenRemoveFromPhysmap {
            domid: 9,
            pad: [0; 6],
            gpfn: 1,
        },
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_REMOVE_FROM_PHYSMAP, ARG),
        -1
    );
    bed.check();
}

fn put_exchange(
    bed: &mut Bed,
    ins: &[u64],
    in_order: u32,
    outs: &[u64],
    out_order: u32,
    done: u64,
) {
    for (i, gfn) in ins.iter().enumerate() {
        bed.mem.put(LIST + 8 * i as u64, gfn);
    }
    for (i, gfn) in outs.iter().enumerate() {
        bed.mem.put(LIST2 + 8 * i as u64, gfn);
    }
    let side = |list, n: usize, order| XenMemoryReservation {
        extent_start: list,
        nr_extents: n as u64,
        extent_order: order,
        domid: DomId::SELF.0,
        ..Default::default()
    };
    let exchange = XenMemoryExchange {
        input: side(LIST, ins.len(), in_order),
        output: side(LIST2, outs.len(), out_order),
        nr_exchanged: done,
    };
    bed.mem.put(ARG, &exchange);
}

fn exchanged(bed: &mut Bed) -> u64 {
    bed.mem.get::<XenMemoryExchange>(ARG).nr_exchanged
}

#[test]
fn exchange_makes_scattered_frames_contiguous_in_place() {
    let mut bed = Bed::new();
    // Back 0x400..0x600 with 4 KiB frames, interleaved with another range so that
    // they are not contiguous.
    for i in 0..512u64 {
        assert_eq!(bed.populate(0, &[0x400 + i, 0x1000 + i]), 2);
    }
    assert_ne!(
        bed.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .lookup(Gfn(0x400))
            .unwrap()
            .size,
        PageSize::Size2M
    );
    let tot = bed.tot_pages();
    let ins: Vec<u64> = (0x400..0x600).collect();
    put_exchange(&mut bed, &ins, 0, &[0x400], 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(exchanged(&mut bed), 512);
    let leaf = bed
        .hv
        .domain(DOM)
        .unwrap()
        .p2m()
        .lookup(Gfn(0x400))
        .unwrap();
    assert_eq!(leaf.size, PageSize::Size2M);
    assert_eq!(bed.tot_pages(), tot);
    bed.check();
    // And back: one 2 MiB extent for 512 4 KiB frames elsewhere.
    let outs: Vec<u64> = (0x2000..0x2200).collect();
    put_exchange(&mut bed, &[0x400], 9, &outs, 0, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(bed.mfn_of(0x400), None);
    assert!(bed.mfn_of(0x21ff).is_some());
    assert_eq!(bed.tot_pages(), tot);
    bed.check();
}

/// 512 4 KiB input extents for one 2 MiB output at the same gfns while those gfns are
/// one 2 MiB leaf (populated whole, or merged again by ebbhv after a split): the one
/// mapped piece spans all 512 inputs, and together they cover it.
#[test]
fn exchange_of_small_extents_under_one_superpage_into_one_large_one() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x400]), 1);
    let tot = bed.tot_pages();
    let ins: Vec<u64> = (0x400..0x600).collect();
    put_exchange(&mut bed, &ins, 0, &[0x400], 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(exchanged(&mut bed), 512);
    let leaf = bed
        .hv
        .domain(DOM)
        .unwrap()
        .p2m()
        .lookup(Gfn(0x400))
        .unwrap();
    assert_eq!(leaf.size, PageSize::Size2M);
    assert_eq!(bed.tot_pages(), tot);
    bed.check();
    // One input swapped for a frame outside the leaf: the same size, but the leaf's
    // last frame is in no input, so the output is not covered; nothing changes.
    assert_eq!(bed.populate(0, &[0x1000]), 1);
    let before = bed.mfn_of(0x400);
    let mut ins = ins;
    ins[511] = 0x1000;
    put_exchange(&mut bed, &ins, 0, &[0x400], 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), -22);
    assert_eq!(bed.mfn_of(0x400), before);
    bed.check();
}

/// Many 4 KiB -> 2 MiB chunks in place, where every output extent is mapped as
/// 512 pieces that each must be found among 512 inputs (issue 13: this was 512²
/// comparisons per chunk); then the same with one input of a chunk swapped for a
/// frame outside it, which must still be refused at that chunk.
#[test]
fn exchange_of_many_small_extents_into_large_ones() {
    const CHUNKS: u64 = 4;
    let mut bed = Bed::new();
    let base = 0x800u64;
    for i in 0..CHUNKS * 512 {
        assert_eq!(bed.populate(0, &[base + i, 0x4000 + i]), 2);
    }
    let ins: Vec<u64> = (base..base + CHUNKS * 512).collect();
    let outs: Vec<u64> = (0..CHUNKS).map(|c| base + c * 512).collect();
    let tot = bed.tot_pages();
    put_exchange(&mut bed, &ins, 0, &outs, 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(exchanged(&mut bed), CHUNKS * 512);
    for out in &outs {
        let leaf = bed.hv.domain(DOM).unwrap().p2m().lookup(Gfn(*out)).unwrap();
        assert_eq!(leaf.size, PageSize::Size2M);
    }
    assert_eq!(bed.tot_pages(), tot);
    bed.check();

    // Back to 4 KiB frames at the same place, then an input list whose third
    // chunk names a frame of the other range instead of its own last frame.
    let small: Vec<u64> = (base..base + CHUNKS * 512).collect();
    put_exchange(&mut bed, &outs, 9, &small, 0, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    let mut ins = ins;
    ins[3 * 512 - 1] = 0x4000;
    put_exchange(&mut bed, &ins, 0, &outs, 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), -22);
    assert_eq!(exchanged(&mut bed), 2 * 512);
    assert!(
        bed.mfn_of(0x4000).is_some(),
        "the refused chunk gave nothing up"
    );
    assert_eq!(bed.tot_pages(), tot);
    bed.check();
}

/// Inputs, their order, outputs, their order, nr_exchanged, expected result.
type ExchangeCase = (&'static [u64], u32, &'static [u64], u32, u64, i64);

#[test]
fn exchange_checks_its_arguments() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[1, 2, 3, 4]), 4);
    let cases: [ExchangeCase; 6] = [
        (&[1, 2], 0, &[8], 0, 0, -22),    // sizes differ
        (&[1], 0, &[8], 0, 2, -22),       // nr_exchanged beyond nr_extents
        (&[1], 10, &[0], 10, 0, -1),      // above the guest's max order
        (&[1, 1], 0, &[8, 9], 0, 0, -22), // duplicate inputs
        (&[1, 7], 0, &[8, 9], 0, 0, -22), // 7 is not the guest's
        (&[1, 2], 0, &[8, 3], 0, 0, -22), // output over RAM not given up
    ];
    for (ins, in_order, outs, out_order, done, expect) in cases {
        put_exchange(&mut bed, ins, in_order, outs, out_order, done);
        assert_eq!(
            bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG),
            expect,
            "{ins:?} {outs:?}"
        );
    }
    put_exchange(&mut bed, &[1], 0, &[8], 0, 0);
    let mut exchange: XenMemoryExchange = bed.mem.get(ARG);
    exchange.output.domid = 0;
    bed.mem.put(ARG, &exchange);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG),
        -22,
        "domids differ"
    );
    exchange.output.domid = DomId::SELF.0;
    exchange.input.extent_start = 0x10;
    bed.mem.put(ARG, &exchange);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), -14);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, 0x10),
        -14
    );
    // Already done: nothing to do.
    put_exchange(&mut bed, &[1], 0, &[8], 0, 1);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(bed.tot_pages(), 4);
    bed.check();
}

#[test]
fn exchange_reports_progress_by_chunk() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[1, 2, 3]), 3);
    put_exchange(&mut bed, &[1, 2, 9], 0, &[11, 12, 13], 0, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), -22);
    assert_eq!(exchanged(&mut bed), 2);
    assert!(bed.mfn_of(11).is_some() && bed.mfn_of(1).is_none());
    assert!(bed.mfn_of(3).is_some() && bed.mfn_of(13).is_none());
    bed.check();
}

#[test]
fn exchange_continues_through_nr_exchanged() {
    let config = Config {
        preempt_frames: 2,
        ..Config::default()
    };
    let mut bed = Bed::with(config, HEAP_FREE, 0x2000);
    assert_eq!(bed.populate(0, &[1, 2, 3, 4, 5]), 5);
    put_exchange(&mut bed, &[1, 2, 3, 4, 5], 0, &[11, 12, 13, 14, 15], 0, 0);
    let call = Hypercall {
        nr: MEMORY_OP,
        args: [XENMEM_EXCHANGE, ARG, 0, 0, 0],
    };
    assert_eq!(
        bed.call_once(Caller::Guest(DOM), call),
        Outcome::Continue(call)
    );
    assert_eq!(exchanged(&mut bed), 2);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(exchanged(&mut bed), 5);
    assert!((11..16).all(|g| bed.mfn_of(g).is_some()));
    bed.check();
}

#[test]
fn gmfn_range_continues_with_the_request_advanced() {
    let config = Config {
        preempt_frames: 2,
        ..Config::default()
    };
    let mut bed = Bed::with(config, HEAP_FREE, 0x2000);
    assert_eq!(bed.populate(0, &[1, 2, 3, 4, 5]), 5);
    let mfns: Vec<Option<Mfn>> = (1..6).map(|g| bed.mfn_of(g)).collect();
    bed.mem.put(
        ARG,
        &XenAddToPhysmap {
            domid: DomId::SELF.0,
            size: 5,
            space: XENMAPSPACE_GMFN_RANGE,
            idx: 1,
            gpfn: 0x41,
        },
    );
    let call = Hypercall {
        nr: MEMORY_OP,
        args: [XENMEM_ADD_TO_PHYSMAP, ARG, 0, 0, 0],
    };
    assert_eq!(
        bed.call_once(Caller::Guest(DOM), call),
        Outcome::Continue(call)
    );
    let rest: XenAddToPhysmap = bed.mem.get(ARG);
    assert_eq!((rest.size, rest.idx, rest.gpfn), (3, 3, 0x43));
    assert_eq!(bed.mfn_of(0x42), mfns[1]);
    assert_eq!(bed.mfn_of(0x43), None);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_ADD_TO_PHYSMAP, ARG),
        0
    );
    assert_eq!(
        (0x41..0x46).map(|g| bed.mfn_of(g)).collect::<Vec<_>>(),
        mfns
    );
    assert!((1..6).all(|g| bed.mfn_of(g).is_none()));
    bed.check();
}

#[test]
fn exchange_out_of_memory_changes_nothing() {
    let mut bed = Bed::with(Config::default(), 1024, 0x2000);
    let ins: Vec<u64> = (0..512).collect();
    assert_eq!(bed.populate(0, &ins), 512);
    // 511 frames are free but never a whole 2 MiB block.
    let before: Vec<Option<Mfn>> = ins.iter().map(|g| bed.mfn_of(*g)).collect();
    put_exchange(&mut bed, &ins, 0, &[0x200], 9, 0);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), -12);
    assert_eq!(exchanged(&mut bed), 0);
    assert_eq!(
        ins.iter().map(|g| bed.mfn_of(*g)).collect::<Vec<_>>(),
        before
    );
    bed.check();
}
