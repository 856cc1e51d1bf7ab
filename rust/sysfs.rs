// SPDX-License-Identifier: GPL-2.0

//! The C balloon driver's sysfs device (`/sys/devices/system/xen_memory/xen_memory0/`)
//! served by Rust: the C shim in `sysfs_shim.c` registers the subsystem, the device and
//! the attribute groups of the files its owner lists ([`FileSpec`]), and forwards every
//! read and write here with the file's index in that list.

use core::fmt;
use core::ptr::NonNull;
use kernel::ffi::c_void;

use kernel::prelude::*;
use kernel::sync::Arc;

use crate::rust::bindings;

/// A file of the device, as the C shim creates it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileSpec {
    /// The file's name.
    pub(crate) name: &'static CStr,
    /// Its subdirectory, or `None` for the device's own directory.
    pub(crate) dir: Option<&'static CStr>,
    /// Mode 0644 when true, 0444 when false.
    pub(crate) writable: bool,
}

/// The reader and writer behind the device's files.
pub(crate) trait SysfsHandler: Send + Sync {
    /// Writes the contents of file `file` (an index into the registered list) to `out`.
    fn show(&self, file: usize, out: &mut dyn fmt::Write) -> fmt::Result;
    /// Parses and applies a write to file `file`; an invalid value returns `EINVAL`
    /// and changes nothing.
    fn store(&self, file: usize, input: &[u8]) -> Result;
}

/// The registered device.
///
/// # Invariants
///
/// `handle` is a live registration from `ebb_sysfs_register` whose callback context is
/// `Arc::as_ptr(&owner)` and whose file table is `files`.
pub(crate) struct SysfsDevice<T: SysfsHandler> {
    handle: NonNull<bindings::ebb_sysfs>,
    /// Kept alive for the callbacks, which reach it through the context pointer.
    _owner: Arc<T>,
    /// The file table the C shim's attributes point into.
    _files: KVec<bindings::ebb_sysfs_file>,
}

// SAFETY: the handle is only passed to `ebb_sysfs_unregister`, which may run on any
// thread; the owner is `Send + Sync`; the file table is only read, by the C shim.
unsafe impl<T: SysfsHandler> Send for SysfsDevice<T> {}
// SAFETY: no method uses the handle or the table through `&self`.
unsafe impl<T: SysfsHandler> Sync for SysfsDevice<T> {}

impl<T: SysfsHandler> SysfsDevice<T> {
    /// Creates `/sys/devices/system/xen_memory/xen_memory0/` with `files`, served by
    /// `owner`.
    pub(crate) fn register(owner: Arc<T>, files: &[FileSpec]) -> Result<Self> {
        let mut table = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for file in files {
            table.push(
                bindings::ebb_sysfs_file {
                    name: file.name.as_char_ptr(),
                    dir: file.dir.map_or(core::ptr::null(), CStr::as_char_ptr),
                    writable: file.writable,
                },
                GFP_KERNEL,
            )?;
        }
        let ctx = Arc::as_ptr(&owner).cast_mut().cast::<c_void>();
        // SAFETY: `ctx` points to `owner`, and `table` (whose strings are 'static) holds
        // `table.len()` entries; this value keeps both alive until the registration is
        // removed in `drop`.
        let handle = unsafe {
            bindings::ebb_sysfs_register(
                ctx,
                Some(show::<T>),
                Some(store::<T>),
                table.as_ptr(),
                table.len(),
            )
        };
        let handle = kernel::error::from_err_ptr(handle)?;
        let handle = NonNull::new(handle).ok_or(ENOMEM)?;
        // INVARIANT: registered above with `owner` as context and `table` as files.
        Ok(Self {
            handle,
            _owner: owner,
            _files: table,
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
    file: usize,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    // SAFETY: `ctx` points to the device's owner, alive while it is registered.
    let owner = unsafe { &*ctx.cast::<T>() };
    // SAFETY: sysfs passes a PAGE_SIZE buffer that nothing else uses during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut out = PageBuffer { buf, len: 0 };
    match owner.show(file, &mut out) {
        Ok(()) => out.len as isize,
        Err(fmt::Error) => EOVERFLOW.to_errno() as isize,
    }
}

/// # Safety
///
/// `ctx` is the context of a live `SysfsDevice<T>`; `buf` holds `len` readable bytes.
unsafe extern "C" fn store<T: SysfsHandler>(
    ctx: *mut c_void,
    file: usize,
    buf: *const kernel::ffi::c_char,
    len: usize,
) -> isize {
    // SAFETY: `ctx` points to the device's owner, alive while it is registered.
    let owner = unsafe { &*ctx.cast::<T>() };
    // SAFETY: sysfs passes `len` readable bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) };
    match owner.store(file, input) {
        Ok(()) => len as isize,
        Err(err) => err.to_errno() as isize,
    }
}
