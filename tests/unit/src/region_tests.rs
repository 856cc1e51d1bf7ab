// SPDX-License-Identifier: GPL-2.0

//! The hotplug region's geometry: where it starts and ends, its blocks and extents.

use crate::hotplug::extents::ExtentSet;
use crate::hotplug::region::NoRegion;
use crate::hotplug::region::Region;
use crate::hotplug::region::EXTENT_PAGES;

/// Pages in 128 MiB, the x86-64 memory block of the test guest.
const BLOCK: usize = 32768;
/// Pages in 1 GiB.
const GIB: usize = 262144;

fn no_ram(_: usize, _: usize) -> bool {
    false
}

#[test]
fn the_test_guests_region() {
    // 1 GiB at boot, 1.5 GiB maximum: memory8 to memory11.
    let region = Region::new(BLOCK, GIB, GIB + GIB / 2, no_ram).unwrap();
    assert_eq!(region.nr_blocks(), 4);
    assert_eq!(region.block_pages(), BLOCK);
    assert_eq!(region.extents_per_block(), 64);
    assert_eq!(region.all_extents(), ExtentSet::first(64));
    assert_eq!(region.block_start_pfn(0), GIB);
    assert_eq!(region.end_pfn(), GIB + 4 * BLOCK);
    assert_eq!(region.memory_block_id(0), 8);
    assert_eq!(region.memory_block_id(3), 11);
    assert_eq!(region.extent_pfn(1, 2), GIB + BLOCK + 2 * EXTENT_PAGES);
}

#[test]
fn the_region_starts_at_the_next_block_and_ends_at_the_last_whole_one() {
    // Boot RAM 24 KiB short of 1 GiB, as under ebbhv; maximum not block-aligned.
    let region = Region::new(BLOCK, GIB - 6, GIB + 2 * BLOCK + 100, no_ram).unwrap();
    assert_eq!(region.block_start_pfn(0), GIB);
    assert_eq!(region.nr_blocks(), 2);
    let region = Region::new(BLOCK, GIB + 1, GIB + 3 * BLOCK, no_ram).unwrap();
    assert_eq!(region.block_start_pfn(0), GIB + BLOCK);
    assert_eq!(region.nr_blocks(), 2);
}

#[test]
fn blocks_an_earlier_load_left_are_skipped() {
    let left = |pfn: usize, pages: usize| {
        assert_eq!(pages, BLOCK);
        pfn < GIB + 2 * BLOCK
    };
    let region = Region::new(BLOCK, GIB, GIB + 4 * BLOCK, left).unwrap();
    assert_eq!(region.block_start_pfn(0), GIB + 2 * BLOCK);
    assert_eq!(region.nr_blocks(), 2);
    assert_eq!(
        Region::new(BLOCK, GIB, GIB + 4 * BLOCK, |_, _| true),
        Err(NoRegion::NoRoom)
    );
}

#[test]
fn no_region_without_room_for_a_block() {
    assert_eq!(Region::new(BLOCK, GIB, GIB, no_ram), Err(NoRegion::NoRoom));
    assert_eq!(
        Region::new(BLOCK, GIB, GIB + BLOCK - 1, no_ram),
        Err(NoRegion::NoRoom)
    );
    assert_eq!(
        Region::new(BLOCK, GIB, GIB / 2, no_ram),
        Err(NoRegion::NoRoom)
    );
}

#[test]
fn block_sizes_from_one_to_64_extents() {
    // 2 MiB blocks: one extent each.
    let region = Region::new(EXTENT_PAGES, GIB, GIB + 4 * EXTENT_PAGES, no_ram).unwrap();
    assert_eq!(region.extents_per_block(), 1);
    assert_eq!(region.nr_blocks(), 4);
    // A block size that is not a whole number of extents is cut to one that is.
    let region = Region::new(3 * EXTENT_PAGES + 1, GIB, 2 * GIB, no_ram).unwrap();
    assert_eq!(region.block_pages(), 3 * EXTENT_PAGES);
    for pages in [0, EXTENT_PAGES - 1, 65 * EXTENT_PAGES, 2 * BLOCK] {
        assert_eq!(
            Region::new(pages, GIB, 2 * GIB, no_ram),
            Err(NoRegion::BlockSize),
            "{pages}"
        );
    }
}

#[test]
fn pages_are_located_in_their_block_and_extent() {
    let region = Region::new(BLOCK, GIB, GIB + 4 * BLOCK, no_ram).unwrap();
    assert!(!region.contains(GIB - 1));
    assert!(region.contains(GIB));
    assert!(region.contains(GIB + 4 * BLOCK - 1));
    assert!(!region.contains(GIB + 4 * BLOCK));
    assert_eq!(region.locate(GIB - 1), None);
    assert_eq!(region.locate(GIB), Some((0, 0)));
    assert_eq!(region.locate(GIB + EXTENT_PAGES - 1), Some((0, 0)));
    assert_eq!(region.locate(GIB + EXTENT_PAGES), Some((0, 1)));
    assert_eq!(
        region.locate(GIB + 3 * BLOCK + 63 * EXTENT_PAGES),
        Some((3, 63))
    );
    assert_eq!(region.locate(GIB + 4 * BLOCK), None);
    assert_eq!(region.block_of(GIB + BLOCK + 5), Some(1));
    assert_eq!(region.block_of(0), None);
}

#[test]
fn only_whole_blocks_go_offline() {
    let region = Region::new(BLOCK, GIB, GIB + 4 * BLOCK, no_ram).unwrap();
    assert!(region.is_block(1, GIB + BLOCK, BLOCK));
    assert!(!region.is_block(1, GIB + BLOCK, BLOCK / 2));
    assert!(!region.is_block(1, GIB + BLOCK + EXTENT_PAGES, BLOCK));
    assert!(!region.is_block(0, GIB, 2 * BLOCK));
}
