// SPDX-License-Identifier: GPL-2.0

//! A block's states: added, onlined chunk by chunk, backed extent by extent, going
//! offline, cancelled or offline, removed.

use crate::hotplug::block::Block;
use crate::hotplug::block::BlockState;
use crate::hotplug::extents::ExtentSet;
use crate::hotplug::region::EXTENT_PAGES;

const ALL: ExtentSet = ExtentSet::first(64);

fn added() -> Block {
    Block {
        added: true,
        ..Block::default()
    }
}

#[test]
fn an_added_block_is_offline_until_the_kernel_onlines_it() {
    let block = added();
    assert_eq!(block.state(ALL), BlockState::Offline);
    assert_eq!(block.state(ALL).name(), "offline");
    assert!(block.is_removable());
    assert_eq!(block.backed_pages(), 0);
    assert_eq!(block.unbacked_pages(), 0);
}

#[test]
fn onlining_goes_chunk_by_chunk_and_keeps_unbacked_extents() {
    let mut block = added();
    // A first onlining: nothing is backed, nothing goes to the allocator.
    assert_eq!(block.online(ExtentSet::range(0, 2)), ExtentSet::EMPTY);
    assert_eq!(block.state(ALL), BlockState::Onlining);
    assert_eq!(block.state(ALL).name(), "onlining");
    assert_eq!(block.unbacked_pages(), 2 * EXTENT_PAGES);
    assert_eq!(block.online(ExtentSet::range(2, 62)), ExtentSet::EMPTY);
    assert_eq!(block.state(ALL), BlockState::Online);
    assert_eq!(block.state(ALL).name(), "online");
    assert_eq!(block.unbacked(), ALL);
    // The worker backs half of it.
    for extent in 0..32 {
        block.backed(extent);
    }
    assert_eq!(block.backed_pages(), 32 * EXTENT_PAGES);
    assert_eq!(block.unbacked(), ExtentSet::range(32, 32));
    assert_eq!(block.unbacked_pages(), 32 * EXTENT_PAGES);
}

#[test]
fn a_cancelled_offline_leaves_the_block_as_it_was() {
    let mut block = added();
    block.online(ALL);
    block.backed(0);
    let before = block;
    let dropped = block.unbacked();
    block.going_offline(dropped);
    assert_eq!(block.state(ALL), BlockState::GoingOffline);
    assert_eq!(block.state(ALL).name(), "going_offline");
    assert!(!block.is_removable());
    assert_eq!(block.cancel_offline(), dropped);
    assert_eq!(block, before);
    assert_eq!(block.state(ALL), BlockState::Online);
}

#[test]
fn an_offline_block_remembers_what_is_still_backed() {
    let mut block = added();
    block.online(ALL);
    block.backed(3);
    block.backed(4);
    block.going_offline(block.unbacked());
    // MEM_OFFLINE after the hypervisor would not take extent 4 back.
    block.backed.remove(3);
    block.offline();
    assert_eq!(block.state(ALL), BlockState::Offline);
    assert_eq!(block.onlined, ExtentSet::EMPTY);
    assert_eq!(block.refs_dropped, ExtentSet::EMPTY);
    assert!(block.is_removable());
    assert_eq!(block.unbacked_pages(), 0);
    assert_eq!(block.backed_pages(), EXTENT_PAGES);
    // Onlined again, the extent still backed goes to the allocator at once.
    let mut to_buddy = block.online(ExtentSet::range(0, 8));
    assert_eq!(to_buddy.len(), 1);
    to_buddy.remove(4);
    assert!(to_buddy.is_empty());
}

#[test]
fn onlining_again_cancels_a_deferred_release() {
    // A user offlines a backed block while a shrink step defers releases, then onlines
    // it before the step ends: its frames are in use again and must stay the domain's.
    let mut block = added();
    block.online(ALL);
    for extent in 0..64 {
        block.backed(extent);
    }
    block.going_offline(ExtentSet::EMPTY);
    block.offline();
    block.release_deferred = true;
    assert_eq!(block.online(ExtentSet::range(0, 2)), ExtentSet::range(0, 2));
    assert!(!block.release_deferred);
    assert_eq!(block.backed, ALL);
}

#[test]
fn a_removed_block_keeps_only_its_backed_extents() {
    let mut block = added();
    block.unremovable = true;
    block.online(ALL);
    block.offline();
    let removed = block.removed(true);
    assert_eq!(removed, Block::default());
    block.backed(9);
    let removed = block.removed(false);
    assert!(!removed.added && !removed.unremovable && !removed.release_deferred);
    assert_eq!(removed.backed, ExtentSet::range(9, 1));
    let removed = block.removed(true);
    assert!(removed.release_deferred);
    assert_eq!(removed.state(ALL), BlockState::Offline);
    assert!(!removed.is_removable());
}

#[test]
fn unremovable_blocks_are_not_tried_again() {
    let mut block = added();
    block.unremovable = true;
    assert!(!block.is_removable());
    assert!(!Block::default().is_removable());
}
