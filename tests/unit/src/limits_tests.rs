// SPDX-License-Identifier: GPL-2.0

//! The floor, reserve and maximum a requested target is clamped to.

use crate::balloon::target::Limits;

/// 1 GiB of reservation, of which the kernel manages 250000 pages, growing to 1.5 GiB.
fn one_gib() -> Limits {
    Limits::new(262144, 250000, 393216)
}

#[test]
fn floor_is_the_unmanaged_pages_plus_an_eighth() {
    let limits = one_gib();
    // 12144 pages the kernel cannot give, plus 250000 / 8.
    assert_eq!(limits.floor_pages(None), 12144 + 31250);
    assert_eq!(limits.reserve_pages, 250000 / 32);
}

#[test]
fn small_guests_keep_64_mib_above_the_floor_and_16_mib_free() {
    let limits = Limits::new(65536, 65536, 65536);
    assert_eq!(limits.floor_pages(None), 16384);
    assert_eq!(limits.reserve_pages, 4096);
}

#[test]
fn the_maximum_is_the_region_end_or_the_hypervisors_maximum() {
    let limits = one_gib();
    assert_eq!(limits.max_pages(None), 393216);
    assert_eq!(limits.max_pages(Some(300000)), 300000);
    assert_eq!(limits.max_pages(Some(500000)), 393216);
    // Without hotplug ebb stays within what it held at load.
    assert_eq!(Limits::new(262144, 250000, 0).max_pages(None), 262144);
}

#[test]
fn targets_are_clamped_visibly() {
    let limits = one_gib();
    let floor = limits.floor_pages(None);
    assert_eq!(limits.clamp(200000, None), (200000, false));
    assert_eq!(limits.clamp(floor, None), (floor, false));
    assert_eq!(limits.clamp(0, None), (floor, true));
    assert_eq!(limits.clamp(floor - 1, None), (floor, true));
    assert_eq!(limits.clamp(393216, None), (393216, false));
    assert_eq!(limits.clamp(usize::MAX, None), (393216, true));
    assert_eq!(limits.clamp(300000, Some(280000)), (280000, true));
}

#[test]
fn a_maximum_below_the_floor_wins() {
    let limits = one_gib();
    assert_eq!(limits.floor_pages(Some(20000)), 20000);
    assert_eq!(limits.clamp(0, Some(20000)), (20000, true));
    assert_eq!(limits.clamp(30000, Some(20000)), (20000, true));
}
