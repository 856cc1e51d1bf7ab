// SPDX-License-Identifier: GPL-2.0

//! One memory block of the hotplug region and the state it goes through: added,
//! onlined extent by extent (by the kernel, through ebb's online-page callback),
//! backed extent by extent (by the hypervisor), going offline, offline, removed.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

use super::extents::ExtentSet;
use super::region::EXTENT_PAGES;

/// One memory block of the region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Block {
    /// From a successful `add_memory_driver_managed` until the block is removed.
    pub(crate) added: bool,
    /// An offline-and-remove failed; not tried again until the target changes.
    pub(crate) unremovable: bool,
    /// Between MEM_GOING_OFFLINE and MEM_OFFLINE or MEM_CANCEL_OFFLINE.
    pub(crate) going_offline: bool,
    /// Extents the kernel onlined through ebb's callback.
    pub(crate) onlined: ExtentSet,
    /// Extents the hypervisor backs: onlined ones (in the buddy allocator), or ones of
    /// an offline or removed block whose frames the hypervisor would not take back.
    pub(crate) backed: ExtentSet,
    /// Unbacked extents whose page references ebb dropped for an offline in progress.
    pub(crate) refs_dropped: ExtentSet,
    /// The block went offline (or was removed) during a shrink step, which gives its
    /// frames back together with those of the step's other blocks when it ends.
    pub(crate) release_deferred: bool,
}

/// A block's state as `ebb/hotplug_block_list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockState {
    /// No extent onlined.
    Offline,
    /// Some extents onlined, not all (the kernel onlines a block chunk by chunk).
    Onlining,
    /// Every extent onlined.
    Online,
    /// An offline is in progress.
    GoingOffline,
}

impl BlockState {
    /// The name users read.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Onlining => "onlining",
            Self::Online => "online",
            Self::GoingOffline => "going_offline",
        }
    }
}

impl Block {
    /// Onlined extents the hypervisor does not back: kept offline (ballooned).
    pub(crate) fn unbacked(&self) -> ExtentSet {
        self.onlined.difference(self.backed)
    }

    /// Pages of backed extents.
    pub(crate) fn backed_pages(&self) -> usize {
        self.backed.len() * EXTENT_PAGES
    }

    /// Pages of onlined extents kept offline, unbacked.
    pub(crate) fn unbacked_pages(&self) -> usize {
        self.unbacked().len() * EXTENT_PAGES
    }

    /// The block's state; `all` is every extent of a block.
    pub(crate) fn state(&self, all: ExtentSet) -> BlockState {
        if self.going_offline {
            BlockState::GoingOffline
        } else if self.onlined.is_empty() {
            BlockState::Offline
        } else if self.onlined == all {
            BlockState::Online
        } else {
            BlockState::Onlining
        }
    }

    /// The kernel onlined the extents `chunk` through ebb's callback. Returns those of
    /// them that are backed already (a re-onlining after an offline that kept their
    /// frames): they go to the buddy allocator at once; the rest wait for the worker.
    ///
    /// A block a user offlined during a shrink step and onlines again before the step
    /// ends has its frames in use again: the step's deferred release must skip them,
    /// or the allocator would hand out pages the hypervisor no longer backs.
    pub(crate) fn online(&mut self, chunk: ExtentSet) -> ExtentSet {
        self.onlined = self.onlined.union(chunk);
        self.release_deferred = false;
        chunk.intersection(self.backed)
    }

    /// The hypervisor backs `extent` now (it is onlined and goes to the allocator).
    pub(crate) fn backed(&mut self, extent: usize) {
        self.backed.insert(extent);
    }

    /// Whether a shrink step may try to remove the block.
    pub(crate) fn is_removable(&self) -> bool {
        self.added && !self.going_offline && !self.unremovable
    }

    /// MEM_GOING_OFFLINE was accepted: ebb dropped its references to `refs_dropped`.
    pub(crate) fn going_offline(&mut self, refs_dropped: ExtentSet) {
        self.refs_dropped = refs_dropped;
        self.going_offline = true;
    }

    /// MEM_CANCEL_OFFLINE: the block stays online as it was. Returns the extents
    /// whose references ebb must take back.
    pub(crate) fn cancel_offline(&mut self) -> ExtentSet {
        let dropped = self.refs_dropped;
        self.refs_dropped = ExtentSet::EMPTY;
        self.going_offline = false;
        dropped
    }

    /// MEM_OFFLINE: nothing of the block is online any more.
    pub(crate) fn offline(&mut self) {
        self.onlined = ExtentSet::EMPTY;
        self.refs_dropped = ExtentSet::EMPTY;
        self.going_offline = false;
    }

    /// The block as it is once removed: only the extents the hypervisor still backs
    /// are remembered, waiting for the end of a shrink step when `deferred`.
    pub(crate) fn removed(self, deferred: bool) -> Self {
        Self {
            backed: self.backed,
            release_deferred: deferred && !self.backed.is_empty(),
            ..Self::default()
        }
    }
}
