// SPDX-License-Identifier: GPL-2.0

//! The C balloon driver's sysfs device (`/sys/devices/system/xen_memory/xen_memory0/`)
//! served by Rust: the C shim in `sysfs_shim.c` registers the subsystem, the device and
//! its attribute groups, and forwards every read and write here with the file's
//! [`Attribute`].

use core::fmt;
use core::ptr::NonNull;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::rust::bindings;
use crate::rust::bindings::ebb_sysfs_attr as raw_attr;

/// A file of the device. The C driver's files first, then ebb's under `ebb/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attribute {
    /// `target_kb` (rw): the target in KiB.
    TargetKb,
    /// `target` (rw): the target in bytes; writes accept a K/M/G/T suffix.
    Target,
    /// `schedule_delay` (ro): seconds until the next retry.
    ScheduleDelay,
    /// `max_schedule_delay` (rw): the longest retry delay, in seconds.
    MaxScheduleDelay,
    /// `retry_count` (ro): consecutive attempts without progress.
    RetryCount,
    /// `max_retry_count` (rw): attempts before giving up until the target changes (0:
    /// never give up).
    MaxRetryCount,
    /// `scrub_pages` (rw): zero pages before the hypervisor gets them.
    ScrubPages,
    /// `info/current_kb` (ro): memory the domain holds now.
    CurrentKb,
    /// `info/low_kb` (ro): ballooned low memory.
    LowKb,
    /// `info/high_kb` (ro): ballooned high memory.
    HighKb,
    /// `ebb/state` (ro): `reached`, `working` or `stalled`.
    State,
    /// `ebb/reason` (ro): why the target is not (exactly) reached.
    Reason,
    /// `ebb/requested_kb` (ro): the target as last requested, before clamping.
    RequestedKb,
    /// `ebb/floor_kb` (ro): the lowest target ebb accepts.
    FloorKb,
    /// `ebb/max_kb` (ro): the highest target ebb can reach.
    MaxKb,
    /// `ebb/ballooned_pages` (ro).
    BalloonedPages,
    /// `ebb/hypercalls` (ro): reservation hypercalls made.
    Hypercalls,
    /// `ebb/pages_out` (ro): pages given to the hypervisor.
    PagesOut,
    /// `ebb/pages_in` (ro): pages taken back from the hypervisor.
    PagesIn,
    /// `ebb/failures` (ro): attempts that made no progress.
    Failures,
    /// `ebb/oom_deflated_pages` (ro): pages given back to the guest on OOM.
    OomDeflatedPages,
    /// `ebb/rejected_targets` (ro): malformed `memory/target` values the host wrote,
    /// refused (the target stayed as it was).
    RejectedTargets,
    /// `ebb/hotplug_blocks` (ro): memory blocks ebb added.
    HotplugBlocks,
    /// `ebb/hotplug_onlined` (ro): added blocks that are onlined.
    HotplugOnlined,
    /// `ebb/hotplug_backed_pages` (ro): pages of ebb's blocks that hotplug had the
    /// hypervisor back (ballooning out may have taken some of them since).
    HotplugBackedPages,
    /// `ebb/hotplug_ballooned_pages` (ro): pages of onlined blocks kept offline, unbacked.
    HotplugBalloonedPages,
    /// `ebb/hotplug_unremovable` (ro): added blocks that could not be offlined for
    /// removal since the target last changed.
    HotplugUnremovable,
    /// `ebb/hotplug_block_list` (ro): one line per added block (`memoryN`, state,
    /// backed and ballooned pages, unremovable); fails with EOVERFLOW past a page.
    HotplugBlockList,
}

impl Attribute {
    fn from_raw(raw: raw_attr::Type) -> Option<Self> {
        Some(match raw {
            raw_attr::EBB_SYSFS_TARGET_KB => Self::TargetKb,
            raw_attr::EBB_SYSFS_TARGET => Self::Target,
            raw_attr::EBB_SYSFS_SCHEDULE_DELAY => Self::ScheduleDelay,
            raw_attr::EBB_SYSFS_MAX_SCHEDULE_DELAY => Self::MaxScheduleDelay,
            raw_attr::EBB_SYSFS_RETRY_COUNT => Self::RetryCount,
            raw_attr::EBB_SYSFS_MAX_RETRY_COUNT => Self::MaxRetryCount,
            raw_attr::EBB_SYSFS_SCRUB_PAGES => Self::ScrubPages,
            raw_attr::EBB_SYSFS_CURRENT_KB => Self::CurrentKb,
            raw_attr::EBB_SYSFS_LOW_KB => Self::LowKb,
            raw_attr::EBB_SYSFS_HIGH_KB => Self::HighKb,
            raw_attr::EBB_SYSFS_STATE => Self::State,
            raw_attr::EBB_SYSFS_REASON => Self::Reason,
            raw_attr::EBB_SYSFS_REQUESTED_KB => Self::RequestedKb,
            raw_attr::EBB_SYSFS_FLOOR_KB => Self::FloorKb,
            raw_attr::EBB_SYSFS_MAX_KB => Self::MaxKb,
            raw_attr::EBB_SYSFS_BALLOONED_PAGES => Self::BalloonedPages,
            raw_attr::EBB_SYSFS_HYPERCALLS => Self::Hypercalls,
            raw_attr::EBB_SYSFS_PAGES_OUT => Self::PagesOut,
            raw_attr::EBB_SYSFS_PAGES_IN => Self::PagesIn,
            raw_attr::EBB_SYSFS_FAILURES => Self::Failures,
            raw_attr::EBB_SYSFS_OOM_DEFLATED_PAGES => Self::OomDeflatedPages,
            raw_attr::EBB_SYSFS_REJECTED_TARGETS => Self::RejectedTargets,
            raw_attr::EBB_SYSFS_HOTPLUG_BLOCKS => Self::HotplugBlocks,
            raw_attr::EBB_SYSFS_HOTPLUG_ONLINED => Self::HotplugOnlined,
            raw_attr::EBB_SYSFS_HOTPLUG_BACKED_PAGES => Self::HotplugBackedPages,
            raw_attr::EBB_SYSFS_HOTPLUG_BALLOONED_PAGES => Self::HotplugBalloonedPages,
            raw_attr::EBB_SYSFS_HOTPLUG_UNREMOVABLE => Self::HotplugUnremovable,
            raw_attr::EBB_SYSFS_HOTPLUG_BLOCK_LIST => Self::HotplugBlockList,
            _ => return None,
        })
    }
}

/// The reader and writer behind the device's files.
pub(crate) trait SysfsHandler: Send + Sync {
    /// Writes the file's contents (one value and a newline) to `out`.
    fn show(&self, attr: Attribute, out: &mut dyn fmt::Write) -> fmt::Result;
    /// Parses and applies a write; an invalid value returns `EINVAL` and changes
    /// nothing.
    fn store(&self, attr: Attribute, input: &[u8]) -> Result;
}

/// The registered device.
///
/// # Invariants
///
/// `handle` is a live registration from `ebb_sysfs_register` whose callback context is
/// `Arc::as_ptr(&owner)`.
pub(crate) struct SysfsDevice<T: SysfsHandler> {
    handle: NonNull<bindings::ebb_sysfs>,
    /// Kept alive for the callbacks, which reach it through the context pointer.
    _owner: Arc<T>,
}

// SAFETY: the handle is only passed to `ebb_sysfs_unregister`, which may run on any
// thread; the owner is `Send + Sync`.
unsafe impl<T: SysfsHandler> Send for SysfsDevice<T> {}
// SAFETY: no method uses the handle through `&self`.
unsafe impl<T: SysfsHandler> Sync for SysfsDevice<T> {}

impl<T: SysfsHandler> SysfsDevice<T> {
    /// Creates `/sys/devices/system/xen_memory/xen_memory0/` served by `owner`.
    pub(crate) fn register(owner: Arc<T>) -> Result<Self> {
        let ctx = Arc::as_ptr(&owner).cast_mut().cast::<c_void>();
        // SAFETY: `ctx` points to `owner`, which this value keeps alive until the
        // registration is removed in `drop`.
        let handle =
            unsafe { bindings::ebb_sysfs_register(ctx, Some(show::<T>), Some(store::<T>)) };
        let handle = kernel::error::from_err_ptr(handle)?;
        let handle = NonNull::new(handle).ok_or(ENOMEM)?;
        // INVARIANT: registered above with `owner` as context.
        Ok(Self {
            handle,
            _owner: owner,
        })
    }
}

impl<T: SysfsHandler> Drop for SysfsDevice<T> {
    fn drop(&mut self) {
        // SAFETY: `handle` is live (type invariant) and unregistered only here; no
        // callback runs after this returns.
        unsafe { bindings::ebb_sysfs_unregister(self.handle.as_ptr()) };
    }
}

/// A `fmt::Write` into the PAGE_SIZE buffer sysfs hands to a show callback.
struct PageBuffer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for PageBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dest = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// # Safety
///
/// `ctx` is the context of a live `SysfsDevice<T>`; `buf` is a writable buffer of
/// PAGE_SIZE bytes.
unsafe extern "C" fn show<T: SysfsHandler>(
    ctx: *mut c_void,
    attr: raw_attr::Type,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    // SAFETY: `ctx` points to the device's owner, alive while it is registered.
    let owner = unsafe { &*ctx.cast::<T>() };
    // SAFETY: sysfs passes a PAGE_SIZE buffer that nothing else uses during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let Some(attr) = Attribute::from_raw(attr) else {
        return EINVAL.to_errno() as isize;
    };
    let mut out = PageBuffer { buf, len: 0 };
    match owner.show(attr, &mut out) {
        Ok(()) => out.len as isize,
        Err(fmt::Error) => EOVERFLOW.to_errno() as isize,
    }
}

/// # Safety
///
/// `ctx` is the context of a live `SysfsDevice<T>`; `buf` holds `len` readable bytes.
unsafe extern "C" fn store<T: SysfsHandler>(
    ctx: *mut c_void,
    attr: raw_attr::Type,
    buf: *const kernel::ffi::c_char,
    len: usize,
) -> isize {
    // SAFETY: `ctx` points to the device's owner, alive while it is registered.
    let owner = unsafe { &*ctx.cast::<T>() };
    // SAFETY: sysfs passes `len` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    let Some(attr) = Attribute::from_raw(attr) else {
        return EINVAL.to_errno() as isize;
    };
    match owner.store(attr, input) {
        Ok(()) => len as isize,
        Err(err) => err.to_errno() as isize,
    }
}
