// SPDX-License-Identifier: GPL-2.0

//! The memory notifier (linux/memory.h): told when a memory block goes offline, so
//! that a driver holding PageOffline pages in it can let the offline skip them.
//!
//! The kernel calls the chain with `mem_hotplug_lock` held for writing, for each
//! memory block that a user (sysfs `state`) or a driver (`offline_and_remove_memory`)
//! offlines. A handler runs `going_offline` first, then either `offline` (the block
//! is offline: its pages are no longer in use) or `cancel_offline` (the offline
//! failed; the block stays online).

use kernel::ffi::c_int;
use kernel::ffi::c_ulong;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::rust::bindings;
use crate::rust::notifier::Chain;
use crate::rust::notifier::Notifier;

/// Memory being offlined: `nr_pages` pages from `start_pfn`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PfnRange {
    /// The first page frame number.
    pub(crate) start_pfn: usize,
    /// The number of pages.
    pub(crate) nr_pages: usize,
}

/// What a [`MemoryNotifier`] asks of its owner. Every call runs with
/// `mem_hotplug_lock` held for writing: a handler may sleep but must neither add,
/// remove, online nor offline memory, nor wait for anything that does.
pub(crate) trait MemoryEvents: Send + Sync {
    /// `range` is about to be offlined. An error vetoes the offline.
    fn going_offline(&self, range: PfnRange) -> Result;
    /// Offlining `range` failed after `going_offline` accepted it.
    fn cancel_offline(&self, range: PfnRange);
    /// `range` is offline.
    fn offline(&self, range: PfnRange);
    /// `range` is about to be onlined. An error vetoes the online.
    fn going_online(&self, range: PfnRange) -> Result;
}

/// The memory chain's listener for `T`.
struct MemoryCalls<T: MemoryEvents>(Arc<T>);

impl<T: MemoryEvents> Chain for MemoryCalls<T> {
    unsafe fn register(block: *mut kernel::bindings::notifier_block) -> c_int {
        // SAFETY: `block` stays valid and pinned until `unregister` (the caller's
        // guarantee).
        unsafe { bindings::register_memory_notifier(block) }
    }

    unsafe fn unregister(block: *mut kernel::bindings::notifier_block) {
        // SAFETY: `block` is registered (the caller's guarantee); unregistering takes
        // the chain's lock for writing, so no call is running once it returns.
        unsafe { bindings::unregister_memory_notifier(block) };
    }

    unsafe fn notify(&self, event: c_ulong, data: *mut c_void) -> c_int {
        // SAFETY: the memory chain passes a valid `struct memory_notify` (the caller's
        // guarantee), read-only for the duration of the call.
        let notify = unsafe { &*data.cast::<bindings::memory_notify>() };
        let range = PfnRange {
            start_pfn: notify.start_pfn,
            nr_pages: notify.nr_pages,
        };
        let ok = kernel::bindings::NOTIFY_OK as c_int;
        // notifier_from_errno(): NOTIFY_STOP_MASK | (NOTIFY_OK - errno).
        let veto = |result: Result| match result {
            Ok(()) => ok,
            Err(err) => (kernel::bindings::NOTIFY_STOP_MASK as c_int) | (ok - err.to_errno()),
        };
        match u32::try_from(event) {
            Ok(bindings::memory_block_state_MEM_GOING_OFFLINE) => veto(self.0.going_offline(range)),
            Ok(bindings::memory_block_state_MEM_GOING_ONLINE) => veto(self.0.going_online(range)),
            Ok(bindings::memory_block_state_MEM_CANCEL_OFFLINE) => {
                self.0.cancel_offline(range);
                ok
            }
            Ok(bindings::memory_block_state_MEM_OFFLINE) => {
                self.0.offline(range);
                ok
            }
            _ => ok,
        }
    }
}

/// A registered memory notifier.
pub(crate) struct MemoryNotifier<T: MemoryEvents> {
    /// Unregistered when dropped.
    _registration: Notifier<MemoryCalls<T>>,
}

impl<T: MemoryEvents> MemoryNotifier<T> {
    /// Registers `owner` to be told about memory going offline.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        Ok(Self {
            _registration: Notifier::register(MemoryCalls(owner))?,
        })
    }
}
