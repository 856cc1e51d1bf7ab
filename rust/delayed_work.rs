// SPDX-License-Identifier: GPL-2.0

//! A delayed work item embedded in its owner that can be re-armed to any delay
//! (`mod_delayed_work`) or armed unless pending (`queue_delayed_work`), and cancelled
//! synchronously: what a policy worker with backoff
//! needs and the kernel crate's `workqueue::DelayedWork` does not offer (it can neither
//! shorten a pending delay nor cancel).
//!
//! The work runs on the freezable system workqueue and calls
//! [`DelayedWorkOwner::run`] on its owner.

use core::marker::PhantomData;

use kernel::prelude::*;
use kernel::time::Jiffies;
use kernel::types::Opaque;

use crate::rust::bindings;

/// A type with a [`DelayedWork`] field that runs [`DelayedWorkOwner::run`].
///
/// # Safety
///
/// [`DelayedWorkOwner::owner_of`] returns the `Self` whose `DelayedWork<Self>` field
/// `work` points to (`kernel::container_of!` with that field), and everything `run` uses
/// stays valid until that field's [`DelayedWork::cancel_sync`] has returned (dropping
/// the field calls it).
pub(crate) unsafe trait DelayedWorkOwner: Sync + Sized {
    /// The owner of `work`.
    ///
    /// # Safety
    ///
    /// `work` points to the `DelayedWork<Self>` field of a live `Self`.
    unsafe fn owner_of(work: *const DelayedWork<Self>) -> *const Self;

    /// The work itself; runs in process context with no ebb lock held.
    fn run(&self);
}

/// A `struct delayed_work` owned by a `T`.
///
/// # Invariants
///
/// `raw` is initialised with [`run_owner::<T>`] as its function, and this value is the
/// field of a pinned `T` that [`DelayedWorkOwner::owner_of`] maps back to it.
#[pin_data(PinnedDrop)]
#[repr(transparent)]
pub(crate) struct DelayedWork<T: DelayedWorkOwner> {
    #[pin]
    raw: Opaque<kernel::bindings::delayed_work>,
    _owner: PhantomData<T>,
}

// SAFETY: the kernel's workqueue functions may be called on a delayed work from any
// thread.
unsafe impl<T: DelayedWorkOwner> Send for DelayedWork<T> {}
// SAFETY: as above; all methods take `&self` and go through the workqueue's own locking.
unsafe impl<T: DelayedWorkOwner> Sync for DelayedWork<T> {}

impl<T: DelayedWorkOwner> DelayedWork<T> {
    /// An initialiser for the `DelayedWork` field of a pinned `T`.
    pub(crate) fn new() -> impl PinInit<Self> {
        // INVARIANT: initialised with `run_owner::<T>`; the owner's `DelayedWorkOwner`
        // implementation promises the placement.
        pin_init!(Self {
            raw <- Opaque::ffi_init(|slot: *mut kernel::bindings::delayed_work| {
                // SAFETY: `slot` is valid for writes and pinned.
                unsafe { bindings::ebb_helper_init_delayed_work(slot, Some(run_owner::<T>)) }
            }),
            _owner: PhantomData,
        })
    }

    /// Runs the work after `delay` jiffies, replacing any pending delay (0: at once).
    pub(crate) fn schedule(&self, delay: Jiffies) {
        // SAFETY: `raw` is an initialised delayed work (type invariant).
        unsafe { bindings::ebb_helper_mod_delayed_work(self.raw.get(), delay) };
    }

    /// Runs the work after `delay` jiffies unless a run is pending already, which
    /// keeps its own (maybe earlier) time.
    pub(crate) fn schedule_unless_pending(&self, delay: Jiffies) {
        // SAFETY: `raw` is an initialised delayed work (type invariant).
        unsafe { bindings::ebb_helper_queue_delayed_work(self.raw.get(), delay) };
    }

    /// Cancels a pending run and waits for a running one to finish. A run that
    /// re-arms itself meanwhile is cancelled too.
    pub(crate) fn cancel_sync(&self) {
        // SAFETY: `raw` is an initialised delayed work (type invariant).
        unsafe { kernel::bindings::cancel_delayed_work_sync(self.raw.get()) };
    }
}

#[pinned_drop]
impl<T: DelayedWorkOwner> PinnedDrop for DelayedWork<T> {
    fn drop(self: Pin<&mut Self>) {
        self.cancel_sync();
    }
}

/// The work function: finds the owner from the work item and runs it.
///
/// # Safety
///
/// `work` is the `work` member of the `raw` field of a live `DelayedWork<T>`.
unsafe extern "C" fn run_owner<T: DelayedWorkOwner>(work: *mut kernel::bindings::work_struct) {
    // SAFETY: `work` is embedded in a `delayed_work` (this function's contract).
    let dwork = unsafe { bindings::ebb_helper_to_delayed_work(work) };
    // `DelayedWork<T>` is a transparent wrapper of the `delayed_work`.
    let field = dwork.cast_const().cast::<DelayedWork<T>>();
    // SAFETY: the `delayed_work` is the `DelayedWork<T>` field of a live, pinned `T`
    // (type invariant of `DelayedWork`), which stays valid until the work is cancelled,
    // which waits for this call.
    let owner = unsafe { &*T::owner_of(field) };
    owner.run();
}
