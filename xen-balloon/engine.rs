// SPDX-License-Identifier: GPL-2.0

//! The reservation engine: moves pages between the guest and the hypervisor in
//! batches, one hypercall per batch, 2 MiB extents where the pages allow it.
//!
//! Balloon out: take runs from the buddy allocator (order 9 first, then 4 KiB; never
//! retrying reclaim), scrub them if asked, take them off the guest's books and give
//! their frames back with one `XENMEM_decrease_reservation`. Balloon in: one
//! `XENMEM_populate_physmap` for the most recently ballooned runs, 2 MiB extents
//! first; when the hypervisor cannot give a 2 MiB extent, the run is split and
//! populated 4 KiB at a time.
//!
//! The hypervisor may handle only some extents of a call. Those it handled are
//! accounted exactly, the others stay where they were (in the guest for a decrease,
//! in the balloon for a populate) and the batch reports why it stopped.
//!
//! Locking: [`Reservation`] has no lock of its own; it lives inside the balloon's
//! state mutex (see `balloon.rs`) and every method runs under it.

use kernel::prelude::*;

use crate::memory;
use crate::page_run::PageRun;
use crate::xen_reservation;
use crate::xen_reservation::ExtentOrder;
use crate::xen_reservation::MAX_EXTENTS_PER_CALL;

/// Why a batch stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The guest had no free page to give without reclaim storms.
    EnomemGuest,
    /// The hypervisor had no frame to back a page (a populate handled nothing).
    EnomemHypervisor,
    /// The hypervisor refused the call or part of it.
    HypervisorRefused,
}

impl Stall {
    /// The name shown in sysfs and xenstore.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::EnomemGuest => "enomem_guest",
            Self::EnomemHypervisor => "enomem_hypervisor",
            Self::HypervisorRefused => "hypervisor_refused",
        }
    }
}

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
///   was created.
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

    /// Gives up to `want` pages to the hypervisor in one hypercall, leaving at least
    /// `free_reserve` pages free in the guest.
    pub(crate) fn balloon_out(&mut self, want: usize, scrub: bool, free_reserve: usize) -> Batch {
        let want = want.min(memory::free_pages().saturating_sub(free_reserve));
        if want == 0 {
            return self.stalled(0, Stall::EnomemGuest);
        }
        let mut order = if self.superpage_allocs && want >= ExtentOrder::Superpage.pages() {
            ExtentOrder::Superpage
        } else {
            ExtentOrder::Page
        };
        let mut max_runs = (want / order.pages()).min(MAX_EXTENTS_PER_CALL);
        if max_runs == 0 {
            return Batch::default();
        }
        if self
            .ballooned
            .reserve(MAX_EXTENTS_PER_CALL, GFP_KERNEL | __GFP_NOWARN)
            .is_err()
        {
            return self.stalled(0, Stall::EnomemGuest);
        }
        let start = self.ballooned.len();
        let mut stall = None;
        while self.ballooned.len() - start < max_runs {
            match PageRun::alloc(order) {
                Some(run) => {
                    if self.ballooned.push_within_capacity(run).is_err() {
                        // Cannot happen: capacity for MAX_EXTENTS_PER_CALL runs was
                        // reserved above. The run is leaked rather than lost track of.
                        break;
                    }
                }
                None if order == ExtentOrder::Superpage && self.ballooned.len() == start => {
                    // No free 2 MiB run: continue with 4 KiB pages for this batch and
                    // stop trying 2 MiB until the policy says to.
                    self.superpage_allocs = false;
                    order = ExtentOrder::Page;
                    max_runs = want.min(MAX_EXTENTS_PER_CALL);
                }
                None => {
                    if order == ExtentOrder::Page {
                        stall = Some(Stall::EnomemGuest);
                    }
                    break;
                }
            }
        }
        let asked = self.ballooned.len() - start;
        if asked == 0 {
            return self.stalled(0, Stall::EnomemGuest);
        }

        for (frame, run) in self.frames.iter_mut().zip(&self.ballooned[start..]) {
            if scrub {
                run.scrub();
            }
            *frame = run.gfn(0);
            run.take_off_books();
        }
        self.counters.hypercalls += 1;
        let released = xen_reservation::decrease_reservation(&mut self.frames[..asked], order)
            .unwrap_or_default();
        // The runs the hypervisor did not take are still backed: back to the guest.
        for index in (released..asked).rev() {
            if let Some(run) = self.ballooned.pop() {
                // SAFETY: the hypervisor did not release this run's frames.
                unsafe { run.give_back(self.frames[index]) };
            }
        }
        if released < asked {
            stall = Some(Stall::HypervisorRefused);
        }

        let pages = released * order.pages();
        // INVARIANT: the released runs stay in `ballooned`; the totals move together.
        self.current_pages -= pages;
        self.ballooned_pages += pages;
        self.counters.pages_out += pages as u64;
        match stall {
            Some(stall) => self.stalled(pages, stall),
            None => Batch { pages, stall: None },
        }
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
