// SPDX-License-Identifier: GPL-2.0

//! Runs of guest pages held by the balloon: taken from the buddy allocator without
//! reclaim storms, taken off the guest's books while the hypervisor does not back
//! them, and handed back to the allocator only once backed again.
//!
//! A run is 2^order pages (order 0 or 9), naturally aligned, split at allocation
//! time into independent order-0 pages so that any part of it can later be populated
//! and freed on its own (the 4 KiB fallback after a 2 MiB populate fails).
//!
//! On PV guests the guest keeps its own physical-to-machine map: a page leaving the
//! guest loses its p2m entry and kernel mapping before the hypervisor gets its frame,
//! and a repopulated page gets the new machine frame mapped before it is freed. The
//! kernel's `xenmem_reservation_va_mapping_*` helpers do this and are no-ops on
//! PVH/HVM, so the same calls run everywhere.

use core::ptr::NonNull;

use crate::rust::bindings;
use crate::rust::xen_reservation::ExtentOrder;

/// Allocation flags for balloon pages: movable highmem-capable user pages, a single
/// light reclaim attempt at most, no emergency reserves, no warning on failure.
const BALLOON_GFP: kernel::bindings::gfp_t = bindings::EBB_GFP_HIGHUSER
    | bindings::EBB_GFP_NORETRY
    | bindings::EBB_GFP_NOMEMALLOC
    | bindings::EBB_GFP_NOWARN;

/// A run of 2^order physically contiguous guest pages owned by the balloon.
///
/// # Invariants
///
/// - `first` is the first `struct page` of 2^`order.order()` pages allocated by
///   [`PageRun::alloc`] and split to order 0: each has a reference count of one and is
///   owned by this value alone (or is one page of a run split by [`PageRun::split`]).
/// - The pages are not in the buddy allocator. They go back there only through
///   [`PageRun::give_back`]; dropping a `PageRun` leaks its pages on purpose, because a
///   page that the hypervisor does not back must never be handed out again.
pub(crate) struct PageRun {
    first: NonNull<kernel::bindings::page>,
    order: ExtentOrder,
}

// SAFETY: a `PageRun` is an exclusive claim on pages, not tied to the allocating CPU or
// task; any thread may hold, scrub or give back the pages.
unsafe impl Send for PageRun {}

impl PageRun {
    /// Takes a run of `order` from the buddy allocator, or `None` when the guest has
    /// no such run free without retrying reclaim or dipping into reserves.
    pub(crate) fn alloc(order: ExtentOrder) -> Option<Self> {
        // SAFETY: `alloc_pages` accepts any flags and an order up to MAX_PAGE_ORDER (9
        // at most here).
        let first =
            NonNull::new(unsafe { bindings::ebb_helper_alloc_pages(BALLOON_GFP, order.order()) })?;
        if order.order() > 0 {
            // SAFETY: `first` heads a freshly allocated, non-compound block of this
            // order that nobody else references.
            unsafe { kernel::bindings::split_page(first.as_ptr(), order.order()) };
        }
        // INVARIANT: allocated and split above, owned by the new value only.
        Some(Self { first, order })
    }

    /// The extent order of the run.
    pub(crate) fn order(&self) -> ExtentOrder {
        self.order
    }

    /// Number of 4 KiB pages in the run.
    pub(crate) fn nr_pages(&self) -> usize {
        self.order.pages()
    }

    /// The guest page frame number of the first page.
    pub(crate) fn pfn(&self) -> usize {
        // SAFETY: `first` is a valid `struct page` by the type invariant.
        unsafe { bindings::ebb_helper_page_to_pfn(self.first.as_ptr()) as usize }
    }

    /// The frame number the hypervisor knows page `index` of the run by: the pfn on
    /// PVH/HVM, the machine frame on PV.
    pub(crate) fn gfn(&self, index: usize) -> usize {
        // SAFETY: `pfn_to_gfn` only reads the p2m for a pfn of the guest's RAM, which
        // every page of the run is.
        unsafe { bindings::ebb_helper_pfn_to_gfn(self.pfn() + index) }
    }

    fn page(&self, index: usize) -> *mut kernel::bindings::page {
        // SAFETY: page `index` of the run is guest RAM with a memmap entry.
        unsafe { bindings::ebb_helper_pfn_to_page(self.pfn() + index) }
    }

    /// Fills every page with zeroes so that the hypervisor never sees guest data.
    pub(crate) fn scrub(&self) {
        for index in 0..self.nr_pages() {
            // SAFETY: the run owns the page (type invariant), so nobody else writes it.
            unsafe { bindings::ebb_helper_clear_highpage(self.page(index)) };
        }
    }

    /// Takes the run off the guest's books before its frames go to the hypervisor:
    /// marks every page PageOffline, lowers the managed page count (so MemTotal
    /// shrinks), and on PV drops the pages' p2m entries and kernel mappings.
    ///
    /// [`PageRun::give_back`] undoes this once the pages are backed again.
    pub(crate) fn take_off_books(&self) {
        for index in 0..self.nr_pages() {
            let page = self.page(index);
            // SAFETY: the run owns the page (type invariant); it is not in the
            // allocator and has no other page type set.
            unsafe {
                bindings::ebb_helper_pv_unmap_page(page);
                bindings::ebb_helper_set_page_offline(page);
            }
        }
        // SAFETY: the run's pages are managed pages of one zone; the count goes back
        // up in `put_on_books`.
        unsafe {
            kernel::bindings::adjust_managed_page_count(
                self.first.as_ptr(),
                -(self.nr_pages() as isize),
            )
        };
    }

    /// Makes sure no vCPU still reaches the pages of runs taken off the books through
    /// a kernel mapping they had (on PV, where [`PageRun::take_off_books`] drops it);
    /// once per batch, after the last run is taken off and before their frames go to
    /// the hypervisor.
    pub(crate) fn forget_dropped_mappings() {
        // SAFETY: a TLB flush has no precondition.
        unsafe { bindings::ebb_helper_pv_flush_tlbs() };
    }

    /// Undoes [`PageRun::take_off_books`] for backed pages; `first_frame` is the
    /// frame backing the first page (an extent is contiguous in frame space).
    fn put_on_books(&self, first_frame: usize) {
        for index in 0..self.nr_pages() {
            let page = self.page(index);
            // SAFETY: the run owns the page, which is PageOffline from
            // `take_off_books`; on PV, `first_frame + index` is the machine frame now
            // backing it (elsewhere the call does nothing).
            unsafe {
                bindings::ebb_helper_pv_map_page(page, first_frame + index);
                bindings::ebb_helper_clear_page_offline(page);
            }
        }
        // SAFETY: reverses the decrement made by `take_off_books`.
        unsafe {
            kernel::bindings::adjust_managed_page_count(
                self.first.as_ptr(),
                self.nr_pages() as isize,
            )
        };
    }

    /// Puts the run back on the guest's books and frees its pages to the buddy
    /// allocator. `first_frame` is the frame backing the first page: on PV the machine
    /// frame a populate returned (or the one the run had before a refused release),
    /// elsewhere unused.
    ///
    /// # Safety
    ///
    /// The hypervisor backs every page of the run again (a populate succeeded for it,
    /// or the frames were never released).
    pub(crate) unsafe fn give_back(self, first_frame: usize) {
        self.put_on_books(first_frame);
        for index in 0..self.nr_pages() {
            // SAFETY: the page is owned by the run with a reference count of one (type
            // invariant), back on the books and backed (the caller's guarantee).
            unsafe { bindings::ebb_helper_free_page(self.page(index)) };
        }
    }

    /// Frees a run that never left the guest straight back to the buddy allocator.
    ///
    /// # Safety
    ///
    /// The run was never taken off the books ([`PageRun::take_off_books`]).
    pub(crate) unsafe fn free_unreleased(self) {
        for index in 0..self.nr_pages() {
            // SAFETY: the page is owned by the run with a reference count of one (type
            // invariant) and, never taken off the books, is backed and mapped.
            unsafe { bindings::ebb_helper_free_page(self.page(index)) };
        }
    }

    /// Splits the run into order-0 runs, first page first.
    pub(crate) fn split(self) -> impl Iterator<Item = PageRun> {
        let pfn = self.pfn();
        (0..self.nr_pages()).filter_map(move |index| {
            // SAFETY: the page belongs to the run being split, which was split to
            // order 0 at allocation.
            let page = unsafe { bindings::ebb_helper_pfn_to_page(pfn + index) };
            // INVARIANT: each page of the split run is owned by exactly one new run.
            NonNull::new(page).map(|first| PageRun {
                first,
                order: ExtentOrder::Page,
            })
        })
    }
}
