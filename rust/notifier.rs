// SPDX-License-Identifier: GPL-2.0

//! Notifier chains (linux/notifier.h): a `notifier_block` registered on a chain, whose
//! calls reach a Rust [`Chain`] implementation. `oom.rs`, `memory_notifier.rs` and
//! `xenstore.rs` (xenstore coming up) are the chains ebb listens to.

use kernel::ffi::c_int;
use kernel::ffi::c_ulong;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::types::Opaque;

/// A notifier chain and what a listener does when it is called.
pub(crate) trait Chain: Send + Sync + Sized {
    /// Puts `block` on the chain.
    ///
    /// # Safety
    ///
    /// `block` is valid, pinned and not on any chain, until [`Chain::unregister`].
    unsafe fn register(block: *mut kernel::bindings::notifier_block) -> c_int;

    /// Takes `block` off the chain; no call of it runs once this returns.
    ///
    /// # Safety
    ///
    /// `block` was put on the chain by [`Chain::register`].
    unsafe fn unregister(block: *mut kernel::bindings::notifier_block);

    /// One call of the chain with its `event` and `data`; returns a `NOTIFY_*` value.
    ///
    /// # Safety
    ///
    /// `data` is what this chain passes with `event`.
    unsafe fn notify(&self, event: c_ulong, data: *mut c_void) -> c_int;
}

struct Slot<C: Chain> {
    block: Opaque<kernel::bindings::notifier_block>,
    listener: C,
}

/// A listener registered on its chain.
///
/// # Invariants
///
/// `slot.block` is on `C`'s chain with [`call::<C>`] as its function.
pub(crate) struct Notifier<C: Chain> {
    slot: Pin<KBox<Slot<C>>>,
}

// SAFETY: the notifier block is only touched by the chain under its own lock, and
// `C: Send + Sync`.
unsafe impl<C: Chain> Send for Notifier<C> {}
// SAFETY: as above; `&Notifier` gives access to nothing.
unsafe impl<C: Chain> Sync for Notifier<C> {}

impl<C: Chain> Notifier<C> {
    /// Registers `listener` on its chain.
    pub(crate) fn register(listener: C) -> Result<Self> {
        let slot = KBox::pin(
            Slot {
                block: Opaque::new(kernel::bindings::notifier_block {
                    notifier_call: Some(call::<C>),
                    ..Default::default()
                }),
                listener,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the block is pinned inside `slot`, which outlives the registration
        // (unregistered in `drop`).
        kernel::error::to_result(unsafe { C::register(slot.block.get()) })?;
        // INVARIANT: registered above with `call::<C>`.
        Ok(Self { slot })
    }
}

impl<C: Chain> Drop for Notifier<C> {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant).
        unsafe { C::unregister(self.slot.block.get()) };
    }
}

/// The block's function: finds the listener and passes the call on.
///
/// # Safety
///
/// `block` is the `block` field of a live `Slot<C>` on `C`'s chain, and `data` is
/// what that chain passes with `event`.
unsafe extern "C" fn call<C: Chain>(
    block: *mut kernel::bindings::notifier_block,
    event: c_ulong,
    data: *mut c_void,
) -> c_int {
    let block = block.cast::<Opaque<kernel::bindings::notifier_block>>();
    // SAFETY: `block` is the `block` field of a live slot (this function's contract;
    // `Opaque` is a transparent wrapper).
    let slot = unsafe { &*kernel::container_of!(block, Slot<C>, block) };
    // SAFETY: `data` is what the chain passes with `event` (this function's contract).
    unsafe { slot.listener.notify(event, data) }
}
