//! populate_physmap, decrease_reservation, increase_reservation and the
//! reservation queries, through the hypercall dispatcher.

mod common;

use common::*;
use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, PAGE_SHIFT};
use ebbhv_core::hv::Config;
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::p2m::PageSize;

#[test]
fn populate_maps_zeroed_frames_and_counts_extents() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[0x10, 0x11, 0x30]), 3);
    assert_eq!(bed.populate(9, &[0x200, 0x400]), 2);
    assert_eq!(bed.tot_pages(), 3 + 1024);
    let p2m = bed.hv.domain(DOM).unwrap().p2m();
    assert_eq!(p2m.lookup(Gfn(0x2ff)).unwrap().size, PageSize::Size2M);
    assert!(bed.frames.zeroed >= 3 + 1024);
    bed.check();
}

#[test]
fn populate_stops_at_the_first_bad_extent() {
    let mut bed = Bed::new();
    // Unaligned 2 MiB extent.
    assert_eq!(bed.populate(9, &[0x200, 0x201]), 1);
    // Duplicate gfn in one request.
    assert_eq!(bed.populate(0, &[0x10, 0x11, 0x10, 0x12]), 2);
    // Beyond the p2m limit, and overflowing.
    assert_eq!(bed.populate(0, &[0x20, 1 << 36]), 1);
    assert_eq!(bed.populate(9, &[!511]), 0);
    // Order above the guest's maximum (9), and above MAX_ORDER.
    assert_eq!(bed.populate(10, &[0x40000]), 0);
    assert_eq!(bed.populate(40, &[0]), 0);
    bed.check();
}

#[test]
fn populate_respects_max_pages_and_heap_exhaustion() {
    let mut bed = Bed::with(Config::default(), HEAP_FREE, 600);
    assert_eq!(bed.populate(9, &[0, 0x200]), 1);
    assert_eq!(bed.populate(0, &(0x200..0x300).collect::<Vec<_>>()), 88);
    assert_eq!(bed.tot_pages(), 600);
    let mut bed = Bed::with(Config::default(), 1024, 1 << 20);
    // One frame went to the shared info page: only one 2 MiB block is left.
    assert_eq!(bed.populate(9, &[0, 0x200, 0x400]), 1);
    bed.check();
}

#[test]
fn bad_pointers_and_domains_return_the_count_so_far() {
    let mut bed = Bed::new();
    // The argument itself is unreadable.
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, 0x1000),
        0
    );
    // The extent list runs off the end of guest memory after two entries.
    let request = XenMemoryReservation {
        extent_start: ARG + 0x10_0000 - 16,
        nr_extents: 3,
        domid: DomId::SELF.0,
        ..Default::default()
    };
    bed.mem.put(ARG + 0x10_0000 - 16, &0x50u64);
    bed.mem.put(ARG + 0x10_0000 - 8, &0x51u64);
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, ARG),
        2
    );
    // Another domain, from a guest; an unknown domain; DOMID_SELF from the control plane.
    bed.put_reservation(0, &[0x60], 7);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, ARG),
        0
    );
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_POPULATE_PHYSMAP, ARG),
        0
    );
    bed.put_reservation(0, &[0x60], DomId::SELF.0);
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_POPULATE_PHYSMAP, ARG),
        0
    );
    // The control plane naming the domain works.
    bed.put_reservation(0, &[0x60], DOM.0);
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_POPULATE_PHYSMAP, ARG),
        1
    );
    bed.check();
}

#[test]
fn nr_extents_overflow_and_pod_are_refused() {
    let mut bed = Bed::new();
    let mut request = XenMemoryReservation {
        extent_start: LIST,
        nr_extents: MAX_NR_EXTENTS + 1,
        domid: DomId::SELF.0,
        ..Default::default()
    };
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, ARG),
        0
    );
    request.nr_extents = 1;
    request.mem_flags = XENMEMF_POPULATE_ON_DEMAND;
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, ARG),
        0
    );
}

/// The heap of `Bed` ends at frame 0x10_4020, just past 4 GiB.
const HEAP_END_BITS: u32 = 33;

/// One 4 KiB populate at a new gfn with `mem_flags`, by `caller`; the extents done.
fn populate_with_flags(bed: &mut Bed, caller: Caller, mem_flags: u32, gfn: u64) -> i64 {
    bed.put_reservation(0, &[gfn], DOM.0);
    let mut request: XenMemoryReservation = bed.mem.get(ARG);
    request.mem_flags = mem_flags;
    bed.mem.put(ARG, &request);
    bed.memory_op(caller, XENMEM_POPULATE_PHYSMAP, ARG)
}

/// XSA-231's class: `mem_flags` naming a node, an exact node, a machine-address
/// limit or undefined bits is decided as Xen decides it, the node never used as an
/// index, and a refused request changes nothing.
#[test]
fn mem_flags_are_refused_or_ignored_as_xen_does() {
    let mut bed = Bed::new();
    let guest = Caller::Guest(DOM);
    let node = |n: u32| (n + 1) << XENMEMF_NODE_SHIFT;
    let cases: [(Caller, u32, i64); 16] = [
        // address_bits: a page or less, below the heap's end, at or above it.
        (guest, 1, 0),
        (guest, PAGE_SHIFT, 0),
        (guest, 20, 0),
        (guest, HEAP_END_BITS - 1, 0),
        (guest, HEAP_END_BITS, 1),
        (guest, 0xff, 1),
        // A guest's node hints are ignored, its exact requests refused, node 0 too.
        (guest, node(0), 1),
        (guest, node(254), 1),
        (guest, node(0) | XENMEMF_EXACT_NODE_REQUEST, 0),
        (guest, node(254) | XENMEMF_EXACT_NODE_REQUEST, 0),
        // The exact flag without a node asks for nothing; undefined bits are ignored.
        (guest, XENMEMF_EXACT_NODE_REQUEST, 1),
        (guest, 0xfff8_0000, 1),
        // The control plane: node 0 exists, node 1 does not, 64 is past MAX_NUMNODES.
        (
            Caller::ControlPlane,
            node(0) | XENMEMF_EXACT_NODE_REQUEST,
            1,
        ),
        (
            Caller::ControlPlane,
            node(1) | XENMEMF_EXACT_NODE_REQUEST,
            0,
        ),
        (Caller::ControlPlane, node(1), 1),
        (Caller::ControlPlane, node(MAX_NUMNODES), 0),
    ];
    for (i, (caller, flags, expected)) in cases.into_iter().enumerate() {
        let gfn = 0x100 + i as u64;
        let pages = bed.tot_pages();
        let done = populate_with_flags(&mut bed, caller, flags, gfn);
        assert_eq!(done, expected, "case {i}: mem_flags {flags:#x}");
        assert_eq!(bed.tot_pages(), pages + expected as u64, "case {i}");
        assert_eq!(bed.mfn_of(gfn).is_some(), expected == 1, "case {i}");
    }
    // The same decision for decrease: an exact node refuses it before any extent.
    bed.put_reservation(0, &[0x100 + 4], DomId::SELF.0);
    let mut request: XenMemoryReservation = bed.mem.get(ARG);
    request.mem_flags = node(3) | XENMEMF_EXACT_NODE_REQUEST;
    bed.mem.put(ARG, &request);
    assert_eq!(bed.memory_op(guest, XENMEM_DECREASE_RESERVATION, ARG), 0);
    assert!(bed.mfn_of(0x100 + 4).is_some());
    request.mem_flags = node(3);
    bed.mem.put(ARG, &request);
    assert_eq!(bed.memory_op(guest, XENMEM_DECREASE_RESERVATION, ARG), 1);
    bed.check();
}

#[test]
fn long_requests_continue_with_the_extent_in_the_command() {
    let config = Config {
        preempt_frames: 1024,
        ..Config::default()
    };
    let mut bed = Bed::with(config, HEAP_FREE, 0x4000);
    let gfns: Vec<u64> = (0..5).map(|i| i * 512).collect();
    bed.put_reservation(9, &gfns, DomId::SELF.0);
    let first = Hypercall {
        nr: MEMORY_OP,
        args: [XENMEM_POPULATE_PHYSMAP, ARG, 0, 0, 0],
    };
    let Outcome::Continue(next) = bed.call_once(Caller::Guest(DOM), first) else {
        panic!("expected a continuation");
    };
    assert_eq!(
        next.args[0],
        XENMEM_POPULATE_PHYSMAP | 2 << MEMOP_EXTENT_SHIFT
    );
    assert_eq!(bed.tot_pages(), 1024);
    assert_eq!(bed.memory_op(Caller::Guest(DOM), next.args[0], ARG), 5);
    assert_eq!(bed.tot_pages(), 5 * 512);
    // A start extent at or past nr_extents is returned as is.
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP | 9 << 6, ARG),
        9
    );
    bed.check();
}

#[test]
fn decrease_frees_frames_and_splits_superpages() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let free_before = bed.hv.heap().free_frames();
    assert_eq!(bed.decrease(0, &[0x201, 0x3ff]), 2);
    assert_eq!(bed.tot_pages(), 510);
    assert_eq!(bed.hv.heap().free_frames(), free_before + 2);
    assert_eq!(bed.mfn_of(0x201), None);
    bed.check();
    // A 2 MiB extent over 4 KiB holes fails as a whole; the whole rest goes at order 0.
    assert_eq!(bed.decrease(9, &[0x200]), 0);
    assert_eq!(bed.tot_pages(), 510);
    let rest: Vec<u64> = (0x200..0x400)
        .filter(|g| *g != 0x201 && *g != 0x3ff)
        .collect();
    assert_eq!(bed.decrease(0, &rest), 510);
    assert_eq!(bed.tot_pages(), 0);
    // Unmapped, duplicate, out of range.
    assert_eq!(bed.populate(0, &[5]), 1);
    assert_eq!(bed.decrease(0, &[5, 5]), 1);
    assert_eq!(bed.decrease(0, &[1 << 40]), 0);
    bed.check();
}

#[test]
fn decrease_of_a_whole_superpage_returns_the_block() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x400]), 1);
    let census = bed.hv.heap().census();
    assert_eq!(bed.decrease(9, &[0x400]), 1);
    assert_eq!(bed.hv.heap().census().free, census.free + 512);
    bed.check();
}

#[test]
fn increase_allocates_without_mapping() {
    let mut bed = Bed::new();
    bed.put_reservation(9, &[0], DomId::SELF.0);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_INCREASE_RESERVATION, ARG),
        1
    );
    assert_eq!(bed.tot_pages(), 512);
    assert_eq!(bed.hv.domain(DOM).unwrap().p2m().mapped_frames(), 0);
    bed.check();
}

#[test]
fn reservation_queries() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[0x123]), 1);
    bed.mem.put(ARG, &DomId::SELF.0);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_CURRENT_RESERVATION, ARG),
        1
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_MAXIMUM_RESERVATION, ARG),
        0x2000
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_MAXIMUM_GPFN, ARG),
        0x123
    );
    assert_eq!(bed.decrease(0, &[0x123]), 1);
    bed.mem.put(ARG, &DomId::SELF.0);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_MAXIMUM_GPFN, ARG),
        0x123,
        "a high-water mark"
    );
    bed.mem.put(ARG, &2u16);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_CURRENT_RESERVATION, ARG),
        -1,
        "EPERM"
    );
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_CURRENT_RESERVATION, ARG),
        -3,
        "ESRCH"
    );
    bed.mem.put(ARG, &DOM.0);
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_CURRENT_RESERVATION, ARG),
        0
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_CURRENT_RESERVATION, 0x10),
        -14,
        "EFAULT"
    );
}

#[test]
fn memory_map_returns_at_most_the_room_given() {
    let mut bed = Bed::new();
    bed.mem.put(
        ARG,
        &XenMemoryMap {
            nr_entries: 2,
            pad: 0,
            buffer: BUF,
        },
    );
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_MEMORY_MAP, ARG), 0);
    assert_eq!(bed.mem.get::<XenMemoryMap>(ARG).nr_entries, 2);
    let second: E820Entry = bed.mem.get(BUF + 20);
    assert_eq!({ second.addr }, 0x10_0000);
    assert_eq!({ second.kind }, E820_RAM);
    bed.mem.put(
        ARG,
        &XenMemoryMap {
            nr_entries: 10,
            pad: 0,
            buffer: BUF,
        },
    );
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_MEMORY_MAP, ARG), 0);
    assert_eq!(bed.mem.get::<XenMemoryMap>(ARG).nr_entries, 3);
    bed.mem.put(
        ARG,
        &XenMemoryMap {
            nr_entries: 10,
            pad: 0,
            buffer: 0x10,
        },
    );
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_MEMORY_MAP, ARG),
        -14
    );
    assert_eq!(
        bed.memory_op(Caller::ControlPlane, XENMEM_MEMORY_MAP, ARG),
        -3
    );
}

#[test]
fn unknown_ops_are_enosys() {
    let mut bed = Bed::new();
    assert_eq!(bed.memory_op(Caller::Guest(DOM), 63, ARG), -38);
    assert_eq!(bed.call(Caller::Guest(DOM), 1000, [0; 5]), -38);
}
