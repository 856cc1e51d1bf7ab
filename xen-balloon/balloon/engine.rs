// SPDX-License-Identifier: GPL-2.0

//! The reservation engine: moves pages between the guest and the hypervisor in
//! batches, one hypercall per batch, 2 MiB extents where the pages allow it.
//!
//! Balloon out: [`Staging`] takes runs from the buddy allocator (order 9 first, then
//! 4 KiB; never retrying reclaim, never below a free-memory reserve) and scrubs them
//! if asked; [`Reservation::release`] takes them off the guest's books and gives
//! their frames back with one `XENMEM_decrease_reservation`. Balloon in: one
//! `XENMEM_populate_physmap` for the most recently ballooned runs, 2 MiB extents
//! first; when the hypervisor cannot give a 2 MiB extent, the run is split and
//! populated 4 KiB at a time.
//!
//! The hypervisor may handle only some extents of a call. Those it handled are
//! accounted exactly, the others stay where they were (in the guest for a decrease,
//! in the balloon for a populate) and the batch reports why it stopped.
//!
//! Locking: neither type has a lock of its own. [`Reservation`] lives inside the
//! balloon's state mutex and [`Staging`] inside the worker's staging mutex (see
//! `balloon/mod.rs`, which takes staging before state).

use kernel::prelude::*;

use crate::rust::memory;
use crate::rust::page_run::PageRun;
use crate::rust::xen_reservation;
use crate::rust::xen_reservation::ExtentOrder;
use crate::rust::xen_reservation::MAX_EXTENTS_PER_CALL;

use super::status::Stall;

/// What one batch did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Batch {
    /// Pages moved.
    pub(crate) pages: usize,
    /// Why it stopped short, if it did.
    pub(crate) stall: Option<Stall>,
}

/// Running totals, shown in sysfs and xenstore.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    /// Reservation hypercalls made.
    pub(crate) hypercalls: u64,
    /// Pages given to the hypervisor.
    pub(crate) pages_out: u64,
    /// Pages taken back from the hypervisor.
    pub(crate) pages_in: u64,
    /// Batches that stopped short.
    pub(crate) failures: u64,
}

/// The pages the domain holds and the runs in the balloon.
///
/// # Invariants
///
/// - `ballooned_pages` is the sum of `nr_pages()` over `ballooned`, and every run in
///   `ballooned` has had its frames released to the hypervisor.
/// - `current_pages + ballooned_pages` is the domain's reservation when the engine
///   was created plus the pages memory hotplug added since ([`Reservation::grew`])
///   minus those hot-remove gave back ([`Reservation::shrank`]).
/// - `frames.len() == MAX_EXTENTS_PER_CALL`.
pub(crate) struct Reservation {
    current_pages: usize,
    ballooned: KVVec<PageRun>,
    ballooned_pages: usize,
    frames: KVec<usize>,
    superpage_allocs: bool,
    superpage_populates: bool,
    counters: Counters,
}

impl Reservation {
    /// An empty balloon for a domain holding `current_pages`; `superpages` is false on
    /// PV, where the guest's p2m is kept per 4 KiB page.
    pub(crate) fn new(current_pages: usize, superpages: bool) -> Result<Self> {
        // INVARIANT: nothing ballooned yet; the frame buffer has its full length.
        Ok(Self {
            current_pages,
            ballooned: KVVec::new(),
            ballooned_pages: 0,
            frames: KVec::from_elem(0, MAX_EXTENTS_PER_CALL, GFP_KERNEL)?,
            superpage_allocs: superpages,
            superpage_populates: superpages,
            counters: Counters::default(),
        })
    }

    /// Pages the domain holds.
    pub(crate) fn current_pages(&self) -> usize {
        self.current_pages
    }

    /// Counts `pages` that memory hotplug had the hypervisor back with `hypercalls`.
    pub(crate) fn grew(&mut self, pages: usize, hypercalls: usize) {
        // INVARIANT: the domain's reservation grew by `pages`, all in the guest.
        self.current_pages += pages;
        self.counters.pages_in += pages as u64;
        self.counters.hypercalls += hypercalls as u64;
    }

    /// Counts `pages` of offlined hot-added blocks that the hypervisor took back.
    pub(crate) fn shrank(&mut self, pages: usize) {
        // INVARIANT: the domain's reservation shrank by `pages`, all from the guest.
        self.current_pages -= pages;
        self.counters.pages_out += pages as u64;
    }

    /// Pages in the balloon.
    pub(crate) fn ballooned_pages(&self) -> usize {
        self.ballooned_pages
    }

    /// The running totals.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Tries 2 MiB extents again (after a fallback to 4 KiB) from the next batch on.
    pub(crate) fn retry_superpages(&mut self, superpages: bool) {
        self.superpage_allocs = superpages;
        self.superpage_populates = superpages;
    }

    /// Gives the staged runs to the hypervisor in one hypercall, at most
    /// `still_wanted` pages of them (the target may have moved while they were
    /// staged); runs it does not take go back to the allocator. Empties `staging`.
    pub(crate) fn release(&mut self, staging: &mut Staging, still_wanted: usize) -> Batch {
        if staging.superpages_failed {
            self.superpage_allocs = false;
        }
        let order = staging.order;
        while staging.runs.len() * order.pages() > still_wanted {
            staging.free_last();
        }
        let asked = staging.runs.len();
        if asked == 0 {
            return match staging.stall.take() {
                Some(stall) => self.stalled(0, stall),
                None => Batch::default(),
            };
        }
        if self
            .ballooned
            .reserve(asked, GFP_KERNEL | __GFP_NOWARN)
            .is_err()
        {
            staging.free_all();
            return self.stalled(0, Stall::EnomemGuest);
        }

        for (frame, run) in self.frames.iter_mut().zip(staging.runs.iter()) {
            *frame = run.gfn(0);
            run.take_off_books();
        }
        PageRun::forget_dropped_mappings();
        self.counters.hypercalls += 1;
        let released = xen_reservation::decrease_reservation(&mut self.frames[..asked], order)
            .unwrap_or_default();
        let mut stall = staging.stall.take();
        if released < asked {
            stall = Some(Stall::HypervisorRefused);
        }
        for index in (0..asked).rev() {
            let Some(run) = staging.runs.pop() else {
                break;
            };
            if index >= released {
                // SAFETY: the hypervisor did not release this run's frames.
                unsafe { run.give_back(self.frames[index]) };
            } else if self.ballooned.push_within_capacity(run).is_err() {
                // Cannot happen: capacity was reserved above. The run is released, so
                // it stays out of the guest; say so rather than lose it silently.
                pr_err!("balloon list full: a released run of pages is lost\n");
            }
        }

        let pages = released * order.pages();
        // INVARIANT: the released runs moved to `ballooned`; the totals move together.
        self.current_pages -= pages;
        self.ballooned_pages += pages;
        self.counters.pages_out += pages as u64;
        match stall {
            Some(stall) => self.stalled(pages, stall),
            None => Batch { pages, stall: None },
        }
    }

    /// Whether balloon-out batches start with 2 MiB runs.
    pub(crate) fn superpage_allocs(&self) -> bool {
        self.superpage_allocs
    }

    /// Takes up to `want` pages back from the hypervisor in one hypercall and frees
    /// them to the guest. With `may_allocate` false (the OOM path) a 2 MiB run is never
    /// split, because splitting needs memory.
    pub(crate) fn balloon_in(&mut self, want: usize, may_allocate: bool) -> Batch {
        let Some(tail_order) = self.ballooned.last().map(PageRun::order) else {
            return Batch::default();
        };
        let mut order = tail_order;
        if order == ExtentOrder::Superpage
            && (want < order.pages() || !self.superpage_populates)
            && may_allocate
        {
            if let Err(stall) = self.split_tail() {
                return self.stalled(0, stall);
            }
            order = ExtentOrder::Page;
        }
        let max_runs = (want / order.pages()).min(MAX_EXTENTS_PER_CALL);
        let asked = self
            .ballooned
            .iter()
            .rev()
            .take(max_runs)
            .take_while(|run| run.order() == order)
            .count();
        if asked == 0 {
            return Batch::default();
        }
        for (frame, run) in self.frames.iter_mut().zip(self.ballooned.iter().rev()) {
            *frame = run.pfn();
        }
        self.counters.hypercalls += 1;
        let result = xen_reservation::populate_physmap(&mut self.frames[..asked], order);
        let backed = *result.as_ref().unwrap_or(&0);
        for index in 0..backed {
            if let Some(run) = self.ballooned.pop() {
                // SAFETY: the populate backed this run's extent; on PV `frames[index]`
                // now holds its machine frame.
                unsafe { run.give_back(self.frames[index]) };
            }
        }
        let pages = backed * order.pages();
        // INVARIANT: the backed runs left `ballooned`; the totals move together.
        self.current_pages += pages;
        self.ballooned_pages -= pages;
        self.counters.pages_in += pages as u64;
        match result {
            Err(_) => self.stalled(pages, Stall::HypervisorRefused),
            Ok(backed) if backed < asked && order == ExtentOrder::Superpage && may_allocate => {
                // No 2 MiB extent left in the hypervisor: 4 KiB from the next batch.
                self.superpage_populates = false;
                Batch { pages, stall: None }
            }
            Ok(backed) if backed < asked => self.stalled(pages, Stall::EnomemHypervisor),
            Ok(_) => Batch { pages, stall: None },
        }
    }

    /// Replaces the 2 MiB run at the tail of the balloon with its 512 pages.
    fn split_tail(&mut self) -> core::result::Result<(), Stall> {
        let extra = ExtentOrder::Superpage.pages() - 1;
        self.ballooned
            .reserve(extra, GFP_KERNEL | __GFP_NOWARN)
            .map_err(|_| Stall::EnomemGuest)?;
        if let Some(run) = self.ballooned.pop() {
            for page in run.split() {
                if self.ballooned.push_within_capacity(page).is_err() {
                    // Cannot happen: capacity was reserved above.
                    return Err(Stall::EnomemGuest);
                }
            }
        }
        Ok(())
    }

    fn stalled(&mut self, pages: usize, stall: Stall) -> Batch {
        self.counters.failures += 1;
        Batch {
            pages,
            stall: Some(stall),
        }
    }
}

/// Runs taken from the buddy allocator (and scrubbed) for one balloon-out batch,
/// gathered without the balloon's lock so that scrubbing a GiB does not hold it.
///
/// # Invariants
///
/// Every run in `runs` is of `order` and has never been taken off the books: it is
/// backed and may go straight back to the allocator.
pub(crate) struct Staging {
    runs: KVec<PageRun>,
    order: ExtentOrder,
    stall: Option<Stall>,
    superpages_failed: bool,
}

impl Staging {
    /// An empty staging area with room for one hypercall's runs.
    pub(crate) fn new() -> Result<Self> {
        // INVARIANT: empty.
        Ok(Self {
            runs: KVec::with_capacity(MAX_EXTENTS_PER_CALL, GFP_KERNEL)?,
            order: ExtentOrder::Page,
            stall: None,
            superpages_failed: false,
        })
    }

    /// Takes runs worth up to `want` pages from the allocator: 2 MiB runs first when
    /// `superpages`, else (or once they run out) 4 KiB pages; never leaving fewer than
    /// `free_reserve` pages free; scrubbed when `scrub`.
    pub(crate) fn fill(&mut self, want: usize, superpages: bool, scrub: bool, free_reserve: usize) {
        self.free_all();
        self.stall = None;
        self.superpages_failed = false;
        let want = want.min(memory::free_pages().saturating_sub(free_reserve));
        if want == 0 {
            self.stall = Some(Stall::EnomemGuest);
            return;
        }
        self.order = if superpages && want >= ExtentOrder::Superpage.pages() {
            ExtentOrder::Superpage
        } else {
            ExtentOrder::Page
        };
        let mut max_runs = (want / self.order.pages()).min(MAX_EXTENTS_PER_CALL);
        while self.runs.len() < max_runs {
            match PageRun::alloc(self.order) {
                Some(run) => {
                    if scrub {
                        run.scrub();
                    }
                    if let Err(err) = self.runs.push_within_capacity(run) {
                        // Cannot happen: the capacity is MAX_EXTENTS_PER_CALL.
                        // SAFETY: the run was just allocated and is on the books.
                        unsafe { err.0.free_unreleased() };
                        break;
                    }
                }
                None if self.order == ExtentOrder::Superpage && self.runs.is_empty() => {
                    // No free 2 MiB run: 4 KiB pages for this batch, and no 2 MiB
                    // runs until the policy says to try again.
                    self.superpages_failed = true;
                    self.order = ExtentOrder::Page;
                    max_runs = want.min(MAX_EXTENTS_PER_CALL);
                }
                None => {
                    if self.order == ExtentOrder::Page {
                        self.stall = Some(Stall::EnomemGuest);
                    }
                    break;
                }
            }
        }
    }

    fn free_last(&mut self) {
        if let Some(run) = self.runs.pop() {
            // SAFETY: staged runs were never taken off the books (type invariant).
            unsafe { run.free_unreleased() };
        }
    }

    fn free_all(&mut self) {
        while !self.runs.is_empty() {
            self.free_last();
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.free_all();
    }
}
