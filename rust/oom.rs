// SPDX-License-Identifier: GPL-2.0

//! The OOM notifier: a last chance to give the guest memory before the OOM killer
//! picks a victim (`register_oom_notifier`).

use kernel::ffi::c_int;
use kernel::ffi::c_ulong;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::rust::bindings;
use crate::rust::notifier::Chain;
use crate::rust::notifier::Notifier;

/// What an [`OomNotifier`] asks when the guest is out of memory.
pub(crate) trait OomHandler: Send + Sync {
    /// Frees some pages to the guest; returns how many. Runs in the context of the
    /// failing allocation: it must not allocate, sleep long or wait for a lock that
    /// an allocating thread may hold.
    fn free_on_oom(&self) -> usize;
}

/// The OOM chain's listener for `T`.
struct OomCalls<T: OomHandler>(Arc<T>);

impl<T: OomHandler> Chain for OomCalls<T> {
    unsafe fn register(block: *mut kernel::bindings::notifier_block) -> c_int {
        // SAFETY: `block` stays valid and pinned until `unregister` (the caller's
        // guarantee).
        unsafe { bindings::register_oom_notifier(block) }
    }

    unsafe fn unregister(block: *mut kernel::bindings::notifier_block) {
        // SAFETY: `block` is registered (the caller's guarantee); the chain's lock
        // waits for a running call.
        unsafe { bindings::unregister_oom_notifier(block) };
    }

    unsafe fn notify(&self, _event: c_ulong, data: *mut c_void) -> c_int {
        let pages = self.0.free_on_oom();
        let freed = data.cast::<c_ulong>();
        // SAFETY: the OOM killer passes its count of freed pages, an `unsigned long *`
        // (the caller's guarantee), and reads it after the chain has run.
        unsafe { *freed += pages as c_ulong };
        kernel::bindings::NOTIFY_OK as c_int
    }
}

/// A registered OOM notifier.
pub(crate) struct OomNotifier<T: OomHandler> {
    /// Unregistered when dropped.
    _registration: Notifier<OomCalls<T>>,
}

impl<T: OomHandler> OomNotifier<T> {
    /// Registers `owner` to be asked for pages on OOM.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        Ok(Self {
            _registration: Notifier::register(OomCalls(owner))?,
        })
    }
}
