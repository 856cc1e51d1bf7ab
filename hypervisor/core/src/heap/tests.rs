//! Unit tests of the heap: allocation, freeing, scrubbing, offline/online/query.

use super::*;
use crate::abi::sysctl::page_offline::*;
use crate::addr::{DomId, Gfn, Mfn, MfnRange, Order};
use crate::error::Errno;
use crate::testing::FakeFrames;

const DOM: DomId = DomId(1);

/// 1 GiB of free RAM at 1 GiB, a 4 KiB hole in a second 2 MiB range, and 16 frames
/// the hypervisor uses.
fn heap() -> FrameHeap {
    let mut heap = FrameHeap::new(MfnRange::new(Mfn(0x40000), Mfn(0x80800))).unwrap();
    heap.add_free_ram(MfnRange::new(Mfn(0x40000), Mfn(0x80000)))
        .unwrap();
    heap.add_hypervisor_ram(MfnRange::new(Mfn(0x80000), Mfn(0x80010)))
        .unwrap();
    heap.add_free_ram(MfnRange::new(Mfn(0x80010), Mfn(0x80700)))
        .unwrap();
    heap.check().unwrap();
    heap
}

#[test]
fn metadata_is_at_most_16_bytes_per_frame() {
    let heap = heap();
    let frames = heap.span().len() as usize;
    assert!(
        heap.metadata_bytes() <= 16 * frames + 512,
        "{} bytes",
        heap.metadata_bytes()
    );
    assert_eq!(heap.metadata_bytes() / frames, FRAME_RECORD_BYTES);
}

#[test]
fn boot_ram_is_counted_and_reported() {
    let heap = heap();
    let census = heap.census();
    assert_eq!(census.free, 0x40000 + 0x6f0);
    assert_eq!(census.free_dirty, census.free);
    assert_eq!(census.hypervisor, 0x10);
    assert_eq!(census.ram, census.free + census.hypervisor);
    let ranges: Vec<_> = heap.ram_ranges().collect();
    assert_eq!(ranges, [MfnRange::new(Mfn(0x40000), Mfn(0x80700))]);
    assert_eq!(heap.state(Mfn(0x80700)), Some(FrameState::NotRam));
    assert_eq!(heap.state(Mfn(0x80800)), None);
    // The aligned gigabyte became one block.
    assert_eq!(
        heap.locate_free_block(Mfn(0x41234), FreeBlockSearch::WalkAlignments),
        Some((Mfn(0x40000), Order::ORDER_1G))
    );
}

#[test]
fn adding_ram_twice_or_outside_the_span_is_refused() {
    let mut heap = heap();
    let again = heap.add_free_ram(MfnRange::new(Mfn(0x40000), Mfn(0x40001)));
    assert_eq!(again, Err(HeapError::AlreadyRam));
    let outside = heap.add_free_ram(MfnRange::new(Mfn(0x80700), Mfn(0x80900)));
    assert_eq!(outside, Err(HeapError::OutOfSpan));
    let huge = FrameHeap::new(MfnRange::new(Mfn(0), Mfn(1 << 33)));
    assert!(matches!(huge, Err(HeapError::SpanTooLarge)));
}

#[test]
fn alloc_splits_and_free_merges_back() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let a = heap
        .alloc(Order::ORDER_4K, Owner::Hypervisor, &mut frames)
        .unwrap();
    let b = heap
        .alloc(Order::ORDER_2M, Owner::Domain(DOM), &mut frames)
        .unwrap();
    assert!(b.is_aligned(Order::ORDER_2M));
    assert_ne!(a, b);
    assert_eq!(
        frames.zeroed,
        1 + 512,
        "boot RAM is dirty: zeroed on first use"
    );
    heap.check().unwrap();
    heap.free(a, Order::ORDER_4K, Owner::Hypervisor).unwrap();
    heap.free(b, Order::ORDER_2M, Owner::Domain(DOM)).unwrap();
    heap.check().unwrap();
    assert_eq!(
        heap.locate_free_block(Mfn(0x40000), FreeBlockSearch::WalkAlignments),
        Some((Mfn(0x40000), Order::ORDER_1G))
    );
}

#[test]
fn scrubbed_frames_are_not_zeroed_again() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let total = heap.free_frames();
    assert_eq!(heap.scrub_free(u64::MAX, &mut frames), total);
    assert_eq!(heap.census().free_dirty, 0);
    let zeroed = frames.zeroed;
    heap.alloc(Order::ORDER_2M, Owner::Hypervisor, &mut frames)
        .unwrap();
    assert_eq!(frames.zeroed, zeroed);
}

#[test]
fn alloc_fails_when_no_block_is_large_enough() {
    let mut heap = FrameHeap::new(MfnRange::new(Mfn(0), Mfn(1024))).unwrap();
    let mut frames = FakeFrames::default();
    heap.add_free_ram(MfnRange::new(Mfn(0), Mfn(1024))).unwrap();
    assert!(heap
        .alloc(Order::ORDER_1G, Owner::Hypervisor, &mut frames)
        .is_none());
    assert!(heap
        .alloc(Order::ORDER_2M, Owner::Hypervisor, &mut frames)
        .is_some());
    assert!(heap
        .alloc(Order::ORDER_2M, Owner::Hypervisor, &mut frames)
        .is_some());
    assert!(heap
        .alloc(Order::ORDER_4K, Owner::Hypervisor, &mut frames)
        .is_none());
    heap.check().unwrap();
}

#[test]
fn free_checks_alignment_span_and_owner() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let block = heap
        .alloc(Order::ORDER_2M, Owner::Domain(DOM), &mut frames)
        .unwrap();
    assert_eq!(
        heap.free(block.plus(1), Order::ORDER_2M, Owner::Domain(DOM)),
        Err(HeapError::Unaligned)
    );
    assert_eq!(
        heap.free(block, Order::ORDER_2M, Owner::Domain(DomId(2))),
        Err(HeapError::WrongState)
    );
    assert_eq!(
        heap.free(block, Order::ORDER_2M, Owner::Hypervisor),
        Err(HeapError::WrongState)
    );
    assert_eq!(
        heap.free(Mfn(0x90000), Order::ORDER_4K, Owner::Hypervisor),
        Err(HeapError::OutOfSpan)
    );
    let free_frame = Mfn(0x7ffff);
    assert_eq!(
        heap.free(free_frame, Order::ORDER_4K, Owner::Hypervisor),
        Err(HeapError::WrongState)
    );
    heap.free(block, Order::ORDER_2M, Owner::Domain(DOM))
        .unwrap();
    heap.check().unwrap();
}

#[test]
fn gfn_and_lending_follow_ownership() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let mine = heap
        .alloc(Order::ORDER_4K, Owner::Domain(DOM), &mut frames)
        .unwrap();
    heap.set_gfn(mine, DOM, Some(Gfn(7))).unwrap();
    assert_eq!(
        heap.state(mine),
        Some(FrameState::Domain {
            owner: DOM,
            gfn: Some(Gfn(7))
        })
    );
    assert_eq!(
        heap.set_gfn(mine, DomId(2), None),
        Err(HeapError::WrongState)
    );
    let shared = heap
        .alloc(Order::ORDER_4K, Owner::Hypervisor, &mut frames)
        .unwrap();
    assert_eq!(
        heap.set_gfn(shared, DOM, Some(Gfn(1))),
        Err(HeapError::WrongState)
    );
    heap.lend(shared, Some(DOM)).unwrap();
    heap.set_gfn(shared, DOM, Some(Gfn(1))).unwrap();
    assert_eq!(
        heap.lend(shared, None),
        Err(HeapError::WrongState),
        "still mapped"
    );
    assert_eq!(
        heap.free(shared, Order::ORDER_4K, Owner::Hypervisor),
        Err(HeapError::WrongState)
    );
}

#[test]
fn offlining_a_free_frame_carves_it_out_of_its_block() {
    let mut heap = heap();
    let target = Mfn(0x40000 + 0x12345);
    let reply = heap.offline(target, false);
    assert_eq!(
        reply,
        OfflineReply {
            result: Ok(()),
            status: PG_OFFLINE_OFFLINED
        }
    );
    assert_eq!(heap.state(target), Some(FrameState::Offlined));
    heap.check().unwrap();
    // The rest of the gigabyte is back as one block of each order 0..=17.
    for order in Order::all().take(18) {
        assert!(heap.free_blocks[order] >= 1, "order {order:?}");
    }
    assert_eq!(heap.free_frames(), 0x40000 + 0x6f0 - 1);
    for probe in [
        Mfn(0x40000),
        Mfn(0x52344),
        Mfn(0x52346),
        Mfn(0x7ffff),
        Mfn(0x80123),
    ] {
        assert_eq!(
            heap.locate_free_block(probe, FreeBlockSearch::WalkAlignments),
            heap.locate_free_block(probe, FreeBlockSearch::ScanFreeLists),
        );
    }
    assert_eq!(
        heap.locate_free_block(target, FreeBlockSearch::ScanFreeLists),
        None
    );
}

#[test]
fn offline_statuses_match_xen() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let owned = heap
        .alloc(Order::ORDER_4K, Owner::Domain(DOM), &mut frames)
        .unwrap();
    let cases = [
        (Mfn(0x90000), Err(Errno::EINVAL), PG_OFFLINE_INVALID),
        (
            Mfn(0x80700),
            Err(Errno::EINVAL),
            PG_OFFLINE_FAILED | PG_OFFLINE_NOT_CONV_RAM,
        ),
        (
            Mfn(0x80000),
            Err(Errno::EPERM),
            PG_OFFLINE_XENPAGE | PG_OFFLINE_FAILED | 0x7ff2 << 16,
        ),
        (
            owned,
            Ok(()),
            PG_OFFLINE_OWNED | PG_OFFLINE_PENDING | 1 << 16,
        ),
        (
            owned,
            Ok(()),
            PG_OFFLINE_OWNED | PG_OFFLINE_PENDING | 1 << 16,
        ),
        (Mfn(0x50000), Ok(()), PG_OFFLINE_OFFLINED),
        (Mfn(0x50000), Ok(()), PG_OFFLINE_OFFLINED),
    ];
    for (mfn, result, status) in cases {
        assert_eq!(
            heap.offline(mfn, false),
            OfflineReply { result, status },
            "{mfn:?}"
        );
    }
    assert_eq!(
        heap.offline(Mfn(0x50001), true).status,
        PG_OFFLINE_OFFLINED | PG_OFFLINE_BROKEN
    );
    assert_eq!(heap.state(Mfn(0x50001)), Some(FrameState::Broken));
    let owned_broken = heap
        .alloc(Order::ORDER_4K, Owner::Domain(DOM), &mut frames)
        .unwrap();
    assert_eq!(
        heap.offline(owned_broken, true).status,
        PG_OFFLINE_OWNED | PG_OFFLINE_PENDING | PG_OFFLINE_BROKEN | 1 << 16
    );
    assert_eq!(heap.offline(owned_broken, false).status, PG_OFFLINE_AGAIN);
    heap.check().unwrap();
}

#[test]
fn online_and_query_match_xen() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let owned = heap
        .alloc(Order::ORDER_4K, Owner::Domain(DOM), &mut frames)
        .unwrap();
    heap.offline(owned, false);
    heap.offline(Mfn(0x50000), false);
    heap.offline(Mfn(0x50001), true);
    assert_eq!(heap.query(owned).status, PG_OFFLINE_STATUS_OFFLINE_PENDING);
    assert_eq!(heap.query(Mfn(0x50000)).status, PG_OFFLINE_STATUS_OFFLINED);
    assert_eq!(
        heap.query(Mfn(0x50001)).status,
        PG_OFFLINE_STATUS_OFFLINED | PG_OFFLINE_STATUS_BROKEN
    );
    assert_eq!(
        heap.query(Mfn(0x50002)),
        OfflineReply {
            result: Ok(()),
            status: 0
        }
    );
    assert_eq!(heap.query(Mfn(0x80700)).result, Err(Errno::EINVAL));
    assert_eq!(heap.query(Mfn(0x90000)).result, Err(Errno::EINVAL));

    assert_eq!(
        heap.online(owned),
        OfflineReply {
            result: Ok(()),
            status: PG_ONLINE_ONLINED
        }
    );
    assert_eq!(
        heap.state(owned),
        Some(FrameState::Domain {
            owner: DOM,
            gfn: None
        })
    );
    assert_eq!(heap.online(Mfn(0x50000)).status, PG_ONLINE_ONLINED);
    assert_eq!(
        heap.state(Mfn(0x50000)),
        Some(FrameState::Free { needs_scrub: true })
    );
    assert_eq!(
        heap.online(Mfn(0x50001)),
        OfflineReply {
            result: Err(Errno::EINVAL),
            status: PG_ONLINE_FAILED | PG_ONLINE_BROKEN
        }
    );
    assert_eq!(
        heap.online(Mfn(0x50002)),
        OfflineReply {
            result: Ok(()),
            status: 0
        }
    );
    assert_eq!(heap.online(Mfn(0x90000)).result, Err(Errno::EINVAL));
    heap.check().unwrap();
}

#[test]
fn freeing_a_pending_frame_takes_it_offline() {
    let mut heap = heap();
    let mut frames = FakeFrames::default();
    let block = heap
        .alloc(Order::ORDER_2M, Owner::Domain(DOM), &mut frames)
        .unwrap();
    heap.offline(block.plus(3), false);
    heap.offline(block.plus(4), true);
    heap.free(block, Order::ORDER_2M, Owner::Domain(DOM))
        .unwrap();
    assert_eq!(heap.state(block.plus(3)), Some(FrameState::Offlined));
    assert_eq!(heap.state(block.plus(4)), Some(FrameState::Broken));
    assert_eq!(
        heap.state(block.plus(5)),
        Some(FrameState::Free { needs_scrub: true })
    );
    let census = heap.census();
    assert_eq!((census.offlined, census.broken), (1, 1));
    heap.check().unwrap();
}
