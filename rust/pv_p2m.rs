// SPDX-License-Identifier: GPL-2.0

//! A PV guest's own physical-to-machine map (p2m) for the memory ebb hot-adds.
//!
//! On PV the hypervisor hands out machine frames and the guest maps its pfns to them
//! itself, in its p2m and in its kernel's direct map. The boot-time p2m ends at the
//! highest RAM frame; before a block above it is added its p2m entries are prepared
//! ([`prepare_block`]); each frame the hypervisor backs is then mapped
//! ([`map`]) before its page reaches the allocator, and unmapped ([`unmap`], then
//! [`flush_tlbs`]) before it goes back. While a block is added its pages also have a
//! direct mapping ([`Mapping::Kernel`]); once it is removed only the p2m entry is
//! left ([`Mapping::P2mOnly`]).

use kernel::error::to_result;
use kernel::prelude::*;

use crate::rust::bindings;

/// What maps a hot-added pfn besides the p2m.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mapping {
    /// The block is added: the page has a memmap entry and a kernel direct mapping.
    Kernel,
    /// The block is removed: only its p2m entries are left.
    P2mOnly,
}

/// Prepares the p2m for a block of `nr_pages` at `pfn`, before it is added: its leaves
/// are allocated and every entry is invalid. `EEXIST` if a frame there is mapped.
pub(crate) fn prepare_block(pfn: usize, nr_pages: usize) -> Result {
    // SAFETY: the helper only allocates p2m leaves for the range and reads it.
    to_result(unsafe { bindings::ebb_helper_pv_p2m_prepare(pfn, nr_pages) })
}

/// Takes the machine frame backing `pfn` out of the p2m (and, for
/// [`Mapping::Kernel`], out of the kernel's direct map), and returns it. Call
/// [`flush_tlbs`] before the frame goes to the hypervisor.
///
/// # Safety
///
/// `pfn` lies in a range prepared by [`prepare_block`] and is backed; nothing uses its
/// page: for [`Mapping::Kernel`] its block is added and the page is offline, for
/// [`Mapping::P2mOnly`] its block is removed.
pub(crate) unsafe fn unmap(pfn: usize, mapping: Mapping) -> usize {
    match mapping {
        Mapping::Kernel => {
            // SAFETY: the block is added, so `pfn` has a memmap entry and a p2m entry
            // (the caller's guarantee); nobody uses the page while it loses both.
            unsafe {
                let frame = bindings::ebb_helper_pfn_to_gfn(pfn);
                bindings::ebb_helper_pv_unmap_page(bindings::ebb_helper_pfn_to_page(pfn));
                frame
            }
        }
        // SAFETY: the p2m leaf of `pfn` is one `prepare_block` allocated.
        Mapping::P2mOnly => unsafe { bindings::ebb_helper_pv_p2m_take(pfn) },
    }
}

/// Maps `pfn` to machine frame `frame` in the p2m (and, for [`Mapping::Kernel`], in
/// the kernel's direct map).
///
/// # Safety
///
/// `pfn` lies in a range prepared by [`prepare_block`] and has no frame mapped; the
/// domain owns `frame` and nothing else maps it; for [`Mapping::Kernel`] the block is
/// added.
pub(crate) unsafe fn map(pfn: usize, frame: usize, mapping: Mapping) {
    match mapping {
        // SAFETY: the block is added, so `pfn` has a memmap entry; its p2m leaf is
        // allocated, so the kernel's helper cannot fail to record the frame.
        Mapping::Kernel => unsafe {
            bindings::ebb_helper_pv_map_page(bindings::ebb_helper_pfn_to_page(pfn), frame)
        },
        // SAFETY: the p2m leaf of `pfn` is one `prepare_block` allocated.
        Mapping::P2mOnly => unsafe { bindings::ebb_helper_pv_p2m_put(pfn, frame) },
    }
}

/// Makes sure no vCPU still reaches a frame [`unmap`] dropped from the direct map.
pub(crate) fn flush_tlbs() {
    // SAFETY: a TLB flush has no precondition.
    unsafe { bindings::ebb_helper_pv_flush_tlbs() };
}
