//! ebbhv's own memory: the allocator behind `alloc` (the core's metadata, the
//! VMCB, permission maps and nested page tables).
//!
//! One contiguous range of machine memory, chosen at boot by [`crate::memory`],
//! feeds a first-fit list allocator. Guest memory never comes from here: it comes
//! from the core's frame heap, which owns the rest of RAM. Allocations are
//! identity-mapped, so a pointer is also the host-physical address.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use ebbhv_core::addr::{HostPhys, PAGE_SIZE};
use ebbhv_x86::ranges::Range;
use linked_list_allocator::Heap;

use crate::sync::SpinLock;

/// Bytes in a page.
const PAGE_BYTES: usize = PAGE_SIZE as usize;

struct Allocator(SpinLock<Heap>);

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(SpinLock::new(Heap::empty()));

// SAFETY: `alloc` returns blocks from the list allocator, which hands out each byte to
// at most one live allocation and honours the layout; `dealloc` returns exactly the
// blocks `alloc` gave out, with their layouts, as GlobalAlloc's contract promises.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with `layout`.
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}

/// Hands the machine memory `pool` to the allocator. Called once at boot.
///
/// # Safety
///
/// The range must be identity-mapped RAM that nothing else uses, now or later.
pub(crate) unsafe fn init(pool: Range) {
    // SAFETY: the caller guarantees the range is unused RAM, mapped at its address.
    unsafe {
        ALLOCATOR
            .0
            .lock()
            .init(pool.start as usize as *mut u8, pool.len() as usize)
    };
}

/// Bytes the allocator was given at boot.
pub fn pool_bytes() -> usize {
    ALLOCATOR.0.lock().size()
}

/// Bytes still free in the allocator.
pub fn free_bytes() -> usize {
    ALLOCATOR.0.lock().free()
}

/// Whole zeroed pages from the allocator: VMCBs, permission maps, table pages.
///
/// # Invariants
///
/// `ptr` is a live allocation of `count` 4 KiB pages with [`Pages::layout`] from the
/// global allocator, owned by this value; its address is its host-physical address.
pub(crate) struct Pages {
    ptr: NonNull<u8>,
    count: usize,
}

impl Pages {
    /// `None` if `count` pages do not fit the address space.
    fn layout(count: usize) -> Option<Layout> {
        let size = count.checked_mul(PAGE_BYTES)?;
        Layout::from_size_align(size, PAGE_BYTES).ok()
    }

    /// `count` zeroed, contiguous pages, or `None` if the allocator is exhausted or
    /// the size does not fit the address space.
    pub fn new(count: usize) -> Option<Pages> {
        let layout = Self::layout(count.max(1))?;
        // SAFETY: the layout has a non-zero size (count >= 1 at every caller, and a
        // zero-size request just fails below).
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        // INVARIANT: a non-null result is a fresh allocation of that layout.
        NonNull::new(ptr).map(|ptr| Pages {
            ptr,
            count: count.max(1),
        })
    }

    /// The machine address of the first page.
    pub fn phys(&self) -> HostPhys {
        HostPhys(self.ptr.as_ptr() as u64)
    }

    /// The pages' contents.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: by the invariant the allocation is `count` pages, owned by `self`, and
        // `&mut self` makes this the only reference.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.count * PAGE_BYTES) }
    }

    /// Gives up ownership without freeing (for pages that live until the machine
    /// stops, like nested page tables handed to hardware).
    pub fn leak(self) -> HostPhys {
        let pa = self.phys();
        core::mem::forget(self);
        pa
    }

    /// Takes back pages leaked by [`Pages::leak`].
    ///
    /// # Safety
    ///
    /// `pa` must come from `Pages::leak` of a `count`-page value, not taken back
    /// before, and nothing (hardware included) may use the pages any more.
    pub unsafe fn from_leaked(pa: HostPhys, count: usize) -> Pages {
        // INVARIANT: the caller hands back exactly an allocation this type leaked.
        Pages {
            // SAFETY: `Pages::leak` gave `pa` from a `NonNull`, as the caller
            // guarantees.
            ptr: unsafe { NonNull::new_unchecked(pa.0 as usize as *mut u8) },
            count,
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // `new` made the allocation with this count's layout, so it exists.
        if let Some(layout) = Self::layout(self.count) {
            // SAFETY: by the invariant `ptr` is a live allocation with this layout.
            unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}
