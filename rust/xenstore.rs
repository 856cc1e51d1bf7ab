// SPDX-License-Identifier: GPL-2.0

//! xenstore access for the running domain: read a number, write a string, and watch
//! a node with a Rust callback.
//!
//! Paths are relative to the domain's home (`/local/domain/<domid>/`). A watch waits
//! for xenstore to come up (a listener on the xenstore notifier chain) before
//! registering, so a driver may create it at any time; until then it simply has not
//! fired.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering;

use kernel::ffi::c_int;
use kernel::ffi::c_ulong;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

use crate::rust::bindings;
use crate::rust::notifier::Chain;
use crate::rust::notifier::Notifier;

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

/// Removes `dir/node` and everything under it.
pub(crate) fn rm(dir: &CStr, node: &CStr) -> Result {
    // SAFETY: both strings are NUL-terminated and live for the call.
    let err = unsafe { bindings::ebb_helper_xenbus_rm(dir.as_char_ptr(), node.as_char_ptr()) };
    kernel::error::to_result(err)
}

/// Lists the children of `dir/node` into `buf`; returns their names (`E2BIG` when
/// they do not all fit).
pub(crate) fn directory<'a>(
    dir: &CStr,
    node: &CStr,
    buf: &'a mut [u8],
) -> Result<impl Iterator<Item = &'a CStr>> {
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length
    // for the call.
    let len = unsafe {
        bindings::ebb_helper_xenbus_directory(
            dir.as_char_ptr(),
            node.as_char_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let len = usize::try_from(len).map_err(|_| Error::from_errno(len))?;
    let names = buf.get(..len).ok_or(E2BIG)?;
    // The helper wrote NUL-terminated names back to back.
    Ok(names
        .split_inclusive(|&byte| byte == 0)
        .filter_map(|name| CStr::from_bytes_with_nul(name).ok()))
}

/// What a [`Watch`] calls when its node changes.
pub(crate) trait WatchHandler: Send + Sync {
    /// The watched node changed (or the watch was just registered: xenstore fires
    /// every new watch once). Runs on the xenwatch thread with no ebb lock held.
    fn node_changed(&self, node: &'static CStr);
}

/// The watch, shared with the xenbus callback.
struct WatchSlot<T: WatchHandler> {
    watch: Opaque<bindings::xenbus_watch>,
    registered: AtomicBool,
    node: &'static CStr,
    owner: Arc<T>,
}

// SAFETY: the watch is only touched by xenbus under its own locks; the flag is atomic
// and the owner `Send + Sync`.
unsafe impl<T: WatchHandler> Send for WatchSlot<T> {}
// SAFETY: as above.
unsafe impl<T: WatchHandler> Sync for WatchSlot<T> {}

/// The xenstore notifier chain's listener: registers the watch once xenstore is up,
/// and unregisters it when dropped.
///
/// # Invariants
///
/// `slot.watch` is initialised for `slot.node` with [`watch_fired::<T>`];
/// `slot.registered` is true exactly while `slot.watch` is registered with xenbus.
struct WatchStarter<T: WatchHandler> {
    slot: Pin<KBox<WatchSlot<T>>>,
}

impl<T: WatchHandler> Chain for WatchStarter<T> {
    unsafe fn register(block: *mut kernel::bindings::notifier_block) -> c_int {
        // SAFETY: `block` stays valid and pinned until `unregister` (the caller's
        // guarantee). When xenstore is up already, the call comes at once.
        unsafe { bindings::register_xenstore_notifier(block) }
    }

    unsafe fn unregister(block: *mut kernel::bindings::notifier_block) {
        // SAFETY: `block` was registered (the caller's guarantee); unregistering waits
        // for a running call.
        unsafe { bindings::unregister_xenstore_notifier(block) };
    }

    unsafe fn notify(&self, _event: c_ulong, _data: *mut c_void) -> c_int {
        // SAFETY: the watch is initialised (type invariant) and pinned in the slot,
        // which outlives the registration (unregistered in `drop`).
        let err = unsafe { bindings::register_xenbus_watch(self.slot.watch.get()) };
        if err == 0 {
            self.slot.registered.store(true, Ordering::Release);
        } else {
            pr_warn!("xenstore watch not registered: error {}\n", err);
        }
        kernel::bindings::NOTIFY_DONE as c_int
    }
}

impl<T: WatchHandler> Drop for WatchStarter<T> {
    fn drop(&mut self) {
        if self.slot.registered.swap(false, Ordering::AcqRel) {
            // SAFETY: the watch is registered (type invariant); unregistering waits for
            // a running `watch_fired` unless called from it, which it is not.
            unsafe { bindings::unregister_xenbus_watch(self.slot.watch.get()) };
        }
    }
}

/// A xenstore watch on a fixed node, registered as soon as xenstore is up.
pub(crate) struct Watch<T: WatchHandler> {
    /// Off the xenstore chain when dropped, and then the watch off xenbus.
    _starter: Notifier<WatchStarter<T>>,
}

impl<T: WatchHandler> Watch<T> {
    /// Watches `node` for `owner`; the watch starts once xenstore is up.
    pub(crate) fn new(node: &'static CStr, owner: Arc<T>) -> Result<Self> {
        let slot = KBox::pin(
            WatchSlot {
                watch: Opaque::zeroed(),
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
        // INVARIANT: initialised above, not registered yet.
        Ok(Self {
            _starter: Notifier::register(WatchStarter { slot })?,
        })
    }
}

/// # Safety
///
/// `watch` is the `watch` field of a live `WatchSlot<T>`.
unsafe extern "C" fn watch_fired<T: WatchHandler>(
    watch: *mut bindings::xenbus_watch,
    _path: *const kernel::ffi::c_char,
    _token: *const kernel::ffi::c_char,
) {
    let watch = watch.cast::<Opaque<bindings::xenbus_watch>>();
    // SAFETY: `watch` is the `watch` field of a live slot (this function's contract;
    // the slot outlives the registration; `Opaque` is a transparent wrapper).
    let slot = unsafe { &*kernel::container_of!(watch, WatchSlot<T>, watch) };
    slot.owner.node_changed(slot.node);
}
