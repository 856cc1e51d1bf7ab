// SPDX-License-Identifier: GPL-2.0

//! The OOM notifier: a last chance to give the guest memory before the OOM killer
//! picks a victim (`register_oom_notifier`).

use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

use crate::bindings;

/// What an [`OomNotifier`] asks when the guest is out of memory.
pub(crate) trait OomHandler: Send + Sync {
    /// Frees some pages to the guest; returns how many. Runs in the context of the
    /// failing allocation: it must not allocate, sleep long or wait for a lock that
    /// an allocating thread may hold.
    fn free_on_oom(&self) -> usize;
}

struct OomSlot<T: OomHandler> {
    block: Opaque<kernel::bindings::notifier_block>,
    owner: Arc<T>,
}

// SAFETY: the notifier block is only touched by the notifier chain under its own
// lock; the owner is `Send + Sync`.
unsafe impl<T: OomHandler> Send for OomSlot<T> {}
// SAFETY: as above.
unsafe impl<T: OomHandler> Sync for OomSlot<T> {}

/// A registered OOM notifier.
///
/// # Invariants
///
/// `slot.block` is registered on the OOM notifier chain with [`out_of_memory::<T>`].
pub(crate) struct OomNotifier<T: OomHandler> {
    slot: Pin<KBox<OomSlot<T>>>,
}

impl<T: OomHandler> OomNotifier<T> {
    /// Registers `owner` to be asked for pages on OOM.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        let slot = KBox::pin(
            OomSlot {
                block: Opaque::new(kernel::bindings::notifier_block {
                    notifier_call: Some(out_of_memory::<T>),
                    ..Default::default()
                }),
                owner,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the block is pinned inside `slot`, which outlives the registration
        // (unregistered in `drop`).
        kernel::error::to_result(unsafe { bindings::register_oom_notifier(slot.block.get()) })?;
        // INVARIANT: registered above.
        Ok(Self { slot })
    }
}

impl<T: OomHandler> Drop for OomNotifier<T> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistering waits for running calls.
        unsafe { bindings::unregister_oom_notifier(self.slot.block.get()) };
    }
}

/// # Safety
///
/// `block` is the `block` field of a live `OomSlot<T>`; `freed` points to the OOM
/// killer's count of freed pages.
unsafe extern "C" fn out_of_memory<T: OomHandler>(
    block: *mut kernel::bindings::notifier_block,
    _event: kernel::ffi::c_ulong,
    freed: *mut c_void,
) -> kernel::ffi::c_int {
    let offset = core::mem::offset_of!(OomSlot<T>, block);
    // SAFETY: `block` lives at `offset` in a live slot (this function's contract).
    let slot = unsafe { &*block.cast::<u8>().sub(offset).cast::<OomSlot<T>>() };
    let pages = slot.owner.free_on_oom();
    let freed = freed.cast::<kernel::ffi::c_ulong>();
    // SAFETY: the OOM killer passes a valid `unsigned long *` (this function's
    // contract) and reads it after the chain has run.
    unsafe { *freed += pages as kernel::ffi::c_ulong };
    kernel::bindings::NOTIFY_OK as kernel::ffi::c_int
}
