//! Unit tests of the p2m: leaf sizes, split and merge, errors, change tracking.

use alloc::vec::Vec;

use super::*;
use crate::addr::{Gfn, GfnRange, Mfn, Order};
use crate::testing::FakeNpt;

const LIMIT: Gfn = Gfn(1 << 36);

fn leaves(p2m: &P2m) -> Vec<Mapping> {
    let mut all = Vec::new();
    p2m.for_each_mapping(GfnRange::new(Gfn(0), LIMIT), &mut |m| all.push(m));
    all
}

fn range(start: u64, len: u64) -> GfnRange {
    GfnRange::new(Gfn(start), Gfn(start + len))
}

/// The mirror rebuilt from the change log equals the p2m, and the contract held.
fn assert_mirror_follows(p2m: &mut P2m, npt: &mut FakeNpt) {
    p2m.sync_mirror(npt);
    assert_eq!(npt.violation, None);
    let mirrored: Vec<Mapping> = npt.leaves.values().copied().collect();
    assert_eq!(mirrored, leaves(p2m));
}

#[test]
fn maps_with_the_largest_leaves_alignment_allows() {
    let mut p2m = P2m::new(LIMIT);
    p2m.map(
        Gfn(1 << 18),
        Mfn(3 << 18),
        Order::ORDER_1G,
        EntryType::RamRw,
    )
    .unwrap();
    p2m.map(Gfn(0x200), Mfn(0x400), Order::ORDER_2M, EntryType::RamRw)
        .unwrap();
    p2m.map(Gfn(5), Mfn(9), Order::ORDER_4K, EntryType::RamRw)
        .unwrap();
    let sizes: Vec<PageSize> = leaves(&p2m).iter().map(|m| m.size).collect();
    assert_eq!(
        sizes,
        [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G]
    );
    assert_eq!(p2m.mapped_frames(), (1 << 18) + 512 + 1);
    let entry = p2m.entry(Gfn((1 << 18) + 77)).unwrap();
    assert_eq!(
        entry,
        Entry {
            mfn: Mfn((3 << 18) + 77),
            kind: EntryType::RamRw
        }
    );
    assert_eq!(p2m.lookup(Gfn(0x2ff)).unwrap().size, PageSize::Size2M);
    assert_eq!(p2m.entry(Gfn(6)), None);
    assert_eq!(p2m.high_water(), Some(Gfn((2 << 18) - 1)));
}

#[test]
fn map_refuses_overlap_misalignment_and_range() {
    let mut p2m = P2m::new(LIMIT);
    p2m.map(Gfn(0x200), Mfn(0x400), Order::ORDER_2M, EntryType::RamRw)
        .unwrap();
    assert_eq!(
        p2m.map(Gfn(0x2ff), Mfn(1), Order::ORDER_4K, EntryType::RamRw),
        Err(P2mError::Occupied)
    );
    assert_eq!(
        p2m.map(Gfn(0x201), Mfn(0x1000), Order::ORDER_2M, EntryType::RamRw),
        Err(P2mError::Unaligned)
    );
    assert_eq!(
        p2m.map(Gfn(0x400), Mfn(0x1001), Order::ORDER_2M, EntryType::RamRw),
        Err(P2mError::Unaligned)
    );
    assert_eq!(
        p2m.map(LIMIT, Mfn(0), Order::ORDER_4K, EntryType::RamRw),
        Err(P2mError::OutOfRange)
    );
    assert_eq!(
        p2m.map(Gfn(u64::MAX), Mfn(0), Order::ORDER_4K, EntryType::RamRw),
        Err(P2mError::OutOfRange)
    );
    assert_eq!(
        p2m.unmap(range(LIMIT.0, 1), &mut |_| {}),
        Err(P2mError::OutOfRange)
    );
    assert_eq!(p2m.mapped_frames(), 512);
}

#[test]
fn contiguous_4k_entries_merge_into_superpages() {
    let mut p2m = P2m::new(LIMIT);
    let mut npt = FakeNpt::default();
    for i in 0..512 {
        p2m.map(
            Gfn(0x400 + i),
            Mfn(0x800 + i),
            Order::ORDER_4K,
            EntryType::RamRw,
        )
        .unwrap();
    }
    assert_eq!(leaves(&p2m).len(), 1);
    assert_eq!(p2m.lookup(Gfn(0x400)).unwrap().size, PageSize::Size2M);
    assert_mirror_follows(&mut p2m, &mut npt);
    // 512 2 MiB leaves covering an aligned gigabyte merge into one.
    let mut p2m = P2m::new(LIMIT);
    for i in 0..512 {
        p2m.map(
            Gfn(i * 512),
            Mfn((1 << 18) + i * 512),
            Order::ORDER_2M,
            EntryType::RamRw,
        )
        .unwrap();
    }
    assert_eq!(p2m.lookup(Gfn(0)).unwrap().size, PageSize::Size1G);
    // Not contiguous: no merge.
    let mut p2m = P2m::new(LIMIT);
    for i in 0..512 {
        p2m.map(
            Gfn(i),
            Mfn(0x1000 + 2 * i),
            Order::ORDER_4K,
            EntryType::RamRw,
        )
        .unwrap();
    }
    assert_eq!(leaves(&p2m).len(), 512);
}

#[test]
fn unmapping_part_of_a_superpage_splits_it() {
    let mut p2m = P2m::new(LIMIT);
    let mut npt = FakeNpt::default();
    p2m.map(Gfn(0), Mfn(1 << 18), Order::ORDER_1G, EntryType::RamRw)
        .unwrap();
    assert_mirror_follows(&mut p2m, &mut npt);
    let mut removed = Vec::new();
    p2m.unmap(range(0x201, 1), &mut |m| removed.push(m))
        .unwrap();
    assert_eq!(
        removed,
        [Mapping {
            gfn: Gfn(0x201),
            mfn: Mfn((1 << 18) + 0x201),
            size: PageSize::Size4K,
            kind: EntryType::RamRw
        }]
    );
    assert_eq!(p2m.mapped_frames(), (1 << 18) - 1);
    assert_eq!(p2m.lookup(Gfn(0)).unwrap().size, PageSize::Size2M);
    assert_eq!(p2m.lookup(Gfn(0x200)).unwrap().size, PageSize::Size4K);
    assert_eq!(p2m.entry(Gfn(0x201)), None);
    assert_mirror_follows(&mut p2m, &mut npt);
    // Putting the frame back merges all the way up again.
    p2m.map(
        Gfn(0x201),
        Mfn((1 << 18) + 0x201),
        Order::ORDER_4K,
        EntryType::RamRw,
    )
    .unwrap();
    assert_eq!(leaves(&p2m).len(), 1);
    assert_mirror_follows(&mut p2m, &mut npt);
    // Whole leaves come out whole.
    removed.clear();
    p2m.unmap(range(0, 1 << 18), &mut |m| removed.push(m))
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(p2m.mapped_frames(), 0);
    assert_mirror_follows(&mut p2m, &mut npt);
}

#[test]
fn retype_splits_and_merges() {
    let mut p2m = P2m::new(LIMIT);
    let mut npt = FakeNpt::default();
    p2m.map(Gfn(0), Mfn(0), Order::ORDER_1G, EntryType::RamRw)
        .unwrap();
    p2m.map(
        Gfn(1 << 18),
        Mfn(1 << 18),
        Order::ORDER_2M,
        EntryType::RamRw,
    )
    .unwrap();
    let all = range(0, LIMIT.0);
    assert_eq!(
        p2m.retype(all, EntryType::RamRw, EntryType::RamLogDirty),
        (1 << 18) + 512
    );
    assert_eq!(leaves(&p2m).len(), 2, "whole leaves change type in place");
    assert_mirror_follows(&mut p2m, &mut npt);
    assert_eq!(
        p2m.retype(range(7, 1), EntryType::RamLogDirty, EntryType::RamRw),
        1
    );
    assert_eq!(p2m.entry(Gfn(7)).unwrap().kind, EntryType::RamRw);
    assert_eq!(p2m.entry(Gfn(8)).unwrap().kind, EntryType::RamLogDirty);
    assert_eq!(p2m.lookup(Gfn(7)).unwrap().size, PageSize::Size4K);
    assert_mirror_follows(&mut p2m, &mut npt);
    assert_eq!(p2m.retype(all, EntryType::RamRw, EntryType::RamLogDirty), 1);
    assert_eq!(leaves(&p2m).len(), 2, "re-protecting merges the split back");
    assert_mirror_follows(&mut p2m, &mut npt);
    assert_eq!(
        p2m.retype(all, EntryType::HypervisorShared, EntryType::RamRw),
        0
    );
}

#[test]
fn remap_frame_swaps_one_frame_inside_a_superpage() {
    let mut p2m = P2m::new(LIMIT);
    let mut npt = FakeNpt::default();
    p2m.map(
        Gfn(0x200),
        Mfn(0x400),
        Order::ORDER_2M,
        EntryType::RamLogDirty,
    )
    .unwrap();
    let high_water = p2m.high_water();
    p2m.remap_frame(Gfn(0x210), Mfn(0x9999)).unwrap();
    assert_eq!(
        p2m.entry(Gfn(0x210)),
        Some(Entry {
            mfn: Mfn(0x9999),
            kind: EntryType::RamLogDirty
        })
    );
    assert_eq!(p2m.entry(Gfn(0x211)).unwrap().mfn, Mfn(0x411));
    assert_eq!(p2m.mapped_frames(), 512);
    assert_eq!(p2m.high_water(), high_water);
    assert_eq!(
        p2m.remap_frame(Gfn(0x5000), Mfn(1)),
        Err(P2mError::NotMapped)
    );
    assert_mirror_follows(&mut p2m, &mut npt);
}

#[test]
fn change_log_is_coalesced() {
    let mut p2m = P2m::new(LIMIT);
    for i in 0..4 {
        p2m.map(Gfn(i), Mfn(100 + 2 * i), Order::ORDER_4K, EntryType::RamRw)
            .unwrap();
    }
    p2m.map(Gfn(0x1000), Mfn(0x1000), Order::ORDER_4K, EntryType::RamRw)
        .unwrap();
    assert_eq!(p2m.take_changes(), [range(0, 4), range(0x1000, 1)]);
    assert!(p2m.take_changes().is_empty());
}
