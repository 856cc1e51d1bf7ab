// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug facts of the running kernel (linux/memory.h), and its handling of
//! lost memory (mm/memory-failure.c).

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

/// Whether the kernel can take a page whose contents are lost out of use
/// (CONFIG_MEMORY_FAILURE).
pub(crate) fn memory_failure_supported() -> bool {
    // SAFETY: only reads a build-time constant.
    unsafe { bindings::ebb_helper_memory_failure_supported() }
}

/// Hands the page at `pfn`, whose contents are lost, to Linux's memory-failure
/// handling: the processes that map it get SIGBUS (when they touch it, unless they
/// asked for an early kill), a clean page-cache page is dropped, a free page is taken
/// out of the allocator, and the page is never used again. `EOPNOTSUPP` without
/// CONFIG_MEMORY_FAILURE; `EHWPOISON` when the page was already poisoned; `EBUSY`
/// when the kernel could not take it out of use (a kernel page).
pub(crate) fn memory_failure(pfn: usize) -> kernel::error::Result {
    // SAFETY: `memory_failure` takes any pfn: it looks the page up and refuses one
    // that is not online RAM; it may sleep, and callers run in process context.
    let err = unsafe { bindings::ebb_helper_memory_failure(pfn) };
    kernel::error::to_result(err)
}
