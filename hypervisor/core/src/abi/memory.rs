//! `XENMEM_*` (`public/memory.h`): sub-op numbers, flags and argument structures of
//! `HYPERVISOR_memory_op`.

use core::mem::{offset_of, size_of};

use super::codec::abi_record;

/// `XENMEM_increase_reservation`.
pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
/// `XENMEM_decrease_reservation`.
pub const XENMEM_DECREASE_RESERVATION: u64 = 1;
/// `XENMEM_current_reservation`.
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// `XENMEM_maximum_reservation`.
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// `XENMEM_populate_physmap`.
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `XENMEM_memory_map`.
pub const XENMEM_MEMORY_MAP: u64 = 9;
/// `XENMEM_exchange`.
pub const XENMEM_EXCHANGE: u64 = 11;
/// `XENMEM_maximum_gpfn`.
pub const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `XENMEM_remove_from_physmap`.
pub const XENMEM_REMOVE_FROM_PHYSMAP: u64 = 15;

/// `MEMOP_EXTENT_SHIFT`: a continued reservation op is `op | start_extent << 6`.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// `MEMOP_CMD_MASK`: the sub-op bits of the command.
pub const MEMOP_CMD_MASK: u64 = (1 << MEMOP_EXTENT_SHIFT) - 1;
/// The largest `nr_extents` whose every start extent fits the continuation encoding
/// in 32 bits (`UINT_MAX >> MEMOP_EXTENT_SHIFT`).
pub const MAX_NR_EXTENTS: u64 = (u32::MAX >> MEMOP_EXTENT_SHIFT) as u64;

/// `XENMEMF_address_bits` mask of `mem_flags`.
pub const XENMEMF_ADDRESS_BITS_MASK: u32 = 0xff;
/// `XENMEMF_node(n)` is `(n + 1) << 8`: these bits hold the node plus one, 0 for
/// "any node" (`XENMEMF_get_node`).
pub const XENMEMF_NODE_SHIFT: u32 = 8;
/// The mask of the node field (before the shift).
pub const XENMEMF_NODE_MASK: u32 = 0xff;
/// `XENMEMF_populate_on_demand`.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `XENMEMF_exact_node_request`: the node is a requirement, not a hint.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// Xen's `MAX_NUMNODES` on x86: a node at or past it is refused even as a hint.
pub const MAX_NUMNODES: u32 = 64;

/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range`.
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPIDX_grant_table_status`: in a grant-table idx, selects a status frame.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 1 << 31;

/// `struct xen_memory_reservation` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenMemoryReservation {
    /// `extent_start`: handle to an array of `xen_pfn_t` (guest frames for populate
    /// and decrease).
    pub extent_start: u64,
    /// `nr_extents`.
    pub nr_extents: u64,
    /// `extent_order`.
    pub extent_order: u32,
    /// `mem_flags` (`address_bits` in Linux).
    pub mem_flags: u32,
    /// `domid`.
    pub domid: u16,
    /// Padding to the 8-byte alignment of the structure.
    pub pad: [u8; 6],
}
abi_record!(XenMemoryReservation {
    extent_start,
    nr_extents,
    extent_order,
    mem_flags,
    domid,
    pad
});
const _: () = {
    assert!(size_of::<XenMemoryReservation>() == 32);
    assert!(offset_of!(XenMemoryReservation, nr_extents) == 8);
    assert!(offset_of!(XenMemoryReservation, extent_order) == 16);
    assert!(offset_of!(XenMemoryReservation, mem_flags) == 20);
    assert!(offset_of!(XenMemoryReservation, domid) == 24);
};

/// `struct xen_memory_exchange` (72 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenMemoryExchange {
    /// `in`: the extents given up.
    pub input: XenMemoryReservation,
    /// `out`: the extents received.
    pub output: XenMemoryReservation,
    /// `nr_exchanged`: input extents done so far (progress, for continuations).
    pub nr_exchanged: u64,
}
abi_record!(XenMemoryExchange {
    input,
    output,
    nr_exchanged
});
const _: () = {
    assert!(size_of::<XenMemoryExchange>() == 72);
    assert!(offset_of!(XenMemoryExchange, output) == 32);
    assert!(offset_of!(XenMemoryExchange, nr_exchanged) == 64);
};

/// `struct xen_add_to_physmap` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenAddToPhysmap {
    /// `domid`.
    pub domid: u16,
    /// `size`: frames, for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `space`: `XENMAPSPACE_*`.
    pub space: u32,
    /// `idx`: index in the space (a guest frame for gmfn).
    pub idx: u64,
    /// `gpfn`: where to map it.
    pub gpfn: u64,
}
abi_record!(XenAddToPhysmap {
    domid,
    size,
    space,
    idx,
    gpfn
});
const _: () = {
    assert!(size_of::<XenAddToPhysmap>() == 24);
    assert!(offset_of!(XenAddToPhysmap, size) == 2);
    assert!(offset_of!(XenAddToPhysmap, space) == 4);
    assert!(offset_of!(XenAddToPhysmap, idx) == 8);
    assert!(offset_of!(XenAddToPhysmap, gpfn) == 16);
};

/// `struct xen_remove_from_physmap` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenRemoveFromPhysmap {
    /// `domid`.
    pub domid: u16,
    /// Padding.
    pub pad: [u8; 6],
    /// `gpfn`.
    pub gpfn: u64,
}
abi_record!(XenRemoveFromPhysmap { domid, pad, gpfn });
const _: () = {
    assert!(size_of::<XenRemoveFromPhysmap>() == 16);
    assert!(offset_of!(XenRemoveFromPhysmap, gpfn) == 8);
};

/// `struct xen_memory_map` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenMemoryMap {
    /// `nr_entries`: in, room in the buffer; out, entries written.
    pub nr_entries: u32,
    /// Padding.
    pub pad: u32,
    /// `buffer`: handle to an array of [`E820Entry`].
    pub buffer: u64,
}
abi_record!(XenMemoryMap {
    nr_entries,
    pad,
    buffer
});
const _: () = {
    assert!(size_of::<XenMemoryMap>() == 16);
    assert!(offset_of!(XenMemoryMap, buffer) == 8);
};

/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type of reserved ranges.
pub const E820_RESERVED: u32 = 2;

/// A packed e820 entry as `XENMEM_memory_map` returns it (20 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct E820Entry {
    /// Start address (bytes).
    pub addr: u64,
    /// Length (bytes).
    pub size: u64,
    /// `E820_*` type.
    pub kind: u32,
}
abi_record!(E820Entry { addr, size, kind });
const _: () = {
    assert!(size_of::<E820Entry>() == 20);
    assert!(offset_of!(E820Entry, size) == 8);
    assert!(offset_of!(E820Entry, kind) == 16);
};
