// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug facts of the running kernel (linux/memory.h).

use crate::rust::bindings;

/// Size in bytes of a memory block, the unit in which memory is added, onlined,
/// offlined and removed (`/sys/devices/system/memory/block_size_bytes`).
pub(crate) fn block_size_bytes() -> usize {
    // SAFETY: `memory_block_size_bytes` has no preconditions; it returns a value fixed
    // at boot.
    unsafe { bindings::memory_block_size_bytes() }
}

/// Free pages in the buddy allocator now (MemFree in pages).
pub(crate) fn free_pages() -> usize {
    // SAFETY: `global_zone_page_state` only reads an atomic counter.
    unsafe { bindings::ebb_helper_free_pages() as usize }
}

/// Whether any System RAM (boot or hot-added, online or not) lies in the `size` bytes
/// of guest-physical address space at `start`.
pub(crate) fn ram_present(start: u64, size: u64) -> bool {
    // SAFETY: `region_intersects` accepts any range; it only walks the resource tree
    // under its lock.
    unsafe { bindings::ebb_helper_ram_present(start, size) }
}

/// Pages of RAM the kernel has (present, managed or not): `get_num_physpages()`.
pub(crate) fn present_pages() -> usize {
    // SAFETY: `get_num_physpages` only sums the online nodes' present-page counters.
    unsafe { bindings::ebb_helper_present_pages() as usize }
}

/// Pages the buddy allocator manages now (MemTotal in pages).
pub(crate) fn total_ram_pages() -> usize {
    // SAFETY: `totalram_pages` only reads an atomic counter.
    unsafe { bindings::ebb_helper_totalram_pages() as usize }
}
