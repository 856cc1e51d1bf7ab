// SPDX-License-Identifier: GPL-2.0

//! xenstore access for the running domain: read a number, write a string, and watch
//! a node with a Rust callback.
//!
//! Paths are relative to the domain's home (`/local/domain/<domid>/`). A watch waits
//! for xenstore to come up (`register_xenstore_notifier`) before registering, so a
//! driver may create it at any time; until then it simply has not fired.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

use crate::bindings;

/// Reads `dir/node` into `buf`; returns the value (`E2BIG` when it does not fit).
pub(crate) fn read<'a>(dir: &CStr, node: &CStr, buf: &'a mut [u8]) -> Result<&'a [u8]> {
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length
    // for the call.
    let len = unsafe {
        bindings::ebb_helper_xenbus_read(
            dir.as_char_ptr(),
            node.as_char_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let len = usize::try_from(len).map_err(|_| Error::from_errno(len))?;
    buf.get(..len).ok_or(E2BIG)
}

/// Writes `value` to `dir/node`.
pub(crate) fn write(dir: &CStr, node: &CStr, value: &CStr) -> Result {
    // SAFETY: all three strings are NUL-terminated and live for the call.
    let err = unsafe {
        bindings::ebb_helper_xenbus_write(
            dir.as_char_ptr(),
            node.as_char_ptr(),
            value.as_char_ptr(),
        )
    };
    kernel::error::to_result(err)
}

/// What a [`Watch`] calls when its node changes.
pub(crate) trait WatchHandler: Send + Sync {
    /// The watched node changed (or the watch was just registered: xenstore fires
    /// every new watch once). Runs on the xenwatch thread with no ebb lock held.
    fn node_changed(&self, node: &'static CStr);
}

/// The state shared with the C callbacks.
struct WatchSlot<T: WatchHandler> {
    watch: Opaque<bindings::xenbus_watch>,
    xenstore_ready: Opaque<kernel::bindings::notifier_block>,
    registered: AtomicBool,
    node: &'static CStr,
    owner: Arc<T>,
}

// SAFETY: the watch and notifier block are only touched by xenbus and the notifier
// chain under their own locks; the flag is atomic and the owner `Send + Sync`.
unsafe impl<T: WatchHandler> Send for WatchSlot<T> {}
// SAFETY: as above.
unsafe impl<T: WatchHandler> Sync for WatchSlot<T> {}

/// A xenstore watch on a fixed node, registered as soon as xenstore is up.
///
/// # Invariants
///
/// `slot.watch` is initialised for `node` with [`watch_fired::<T>`];
/// `slot.xenstore_ready` is registered on the xenstore notifier chain with
/// [`xenstore_up::<T>`]; `slot.registered` is true exactly while `slot.watch` is
/// registered with xenbus.
pub(crate) struct Watch<T: WatchHandler> {
    slot: Pin<KBox<WatchSlot<T>>>,
}

impl<T: WatchHandler> Watch<T> {
    /// Watches `node` for `owner`; the watch starts once xenstore is up.
    pub(crate) fn new(node: &'static CStr, owner: Arc<T>) -> Result<Self> {
        let slot = KBox::pin(
            WatchSlot {
                watch: Opaque::zeroed(),
                xenstore_ready: Opaque::new(kernel::bindings::notifier_block {
                    notifier_call: Some(xenstore_up::<T>),
                    ..Default::default()
                }),
                registered: AtomicBool::new(false),
                node,
                owner,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `watch` is pinned, zeroed and not yet shared; `node` is 'static.
        unsafe {
            bindings::ebb_helper_xenbus_watch_init(
                slot.watch.get(),
                node.as_char_ptr(),
                Some(watch_fired::<T>),
            )
        };
        // SAFETY: the notifier block is pinned inside `slot`, which outlives the
        // registration (unregistered in `drop`). The callback may run at once.
        let err = unsafe { bindings::register_xenstore_notifier(slot.xenstore_ready.get()) };
        kernel::error::to_result(err)?;
        // INVARIANT: initialised and registered above.
        Ok(Self { slot })
    }
}

impl<T: WatchHandler> Drop for Watch<T> {
    fn drop(&mut self) {
        // SAFETY: the notifier block was registered in `new`; unregistering waits for
        // a running `xenstore_up`.
        unsafe { bindings::unregister_xenstore_notifier(self.slot.xenstore_ready.get()) };
        if self.slot.registered.swap(false, Ordering::AcqRel) {
            // SAFETY: the watch is registered (type invariant); unregistering waits for
            // a running `watch_fired` unless called from it, which it is not.
            unsafe { bindings::unregister_xenbus_watch(self.slot.watch.get()) };
        }
    }
}

/// # Safety
///
/// `block` is the `xenstore_ready` field of a live `WatchSlot<T>`.
unsafe extern "C" fn xenstore_up<T: WatchHandler>(
    block: *mut kernel::bindings::notifier_block,
    _event: kernel::ffi::c_ulong,
    _data: *mut c_void,
) -> kernel::ffi::c_int {
    let offset = core::mem::offset_of!(WatchSlot<T>, xenstore_ready);
    // SAFETY: `block` lives at `offset` in a live slot (this function's contract).
    let slot = unsafe { &*block.cast::<u8>().sub(offset).cast::<WatchSlot<T>>() };
    // SAFETY: the watch is initialised and pinned in the slot, which outlives the
    // registration (unregistered in `Watch::drop`).
    let err = unsafe { bindings::register_xenbus_watch(slot.watch.get()) };
    if err == 0 {
        slot.registered.store(true, Ordering::Release);
    } else {
        pr_warn!("xenstore watch not registered: error {}\n", err);
    }
    kernel::bindings::NOTIFY_DONE as kernel::ffi::c_int
}

/// # Safety
///
/// `watch` is the `watch` field of a live `WatchSlot<T>`.
unsafe extern "C" fn watch_fired<T: WatchHandler>(
    watch: *mut bindings::xenbus_watch,
    _path: *const kernel::ffi::c_char,
    _token: *const kernel::ffi::c_char,
) {
    let offset = core::mem::offset_of!(WatchSlot<T>, watch);
    // SAFETY: `watch` lives at `offset` in a live slot (this function's contract; the
    // slot outlives the registration).
    let slot = unsafe { &*watch.cast::<u8>().sub(offset).cast::<WatchSlot<T>>() };
    slot.owner.node_changed(slot.node);
}
