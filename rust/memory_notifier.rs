// SPDX-License-Identifier: GPL-2.0

//! The memory notifier (linux/memory.h): told when a memory block goes offline, so
//! that a driver holding PageOffline pages in it can let the offline skip them.
//!
//! The kernel calls the chain with `mem_hotplug_lock` held for writing, for each
//! memory block that a user (sysfs `state`) or a driver (`offline_and_remove_memory`)
//! offlines. A handler runs `going_offline` first, then either `offline` (the block
//! is offline: its pages are no longer in use) or `cancel_offline` (the offline
//! failed; the block stays online).

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

use crate::bindings;

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
}

struct NotifierSlot<T: MemoryEvents> {
    block: Opaque<kernel::bindings::notifier_block>,
    owner: Arc<T>,
}

// SAFETY: the notifier block is only touched by the notifier chain under its own
// lock; the owner is `Send + Sync`.
unsafe impl<T: MemoryEvents> Send for NotifierSlot<T> {}
// SAFETY: as above.
unsafe impl<T: MemoryEvents> Sync for NotifierSlot<T> {}

/// A registered memory notifier.
///
/// # Invariants
///
/// `slot.block` is registered on the memory notifier chain with
/// [`memory_event::<T>`].
pub(crate) struct MemoryNotifier<T: MemoryEvents> {
    slot: Pin<KBox<NotifierSlot<T>>>,
}

impl<T: MemoryEvents> MemoryNotifier<T> {
    /// Registers `owner` to be told about memory going offline.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        let slot = KBox::pin(
            NotifierSlot {
                block: Opaque::new(kernel::bindings::notifier_block {
                    notifier_call: Some(memory_event::<T>),
                    ..Default::default()
                }),
                owner,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the block is pinned inside `slot`, which outlives the registration
        // (unregistered in `drop`).
        kernel::error::to_result(unsafe { bindings::register_memory_notifier(slot.block.get()) })?;
        // INVARIANT: registered above.
        Ok(Self { slot })
    }
}

impl<T: MemoryEvents> Drop for MemoryNotifier<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistering takes the chain's lock for
        // writing, so no call is running once it returns.
        unsafe { bindings::unregister_memory_notifier(self.slot.block.get()) };
    }
}

/// # Safety
///
/// `block` is the `block` field of a live `NotifierSlot<T>`; `data` points to the
/// chain's `struct memory_notify`.
unsafe extern "C" fn memory_event<T: MemoryEvents>(
    block: *mut kernel::bindings::notifier_block,
    event: kernel::ffi::c_ulong,
    data: *mut kernel::ffi::c_void,
) -> kernel::ffi::c_int {
    let offset = core::mem::offset_of!(NotifierSlot<T>, block);
    // SAFETY: `block` lives at `offset` in a live slot (this function's contract).
    let slot = unsafe { &*block.cast::<u8>().sub(offset).cast::<NotifierSlot<T>>() };
    // SAFETY: the chain passes a valid `struct memory_notify` (this function's
    // contract), read-only for the duration of the call.
    let notify = unsafe { &*data.cast::<bindings::memory_notify>() };
    let range = PfnRange {
        start_pfn: notify.start_pfn,
        nr_pages: notify.nr_pages,
    };
    let ok = kernel::bindings::NOTIFY_OK as kernel::ffi::c_int;
    match u32::try_from(event) {
        Ok(bindings::memory_block_state_MEM_GOING_OFFLINE) => {
            match slot.owner.going_offline(range) {
                Ok(()) => ok,
                // notifier_from_errno(): NOTIFY_STOP_MASK | (NOTIFY_OK - errno).
                Err(err) => {
                    (kernel::bindings::NOTIFY_STOP_MASK as kernel::ffi::c_int)
                        | (ok - err.to_errno())
                }
            }
        }
        Ok(bindings::memory_block_state_MEM_CANCEL_OFFLINE) => {
            slot.owner.cancel_offline(range);
            ok
        }
        Ok(bindings::memory_block_state_MEM_OFFLINE) => {
            slot.owner.offline(range);
            ok
        }
        _ => ok,
    }
}
