//! populate_physmap, decrease_reservation, increase_reservation and the
//! reservation queries, through the hypercall dispatcher.

mod common;

use common::*;
use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn};
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
    // address_bits are accepted: a translated guest never sees machine addresses.
    request.mem_flags = 32;
    bed.mem.put(LIST, &0x77u64);
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.memory_op(Caller::Guest(DOM), XENMEM_POPULATE_PHYSMAP, ARG),
        1
    );
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
