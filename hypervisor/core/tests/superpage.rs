//! Superpages split by an offline or exchange merged again (`hv/superpage.rs`).

mod common;

use common::*;
use ebbhv_core::addr::{Gfn, GfnRange, Mfn};
use ebbhv_core::heap::FrameState;
use ebbhv_core::hv::{Config, Remerge, RemergePass};
use ebbhv_core::p2m::{EntryType, PageSize};

/// Gives every guest frame of `range` contents naming its gfn.
fn tag_frames(bed: &mut Bed, range: std::ops::Range<u64>) {
    for gfn in range {
        let mfn = bed.mfn_of(gfn).unwrap();
        bed.frames.fill(mfn, 0x5000_0000 + gfn);
    }
}

/// Every guest frame of `range` still holds the contents `tag_frames` gave it.
fn assert_tags(bed: &Bed, range: std::ops::Range<u64>) {
    for gfn in range {
        let mfn = bed.mfn_of(gfn).unwrap();
        assert_eq!(bed.frames.content(mfn), 0x5000_0000 + gfn, "gfn {gfn:#x}");
    }
}

fn leaf_size(bed: &Bed, gfn: u64) -> PageSize {
    bed.hv
        .domain(DOM)
        .unwrap()
        .p2m()
        .lookup(Gfn(gfn))
        .unwrap()
        .size
}

fn remerged(bed: &Bed) -> u64 {
    bed.hv.domain(DOM).unwrap().remerged_2m()
}

fn pass(bed: &mut Bed, budget: u64) -> RemergePass {
    bed.hv
        .remerge_split(DOM, budget, &mut bed.frames)
        .expect("a merge pass is never fatal")
}

#[test]
fn an_offline_split_region_is_merged_again_with_its_contents() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    tag_frames(&mut bed, 0x200..0x400);
    let old = bed.mfn_of(0x234).unwrap();
    let free = bed.hv.heap().free_frames();
    bed.hv.page_offline(old, false, &mut bed.frames).unwrap();
    assert_eq!(leaf_size(&bed, 0x200), PageSize::Size4K);
    assert!(bed.hv.has_split_regions(DOM));
    bed.check();

    let (copied, zeroed) = (bed.frames.copied, bed.frames.zeroed);
    assert_eq!(
        pass(&mut bed, 8192),
        RemergePass {
            merged: 1,
            visited: 1
        }
    );
    // Copied once each, and not zeroed first: the copies overwrite every frame.
    assert_eq!(bed.frames.copied - copied, 512);
    assert_eq!(bed.frames.zeroed, zeroed);
    assert_eq!(leaf_size(&bed, 0x200), PageSize::Size2M);
    assert_tags(&bed, 0x200..0x400);
    assert_eq!(bed.hv.heap().state(old), Some(FrameState::Offlined));
    // The 512 old frames (the copy of 0x234 among them) are free again; only the
    // offlined one is missing from the heap.
    assert_eq!(bed.hv.heap().free_frames(), free - 1);
    assert_eq!(bed.tot_pages(), 512);
    assert_eq!(remerged(&bed), 1);
    assert!(!bed.hv.has_split_regions(DOM));
    bed.check();
}

#[test]
fn a_control_exchange_split_is_merged_again() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x400]), 1);
    tag_frames(&mut bed, 0x400..0x600);
    let moved = bed
        .hv
        .exchange_in_place(DOM, GfnRange::new(Gfn(0x410), Gfn(0x412)), &mut bed.frames)
        .unwrap();
    assert_eq!(moved.len(), 2);
    assert_eq!(leaf_size(&bed, 0x400), PageSize::Size4K);
    assert_eq!(pass(&mut bed, 512).merged, 1);
    assert_eq!(leaf_size(&bed, 0x400), PageSize::Size2M);
    assert_tags(&bed, 0x400..0x600);
    bed.check();
}

#[test]
fn a_guest_exchange_into_scattered_4k_frames_is_merged_again() {
    use ebbhv_core::abi::memory::*;
    use ebbhv_core::addr::DomId;
    use ebbhv_core::hypercall::Caller;

    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x600]), 1);
    // Take the next 4 KiB frames from the heap so that the exchange's new frame
    // is not the one that would make the region contiguous again.
    assert_eq!(bed.populate(0, &[0x1000]), 1);
    tag_frames(&mut bed, 0x600..0x800);
    for (i, gfn) in [0x620u64].iter().enumerate() {
        bed.mem.put(LIST + 8 * i as u64, gfn);
        bed.mem.put(LIST2 + 8 * i as u64, gfn);
    }
    let side = |list| XenMemoryReservation {
        extent_start: list,
        nr_extents: 1,
        extent_order: 0,
        domid: DomId::SELF.0,
        ..Default::default()
    };
    bed.mem.put(
        ARG,
        &XenMemoryExchange {
            input: side(LIST),
            output: side(LIST2),
            nr_exchanged: 0,
        },
    );
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(leaf_size(&bed, 0x600), PageSize::Size4K);
    // The exchange gives the guest a new, zeroed frame at 0x620 (no contents kept).
    let fresh = bed.mfn_of(0x620).unwrap();
    bed.frames.fill(fresh, 0x5000_0620);
    assert_eq!(pass(&mut bed, 8192).merged, 1);
    assert_eq!(leaf_size(&bed, 0x600), PageSize::Size2M);
    assert_tags(&bed, 0x600..0x800);
    bed.check();
}

#[test]
fn a_region_stays_split_when_no_2m_block_is_free() {
    // Three 2 MiB blocks: two for the guest, the third taken by 4 KiB frames.
    let mut bed = Bed::with(Config::default(), 1536, 0x2000);
    assert_eq!(bed.populate(9, &[0x0, 0x200]), 2);
    assert_eq!(bed.populate(0, &[0x400]), 1);
    tag_frames(&mut bed, 0x200..0x400);
    let old = bed.mfn_of(0x210).unwrap();
    bed.hv.page_offline(old, false, &mut bed.frames).unwrap();
    assert_eq!(bed.hv.heap().state(old), Some(FrameState::Offlined));
    let p2m_before: Vec<_> = (0x200..0x400).map(|g| bed.mfn_of(g)).collect();
    assert_eq!(
        bed.hv.remerge_2m(DOM, Gfn(0x2ff), &mut bed.frames).unwrap(),
        Remerge::NoBlock
    );
    assert_eq!(
        pass(&mut bed, 8192),
        RemergePass {
            merged: 0,
            visited: 1
        }
    );
    // Dropped from the set: a later pass does not retry it.
    assert!(!bed.hv.has_split_regions(DOM));
    let p2m_after: Vec<_> = (0x200..0x400).map(|g| bed.mfn_of(g)).collect();
    assert_eq!(p2m_before, p2m_after);
    assert_tags(&bed, 0x200..0x400);
    bed.check();
}

#[test]
fn a_pending_frame_goes_offline_when_its_region_is_merged() {
    let mut bed = Bed::with(Config::default(), 1536, 0x2000);
    assert_eq!(bed.populate(9, &[0x0, 0x200]), 2);
    tag_frames(&mut bed, 0x200..0x400);
    // Split the region with one offline, then use up every free frame.
    let first = bed.mfn_of(0x210).unwrap();
    bed.hv.page_offline(first, false, &mut bed.frames).unwrap();
    let rest: Vec<u64> = (0x400..0x400 + bed.hv.heap().free_frames()).collect();
    assert_eq!(bed.populate(0, &rest), rest.len() as i64);
    assert_eq!(bed.hv.heap().free_frames(), 0);
    let second = bed.mfn_of(0x220).unwrap();
    bed.hv.page_offline(second, false, &mut bed.frames).unwrap();
    assert!(matches!(
        bed.hv.heap().state(second),
        Some(FrameState::OfflinePending { broken: false, .. })
    ));
    // The guest gives a whole 2 MiB block back: now the region can be merged, and
    // its pending frame, copied like the others, goes offline when freed.
    assert_eq!(bed.decrease(9, &[0x0]), 1);
    assert!(matches!(
        bed.hv.remerge_2m(DOM, Gfn(0x200), &mut bed.frames).unwrap(),
        Remerge::Merged(_)
    ));
    assert_eq!(bed.hv.heap().state(second), Some(FrameState::Offlined));
    assert_eq!(leaf_size(&bed, 0x200), PageSize::Size2M);
    assert_tags(&bed, 0x200..0x400);
    bed.check();
}

#[test]
fn a_region_with_a_frame_reported_broken_is_not_copied() {
    let mut bed = Bed::with(Config::default(), 1536, 0x2000);
    assert_eq!(bed.populate(9, &[0x0, 0x200]), 2);
    let first = bed.mfn_of(0x210).unwrap();
    bed.hv.page_offline(first, false, &mut bed.frames).unwrap();
    let rest: Vec<u64> = (0x400..0x400 + bed.hv.heap().free_frames()).collect();
    assert_eq!(bed.populate(0, &rest), rest.len() as i64);
    let broken = bed.mfn_of(0x220).unwrap();
    bed.hv.page_offline(broken, true, &mut bed.frames).unwrap();
    assert_eq!(bed.decrease(9, &[0x0]), 1);
    assert_eq!(
        bed.hv.remerge_2m(DOM, Gfn(0x200), &mut bed.frames).unwrap(),
        Remerge::Ineligible
    );
    assert_eq!(bed.mfn_of(0x220), Some(broken));
    bed.check();
}

#[test]
fn holes_and_mixed_types_stay_split() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200, 0x400]), 2);
    // A hole: the guest gave one frame back.
    assert_eq!(bed.decrease(0, &[0x2aa]), 1);
    assert_eq!(
        bed.hv.remerge_2m(DOM, Gfn(0x200), &mut bed.frames).unwrap(),
        Remerge::Ineligible
    );
    // Mixed types: one frame written under log-dirty is read-write, the rest not.
    bed.hv.log_dirty_enable(DOM).unwrap();
    bed.hv.write_fault(DOM, Gfn(0x401)).unwrap();
    assert_eq!(
        bed.hv.remerge_2m(DOM, Gfn(0x400), &mut bed.frames).unwrap(),
        Remerge::Ineligible
    );
    // A whole leaf needs nothing; a region with nothing mapped cannot be merged.
    bed.hv.log_dirty_disable(DOM).unwrap();
    assert_eq!(
        bed.hv.remerge_2m(DOM, Gfn(0x4ff), &mut bed.frames).unwrap(),
        Remerge::Whole
    );
    assert_eq!(
        bed.hv
            .remerge_2m(DOM, Gfn(0x1800), &mut bed.frames)
            .unwrap(),
        Remerge::Ineligible
    );
    assert!(bed
        .hv
        .remerge_2m(DOM, Gfn(1 << 36), &mut bed.frames)
        .is_err());
    bed.check();
}

#[test]
fn a_log_dirty_region_keeps_its_type_when_merged() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    bed.hv.log_dirty_enable(DOM).unwrap();
    let old = bed.mfn_of(0x300).unwrap();
    bed.hv.page_offline(old, false, &mut bed.frames).unwrap();
    assert_eq!(pass(&mut bed, 512).merged, 1);
    let leaf = bed
        .hv
        .domain(DOM)
        .unwrap()
        .p2m()
        .lookup(Gfn(0x200))
        .unwrap();
    assert_eq!(
        (leaf.size, leaf.kind),
        (PageSize::Size2M, EntryType::RamLogDirty)
    );
    bed.check();
}

#[test]
fn a_pass_copies_no_more_than_its_budget() {
    let mut bed = Bed::new();
    let regions = [0x200u64, 0x400, 0x600];
    assert_eq!(bed.populate(9, &regions), 3);
    for gfn in regions {
        let mfn = bed.mfn_of(gfn + 7).unwrap();
        bed.hv.page_offline(mfn, false, &mut bed.frames).unwrap();
    }
    let copied = bed.frames.copied;
    // Less than one region's worth does nothing.
    assert_eq!(pass(&mut bed, 511), RemergePass::default());
    assert_eq!(
        pass(&mut bed, 1024 + 100),
        RemergePass {
            merged: 2,
            visited: 2
        }
    );
    assert_eq!(bed.frames.copied - copied, 1024);
    assert_eq!(leaf_size(&bed, 0x200), PageSize::Size2M);
    assert_eq!(leaf_size(&bed, 0x400), PageSize::Size2M);
    assert_eq!(leaf_size(&bed, 0x600), PageSize::Size4K);
    assert!(bed.hv.has_split_regions(DOM));
    bed.check();
    assert_eq!(pass(&mut bed, 8192).merged, 1);
    assert_eq!(leaf_size(&bed, 0x600), PageSize::Size2M);
    assert_eq!(remerged(&bed), 3);
    bed.check();
}

#[test]
fn a_split_1g_leaf_comes_back_as_2m_leaves() {
    // A 1 GiB leaf split by one offline: merging its region back gives it a new
    // 2 MiB block, which cannot line up with the rest, so 511 2 MiB leaves and the
    // merged one remain (re-forming the 1 GiB leaf would copy 1 GiB).
    let config = Config {
        guest_max_order: ebbhv_core::addr::Order::ORDER_1G,
        ..Config::default()
    };
    let mut bed = Bed::with(config, 1 << 19, 1 << 19);
    assert_eq!(bed.populate(18, &[1 << 18]), 1);
    let old = bed.mfn_of((1 << 18) + 5).unwrap();
    bed.hv.page_offline(old, false, &mut bed.frames).unwrap();
    assert_eq!(leaf_size(&bed, 1 << 18), PageSize::Size4K);
    assert_eq!(leaf_size(&bed, (1 << 18) + 512), PageSize::Size2M);
    assert_eq!(pass(&mut bed, 8192).merged, 1);
    assert_eq!(leaf_size(&bed, 1 << 18), PageSize::Size2M);
    let new = bed.mfn_of(1 << 18).unwrap();
    assert_ne!(new, Mfn(old.0 - 5));
    bed.check();
}
