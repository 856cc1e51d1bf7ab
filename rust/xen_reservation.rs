// SPDX-License-Identifier: GPL-2.0

//! Xen memory reservation hypercalls for the running domain: give frames back
//! (`XENMEM_decrease_reservation`), have them backed again (`XENMEM_populate_physmap`),
//! and read the domain's current and maximum reservation.
//!
//! Unlike Linux's `xenmem_reservation_increase/decrease`, which only move 4 KiB frames,
//! every call here takes an extent order, so one hypercall can move 512 extents of
//! 2 MiB. The hypervisor returns how many extents it handled; a partial count is a
//! normal answer that the caller accounts for, never a reason to crash.

use kernel::prelude::*;

use crate::rust::bindings;

/// Most extents passed to one hypercall: one page worth of frame numbers.
pub(crate) const MAX_EXTENTS_PER_CALL: usize = 512;

/// The size of a reservation extent: 2^order guest pages, aligned to their size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExtentOrder {
    /// One 4 KiB page (order 0).
    Page,
    /// A 2 MiB superpage (order 9), the largest order Xen grants a guest by default.
    Superpage,
}

impl ExtentOrder {
    /// The order as the hypercall takes it.
    pub(crate) const fn order(self) -> u32 {
        match self {
            Self::Page => 0,
            Self::Superpage => 9,
        }
    }

    /// Number of 4 KiB pages in one extent.
    pub(crate) const fn pages(self) -> usize {
        1 << self.order()
    }
}

/// Returns frames to the hypervisor: each entry of `frames` is the first guest frame
/// number of an extent of `order`. Returns how many leading extents were released.
pub(crate) fn decrease_reservation(frames: &mut [usize], order: ExtentOrder) -> Result<usize> {
    reservation_op(bindings::XENMEM_decrease_reservation, frames, order)
}

/// Asks the hypervisor to back guest frames: each entry of `frames` is the first guest
/// frame number of an extent of `order`. On PV the hypervisor overwrites each handled
/// entry with the machine frame it allocated. Returns how many leading extents were
/// backed.
pub(crate) fn populate_physmap(frames: &mut [usize], order: ExtentOrder) -> Result<usize> {
    reservation_op(bindings::XENMEM_populate_physmap, frames, order)
}

/// The number of pages the domain owns now (what `ebbctl info` calls tot_pages).
pub(crate) fn current_reservation() -> Result<usize> {
    domain_memory_op(bindings::XENMEM_current_reservation)
}

/// The most pages the domain may own (its `maxmem`).
pub(crate) fn maximum_reservation() -> Result<usize> {
    domain_memory_op(bindings::XENMEM_maximum_reservation)
}

fn reservation_op(cmd: u32, frames: &mut [usize], order: ExtentOrder) -> Result<usize> {
    if frames.len() > MAX_EXTENTS_PER_CALL {
        return Err(EINVAL);
    }
    // SAFETY: `frames` is a valid, writable array of `frames.len()` frame numbers for
    // the duration of the call; the hypervisor reads and (for populate on PV) writes
    // only the first `nr_extents` entries.
    let done = unsafe {
        bindings::ebb_helper_reservation_op(cmd, frames.as_mut_ptr(), frames.len(), order.order())
    };
    extent_count(done, frames.len())
}

/// Interprets a reservation hypercall's return value: an extent count from 0 to `asked`,
/// or a negative errno. A count above `asked` is a broken hypervisor.
fn extent_count(done: kernel::ffi::c_long, asked: usize) -> Result<usize> {
    if done < 0 {
        return Err(Error::from_errno(done.try_into().unwrap_or(EIO.to_errno())));
    }
    let done = usize::try_from(done).map_err(|_| EIO)?;
    if done > asked {
        return Err(EIO);
    }
    Ok(done)
}

fn domain_memory_op(cmd: u32) -> Result<usize> {
    // SAFETY: the helper passes a pointer to its own DOMID_SELF on its stack, which is
    // the whole argument of these sub-operations.
    let pages = unsafe { bindings::ebb_helper_domain_memory_op(cmd) };
    if pages < 0 {
        return Err(Error::from_errno(
            pages.try_into().unwrap_or(EIO.to_errno()),
        ));
    }
    usize::try_from(pages).map_err(|_| EIO)
}
