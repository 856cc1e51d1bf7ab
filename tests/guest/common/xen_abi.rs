// SPDX-License-Identifier: GPL-2.0

//! The part of Xen's public ABI that both test modules (ebb_hostile, ebb_xenmem)
//! use, in one place: each includes this file as a module (`#[path]`), since two
//! out-of-tree modules share no crate. Layouts from xen/include/public/memory.h
//! (x86-64). A test artefact, not part of ebb.

use core::mem::size_of;

/// `XENMEM_*` sub-ops of `HYPERVISOR_memory_op`.
pub(crate) const XENMEM_DECREASE_RESERVATION: u32 = 1;
pub(crate) const XENMEM_POPULATE_PHYSMAP: u32 = 6;
pub(crate) const XENMEM_EXCHANGE: u32 = 11;
pub(crate) const DOMID_SELF: u16 = 0x7ff0;
/// Xen's errnos, as the hypercalls return them.
pub(crate) const XEN_EPERM: i64 = -1;
pub(crate) const XEN_EINVAL: i64 = -22;
/// The start of what ebbhv's `XENVER_extraversion` says: how the modules tell ebbhv
/// from a real Xen, whose answers to some of their calls differ.
pub(crate) const EBBHV_EXTRAVERSION: &[u8] = b".0-ebbhv";
pub(crate) const PAGE_SIZE: u64 = 4096;

/// `xen_memory_reservation`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Reservation {
    pub(crate) extent_start: u64,
    pub(crate) nr_extents: u64,
    pub(crate) extent_order: u32,
    pub(crate) mem_flags: u32,
    pub(crate) domid: u16,
    pub(crate) pad: [u8; 6],
}

/// `xen_memory_exchange`.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Exchange {
    pub(crate) input: Reservation,
    pub(crate) output: Reservation,
    pub(crate) nr_exchanged: u64,
}

const _: () = assert!(size_of::<Reservation>() == 32);
const _: () = assert!(size_of::<Exchange>() == 72);
