// SPDX-License-Identifier: GPL-2.0

//! Extent sets: the 2 MiB extents of one memory block.

use crate::hotplug::extents::ExtentSet;

fn set(extents: &[usize]) -> ExtentSet {
    let mut set = ExtentSet::EMPTY;
    for &extent in extents {
        set.insert(extent);
    }
    set
}

fn list(set: ExtentSet) -> Vec<usize> {
    set.iter().collect()
}

#[test]
fn first_is_a_whole_block() {
    assert_eq!(ExtentSet::first(0), ExtentSet::EMPTY);
    assert_eq!(list(ExtentSet::first(3)), [0, 1, 2]);
    assert_eq!(ExtentSet::first(64).len(), 64);
    assert_eq!(list(ExtentSet::first(64)), (0..64).collect::<Vec<_>>());
}

#[test]
fn ranges_within_the_capacity() {
    assert_eq!(list(ExtentSet::range(5, 2)), [5, 6]);
    assert_eq!(list(ExtentSet::range(62, 2)), [62, 63]);
    assert_eq!(list(ExtentSet::range(63, 1)), [63]);
    assert_eq!(ExtentSet::range(10, 0), ExtentSet::EMPTY);
    assert_eq!(ExtentSet::range(0, 64), ExtentSet::first(64));
}

#[test]
fn insert_remove_and_count() {
    let mut extents = set(&[0, 7, 63]);
    assert_eq!(extents.len(), 3);
    assert!(!extents.is_empty());
    extents.insert(7);
    assert_eq!(extents.len(), 3);
    extents.remove(7);
    assert_eq!(list(extents), [0, 63]);
    // Removing what is not there, or past the capacity, changes nothing.
    extents.remove(7);
    extents.remove(64);
    extents.remove(usize::MAX);
    assert_eq!(list(extents), [0, 63]);
    extents.remove(0);
    extents.remove(63);
    assert!(extents.is_empty());
    assert_eq!(ExtentSet::default(), ExtentSet::EMPTY);
}

#[test]
fn set_operations() {
    let onlined = set(&[0, 1, 2, 3]);
    let backed = set(&[1, 3, 5]);
    assert_eq!(list(onlined.difference(backed)), [0, 2]);
    assert_eq!(list(onlined.intersection(backed)), [1, 3]);
    assert_eq!(list(onlined.union(backed)), [0, 1, 2, 3, 5]);
    assert_eq!(onlined.difference(onlined), ExtentSet::EMPTY);
}

#[test]
fn iteration_is_ascending() {
    assert_eq!(list(set(&[40, 3, 63, 0, 17])), [0, 3, 17, 40, 63]);
    assert_eq!(list(ExtentSet::EMPTY), Vec::<usize>::new());
}
