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
//! `balloon/mod.rs`, which takes staging before state). The worker makes its
//! hypercalls from [`Staging`] without the state lock, in three steps: under the lock
//! the runs move between the balloon and the staging area
//! ([`Reservation::stage_release`], [`Reservation::take_for_populate`]), unlocked the
//! hypervisor is asked ([`Staging::release_to_hypervisor`], [`Staging::populate`]),
//! and under the lock the outcome is accounted ([`Reservation::settle`]). So the
//! OOM notifier and sysfs never wait for a GiB-sized hypercall, and the balloon list
//! grows only with memory allocated beforehand without the lock
//! ([`Reservation::room_needed`], [`Reservation::adopt_room`]).

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
    /// Pages whose frames the hypervisor reported broken, given back for good.
    pub(crate) lost_pages: u64,
}

/// The pages the domain holds and the runs in the balloon.
///
/// # Invariants
///
/// - `ballooned_pages` is the sum of `nr_pages()` over `ballooned` and over the runs
///   of a populate in flight (taken by [`Reservation::take_for_populate`], not yet
///   [`Reservation::settle`]d), and every one of those runs has had its frames
///   released to the hypervisor.
/// - `current_pages + ballooned_pages` is the domain's reservation when the engine
///   was created plus the pages memory hotplug added since ([`Reservation::grew`])
///   minus those hot-remove gave back ([`Reservation::shrank`]) and those lost to
///   broken frames ([`Reservation::lost`]).
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

    /// Counts `pages` whose broken frames the guest took out of use and gave back to
    /// the hypervisor: the domain holds that much less.
    pub(crate) fn lost(&mut self, pages: usize) {
        // INVARIANT: the domain's reservation shrank by `pages`, all from the guest.
        self.current_pages = self.current_pages.saturating_sub(pages);
        self.counters.lost_pages += pages as u64;
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

    /// The capacity the balloon list needs so that the runs of one more hypercall, or
    /// a 2 MiB run split into pages, join it without allocating; `None` when it has
    /// it. The caller allocates it without the lock and hands it to
    /// [`Reservation::adopt_room`].
    pub(crate) fn room_needed(&self) -> Option<usize> {
        let wanted = self.ballooned.len() + MAX_EXTENTS_PER_CALL;
        (self.ballooned.capacity() < wanted).then(|| wanted.max(2 * self.ballooned.capacity()))
    }

    /// Moves the balloon list into `larger` (empty, allocated after
    /// [`Reservation::room_needed`]) when that gives it the room it needs.
    pub(crate) fn adopt_room(&mut self, mut larger: KVVec<PageRun>) {
        let wanted = self.ballooned.len() + MAX_EXTENTS_PER_CALL;
        if self.ballooned.capacity() >= wanted || larger.capacity() < wanted {
            return;
        }
        for run in self.ballooned.drain_all() {
            if larger.push_within_capacity(run).is_err() {
                // Cannot happen: `larger` holds more than the list. The run is released,
                // so it stays out of the guest; say so rather than lose it silently.
                pr_err!("balloon list move: a released run of pages is lost\n");
            }
        }
        self.ballooned = larger;
    }

    /// Trims the staged runs to `still_wanted` pages (the target may have moved while
    /// they were staged), freeing the others, before
    /// [`Staging::release_to_hypervisor`]; `Err` is the batch's outcome when nothing
    /// is left to release.
    pub(crate) fn stage_release(
        &mut self,
        staging: &mut Staging,
        still_wanted: usize,
    ) -> core::result::Result<(), Batch> {
        if staging.superpages_failed {
            self.superpage_allocs = false;
        }
        while staging.runs.len() * staging.order.pages() > still_wanted {
            staging.free_last();
        }
        if staging.runs.is_empty() {
            return Err(match staging.stall.take() {
                Some(stall) => self.stalled(0, stall),
                None => Batch::default(),
            });
        }
        if self.ballooned.capacity() - self.ballooned.len() < staging.runs.len() {
            // The worker makes room before each batch; without it the runs could not
            // be recorded once released.
            staging.free_all();
            return Err(self.stalled(0, Stall::EnomemGuest));
        }
        Ok(())
    }

    /// Accounts the hypercall [`Staging`] made without the lock: released runs join
    /// the balloon, populated ones go back to the guest, and the others return to
    /// where they were. Empties `staging`.
    pub(crate) fn settle(&mut self, staging: &mut Staging) -> Batch {
        match staging.outcome.take() {
            None => Batch::default(),
            Some(Outcome::Released(released)) => self.settle_release(staging, released),
            Some(Outcome::Populated(result)) => self.settle_populate(staging, result),
        }
    }

    fn settle_release(&mut self, staging: &mut Staging, released: usize) -> Batch {
        let order = staging.order;
        let asked = staging.runs.len();
        self.counters.hypercalls += 1;
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
                unsafe { run.give_back(staging.frames[index]) };
            } else if self.ballooned.push_within_capacity(run).is_err() {
                // Cannot happen: `stage_release` checked the room. The run is released,
                // so it stays out of the guest; say so rather than lose it silently.
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

    /// The extent order and number of the most recently ballooned runs that a populate
    /// of up to `want` pages takes; a 2 MiB run at the tail is split first when `want`
    /// is smaller or 2 MiB populates failed, unless `may_allocate` is false (the OOM
    /// path: splitting needs memory).
    fn populate_batch(
        &mut self,
        want: usize,
        may_allocate: bool,
    ) -> core::result::Result<(ExtentOrder, usize), Batch> {
        let Some(tail_order) = self.ballooned.last().map(PageRun::order) else {
            return Err(Batch::default());
        };
        let mut order = tail_order;
        if order == ExtentOrder::Superpage
            && (want < order.pages() || !self.superpage_populates)
            && may_allocate
        {
            if let Err(stall) = self.split_tail() {
                return Err(self.stalled(0, stall));
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
            return Err(Batch::default());
        }
        Ok((order, asked))
    }

    /// Moves the runs of a populate of up to `want` pages from the balloon into
    /// `staging`, for [`Staging::populate`] without the lock; `Err` is the batch's
    /// outcome when there is nothing to populate.
    pub(crate) fn take_for_populate(
        &mut self,
        want: usize,
        staging: &mut Staging,
    ) -> core::result::Result<(), Batch> {
        let (order, asked) = self.populate_batch(want, true)?;
        staging.free_all();
        staging.order = order;
        for frame in staging.frames.iter_mut().take(asked) {
            let Some(run) = self.ballooned.pop() else {
                break;
            };
            *frame = run.pfn();
            if staging.runs.push_within_capacity(run).is_err() {
                // Cannot happen: staging holds a hypercall's runs and was emptied.
                pr_err!("staging full: a ballooned run of pages is lost\n");
            }
        }
        // INVARIANT: the runs left `ballooned` for a populate in flight and are still
        // counted in `ballooned_pages` until `settle`.
        staging.populating = true;
        Ok(())
    }

    fn settle_populate(&mut self, staging: &mut Staging, result: Result<usize>) -> Batch {
        let order = staging.order;
        let asked = staging.runs.len();
        self.counters.hypercalls += 1;
        let backed = *result.as_ref().unwrap_or(&0);
        for index in (0..asked).rev() {
            let Some(run) = staging.runs.pop() else {
                break;
            };
            if index < backed {
                // SAFETY: the populate backed this run's extent; on PV `frames[index]`
                // now holds its machine frame.
                unsafe { run.give_back(staging.frames[index]) };
            } else if self.ballooned.push_within_capacity(run).is_err() {
                // Cannot happen: the run left the list for this populate and nothing
                // but the worker adds to it.
                pr_err!("balloon list full: a ballooned run of pages is lost\n");
            }
        }
        staging.populating = false;
        self.account_populate(order, asked, result, true)
    }

    /// Takes up to `want` pages back from the hypervisor in one hypercall and frees
    /// them to the guest, holding the balloon's lock throughout: for the OOM notifier
    /// (one extent, `may_allocate` false) and the rmmod drain (nothing else runs).
    pub(crate) fn balloon_in(&mut self, want: usize, may_allocate: bool) -> Batch {
        let (order, asked) = match self.populate_batch(want, may_allocate) {
            Ok(batch) => batch,
            Err(batch) => return batch,
        };
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
        self.account_populate(order, asked, result, may_allocate)
    }

    /// Counts the pages a populate of `asked` extents backed and says how the batch
    /// ended.
    fn account_populate(
        &mut self,
        order: ExtentOrder,
        asked: usize,
        result: Result<usize>,
        may_fall_back: bool,
    ) -> Batch {
        let backed = *result.as_ref().unwrap_or(&0);
        let pages = backed * order.pages();
        // INVARIANT: the backed runs left the balloon; the totals move together.
        self.current_pages += pages;
        self.ballooned_pages -= pages;
        self.counters.pages_in += pages as u64;
        match result {
            Err(_) => self.stalled(pages, Stall::HypervisorRefused),
            Ok(backed) if backed < asked && order == ExtentOrder::Superpage && may_fall_back => {
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

/// What the hypervisor did with the staged runs, until [`Reservation::settle`].
enum Outcome {
    /// It took the frames of the first this many runs.
    Released(usize),
    /// It backed the first this many runs (or failed).
    Populated(Result<usize>),
}

/// The worker's batch while the balloon's lock is not held: runs taken from the buddy
/// allocator (and scrubbed) for a balloon-out, or taken from the balloon for a
/// populate, and the frame list of their hypercall.
///
/// # Invariants
///
/// Every run in `runs` is of `order`. With `populating` false and no `outcome`, none
/// was taken off the books: each is backed and may go straight back to the
/// allocator. With `populating` true they are ballooned runs (frames released,
/// counted in the reservation's `ballooned_pages`); with an outcome of
/// `Released(n)` they are off the books and the hypervisor holds the frames of the
/// first `n`. Either way only [`Reservation::settle`] may dispose of them.
/// `frames.len() == MAX_EXTENTS_PER_CALL`.
pub(crate) struct Staging {
    runs: KVec<PageRun>,
    frames: KVec<usize>,
    order: ExtentOrder,
    stall: Option<Stall>,
    superpages_failed: bool,
    populating: bool,
    outcome: Option<Outcome>,
}

impl Staging {
    /// An empty staging area with room for one hypercall's runs.
    pub(crate) fn new() -> Result<Self> {
        // INVARIANT: empty, and the frame list has its full length.
        Ok(Self {
            runs: KVec::with_capacity(MAX_EXTENTS_PER_CALL, GFP_KERNEL)?,
            frames: KVec::from_elem(0, MAX_EXTENTS_PER_CALL, GFP_KERNEL)?,
            order: ExtentOrder::Page,
            stall: None,
            superpages_failed: false,
            populating: false,
            outcome: None,
        })
    }

    /// Takes the staged runs off the guest's books and gives their frames to the
    /// hypervisor in one `XENMEM_decrease_reservation`; [`Reservation::settle`]
    /// accounts the outcome. Called without the balloon's lock, after
    /// [`Reservation::stage_release`].
    pub(crate) fn release_to_hypervisor(&mut self) {
        if self.populating || self.outcome.is_some() || self.runs.is_empty() {
            return;
        }
        let asked = self.runs.len();
        for (frame, run) in self.frames.iter_mut().zip(self.runs.iter()) {
            *frame = run.gfn(0);
            run.take_off_books();
        }
        PageRun::forget_dropped_mappings();
        let released = xen_reservation::decrease_reservation(&mut self.frames[..asked], self.order)
            .unwrap_or_default();
        // INVARIANT: the runs are off the books; the first `released` are the
        // hypervisor's until `settle`.
        self.outcome = Some(Outcome::Released(released));
    }

    /// Asks the hypervisor to back the runs [`Reservation::take_for_populate`] staged,
    /// in one `XENMEM_populate_physmap`; [`Reservation::settle`] accounts the outcome.
    /// Called without the balloon's lock.
    pub(crate) fn populate(&mut self) {
        if !self.populating || self.outcome.is_some() {
            return;
        }
        let asked = self.runs.len();
        self.outcome = Some(Outcome::Populated(xen_reservation::populate_physmap(
            &mut self.frames[..asked],
            self.order,
        )));
    }

    /// Takes runs worth up to `want` pages from the allocator: 2 MiB runs first when
    /// `superpages`, else (or once they run out) 4 KiB pages; never leaving fewer than
    /// `free_reserve` pages free; scrubbed when `scrub`.
    pub(crate) fn fill(&mut self, want: usize, superpages: bool, scrub: bool, free_reserve: usize) {
        if self.populating || self.outcome.is_some() {
            return;
        }
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
        if self.populating || self.outcome.is_some() {
            // Runs whose frames the hypervisor may hold are `settle`'s to dispose of.
            return;
        }
        if let Some(run) = self.runs.pop() {
            // SAFETY: without a hypercall in flight, staged runs were never taken off
            // the books (type invariant).
            unsafe { run.free_unreleased() };
        }
    }

    fn free_all(&mut self) {
        if self.populating || self.outcome.is_some() {
            return;
        }
        while !self.runs.is_empty() {
            self.free_last();
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.populating || self.outcome.is_some() {
            // Cannot happen: the worker settles every hypercall before it lets go of
            // the staging area. The runs' frames may be the hypervisor's, so they
            // must not reach the allocator: they leak (dropping a run does), said out
            // loud.
            pr_err!(
                "{} staged runs of pages dropped before their hypercall was accounted; leaking them\n",
                self.runs.len()
            );
            self.runs.clear();
            return;
        }
        self.free_all();
    }
}
