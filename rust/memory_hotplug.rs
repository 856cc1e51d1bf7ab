// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug for a driver that manages its own memory (linux/memory_hotplug.h,
//! linux/memory.h): a dynamic memory group, adding and removing driver-managed memory
//! blocks, and the kernel-wide online-page callback.
//!
//! `add_memory_driver_managed` and `offline_and_remove_memory` take the device
//! hotplug lock themselves, and onlining (automatic or by a user) runs the online-page
//! callback synchronously under `mem_hotplug_lock`: a caller must not hold any lock
//! that its [`OnlinePages`] handler takes.

use core::sync::atomic::AtomicPtr;
use core::sync::atomic::Ordering;

use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::rust::bindings;

/// The resource name of ebb's memory in /proc/iomem; the kernel requires the form
/// "System RAM ($DRIVER)".
const RESOURCE_NAME: &CStr = c"System RAM (ebb)";

/// A dynamic memory group: memory that is added and removed in units of
/// `unit_pages`, which the kernel's auto-online policy treats as one device.
///
/// # Invariants
///
/// `id` is a registered memory group id.
pub(crate) struct MemoryGroup {
    id: i32,
}

impl MemoryGroup {
    /// Registers a group for memory at guest-physical address `phys` that grows and
    /// shrinks by `unit_pages`.
    pub(crate) fn register_dynamic(phys: u64, unit_pages: usize) -> Result<Self> {
        // SAFETY: `memory_add_physaddr_to_nid` accepts any address.
        let nid = unsafe { bindings::ebb_helper_phys_to_nid(phys) };
        // SAFETY: any node id and unit size are accepted; an invalid one is an error.
        let id = unsafe { bindings::memory_group_register_dynamic(nid, unit_pages) };
        if id < 0 {
            return Err(Error::from_errno(id));
        }
        // INVARIANT: registered above.
        Ok(Self { id })
    }

    /// Adds `size` bytes of memory at `start` to the group as "System RAM (ebb)". The
    /// kernel onlines it at once if `auto_online_blocks` says so, calling the
    /// online-page callback before this returns.
    pub(crate) fn add_memory(&self, start: u64, size: u64) -> Result {
        // SAFETY: the group id is registered (type invariant) and the resource name is
        // a static string of the required form.
        let ret = unsafe {
            bindings::add_memory_driver_managed(
                self.id,
                start,
                size,
                RESOURCE_NAME.as_char_ptr(),
                bindings::EBB_MHP_NID_IS_MGID | bindings::EBB_MHP_MERGE_RESOURCE,
            )
        };
        kernel::error::to_result(ret)
    }
}

impl Drop for MemoryGroup {
    fn drop(&mut self) {
        // SAFETY: the id is registered (type invariant).
        let ret = unsafe { bindings::memory_group_unregister(self.id) };
        if ret != 0 {
            pr_warn!(
                "memory group {} still has memory blocks ({}): it stays registered\n",
                self.id,
                ret
            );
        }
    }
}

/// Offlines (migrating what it holds) and removes `size` bytes of memory at `start`
/// that [`MemoryGroup::add_memory`] added, giving up after `timeout_ms` (`EINTR`, the
/// memory stays as it was): an offline that cannot move a page retries until a
/// signal comes, so it runs in a thread of its own that is sent one.
pub(crate) fn offline_and_remove_within(start: u64, size: u64, timeout_ms: u32) -> Result {
    // SAFETY: any range is accepted; one that is not added memory is an error.
    kernel::error::to_result(unsafe {
        bindings::ebb_helper_offline_and_remove_within(start, size, timeout_ms)
    })
}

/// Removes `size` bytes of offline memory at `start` that [`MemoryGroup::add_memory`]
/// added; `EBUSY` (and nothing changes) when one of its memory blocks is online. It
/// takes `device_hotplug_lock`, which a user's online or offline of a block holds
/// from its start to its end, so it waits for one in progress and sees the outcome.
pub(crate) fn remove_offline(start: u64, size: u64) -> Result {
    // SAFETY: any range is accepted; one that is not added memory is an error.
    kernel::error::to_result(unsafe { bindings::remove_memory(start, size) })
}

/// Pages being onlined: 2^order pages from `pfn`, aligned to their size, freshly
/// initialised as PageOffline with a reference count of one.
pub(crate) struct OnliningPages {
    pfn: usize,
    order: u32,
}

impl OnliningPages {
    /// The first page frame number.
    pub(crate) fn pfn(&self) -> usize {
        self.pfn
    }

    /// The number of pages.
    pub(crate) fn nr_pages(&self) -> usize {
        1 << self.order
    }
}

/// The name of the zone (`DMA32`, `Normal`, `Movable`, ...) that the online page
/// `pfn` belongs to, or `None` when it is not online.
///
/// # Safety
///
/// The memory block holding `pfn` is not removed during the call (its memmap stays).
pub(crate) unsafe fn zone_name(pfn: usize) -> Option<&'static str> {
    // SAFETY: the block's memmap stays during the call (the caller's guarantee).
    let name = unsafe { bindings::ebb_helper_zone_name(pfn) };
    if name.is_null() {
        return None;
    }
    // SAFETY: a zone's name is a static NUL-terminated string.
    unsafe { CStr::from_char_ptr(name) }.to_str().ok()
}

/// Hands 2^`order` pages from `pfn` to the buddy allocator as newly onlined memory
/// (they join the managed pages).
///
/// # Safety
///
/// The pages belong to an online memory block, were kept out of the allocator by an
/// online-page callback (PageOffline, reference count one, never freed since), are
/// backed by the hypervisor, and `pfn` is aligned to the order, at most
/// MAX_PAGE_ORDER.
pub(crate) unsafe fn online_pages_to_buddy(pfn: usize, order: u32) {
    // SAFETY: the caller's guarantees are those of `generic_online_page`.
    unsafe {
        bindings::generic_online_page(bindings::ebb_helper_pfn_to_page(pfn), order);
    }
}

/// What an [`OnlineCallback`] asks about each chunk of memory being onlined.
pub(crate) trait OnlinePages: Send + Sync {
    /// Decides what happens to `pages`: returns them (for the generic path, which
    /// frees them to the buddy allocator) or `None` when the handler keeps them (it
    /// may later hand them over with [`online_pages_to_buddy`]). Runs with
    /// `mem_hotplug_lock` held for writing: it may sleep, but must neither add nor
    /// remove memory.
    fn online(&self, pages: OnliningPages) -> Option<OnliningPages>;
}

/// The handler behind the online-page callback; null when none is registered.
static HANDLER: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The registered online-page callback (there is one slot kernel-wide).
///
/// # Invariants
///
/// [`online_page::<T>`] is the kernel's online-page callback and `HANDLER` points to
/// `owner`.
pub(crate) struct OnlineCallback<T: OnlinePages> {
    /// Kept alive for the callback, which reaches it through `HANDLER`.
    _owner: Arc<T>,
}

impl<T: OnlinePages> OnlineCallback<T> {
    /// Routes every onlining of memory through `owner`. Fails with `EBUSY` when
    /// another driver holds the slot.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        let ptr = Arc::as_ptr(&owner).cast::<c_void>().cast_mut();
        if HANDLER
            .compare_exchange(
                core::ptr::null_mut(),
                ptr,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return Err(EBUSY);
        }
        // SAFETY: `online_page::<T>` has the callback's signature and stays valid until
        // `Drop` restores the generic callback; `HANDLER` is set before.
        let ret = unsafe { bindings::set_online_page_callback(Some(online_page::<T>)) };
        if ret != 0 {
            HANDLER.store(core::ptr::null_mut(), Ordering::Release);
            return Err(EBUSY);
        }
        // INVARIANT: registered above with `HANDLER` pointing to `owner`.
        Ok(Self { _owner: owner })
    }
}

impl<T: OnlinePages> Drop for OnlineCallback<T> {
    fn drop(&mut self) {
        // SAFETY: `online_page::<T>` is the registered callback (type invariant). The
        // restore waits for any onlining in progress (it takes `mem_hotplug_lock`), so
        // no call runs once it returns.
        unsafe { bindings::restore_online_page_callback(Some(online_page::<T>)) };
        HANDLER.store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// The online-page callback.
///
/// # Safety
///
/// Called by the kernel's onlining code only, with pages as [`OnliningPages`]
/// describes, while the [`OnlineCallback<T>`] that registered it lives.
unsafe extern "C" fn online_page<T: OnlinePages>(page: *mut kernel::bindings::page, order: u32) {
    // SAFETY: `page` is a valid page of memory being onlined.
    let pfn = unsafe { bindings::ebb_helper_page_to_pfn(page) } as usize;
    let handler = HANDLER.load(Ordering::Acquire).cast::<T>();
    // SAFETY: `HANDLER` points to the registration's owner, which outlives the
    // callback's registration (the `OnlineCallback` invariant).
    let keep = match unsafe { handler.as_ref() } {
        Some(handler) => handler.online(OnliningPages { pfn, order }).is_none(),
        None => false,
    };
    if !keep {
        // SAFETY: the pages are being onlined by the kernel, which is exactly what
        // `generic_online_page` expects.
        unsafe { bindings::generic_online_page(page, order) };
    }
}

/// Drops the reference onlining left on each of `nr_pages` PageOffline pages from
/// `pfn`, so that offlining their block skips them (see PageOffline in
/// linux/page-flags.h). Fails, with every reference kept, when one of the pages is
/// referenced by someone else too.
///
/// # Safety
///
/// The pages were kept by the online-page callback (PageOffline, never handed to the
/// allocator) and are owned by the caller, which calls this from a memory notifier's
/// MEM_GOING_OFFLINE for their block and undoes it with [`retake_offline_refs`] on
/// MEM_CANCEL_OFFLINE.
pub(crate) unsafe fn drop_offline_refs(pfn: usize, nr_pages: usize) -> Result {
    // SAFETY: the pages are valid and owned by the caller (this function's contract).
    if unsafe { bindings::ebb_helper_pages_put_offline_refs(pfn, nr_pages) } {
        Ok(())
    } else {
        Err(EBUSY)
    }
}

/// Takes back the references that [`drop_offline_refs`] dropped.
///
/// # Safety
///
/// [`drop_offline_refs`] succeeded for exactly these pages and their block is still
/// online (the offline was cancelled).
pub(crate) unsafe fn retake_offline_refs(pfn: usize, nr_pages: usize) {
    // SAFETY: the pages are valid and ours, with the reference count zero that
    // `drop_offline_refs` left (this function's contract).
    unsafe { bindings::ebb_helper_pages_get_offline_refs(pfn, nr_pages) };
}
