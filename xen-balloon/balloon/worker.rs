// SPDX-License-Identifier: GPL-2.0

//! The balloon's worker: each run moves the domain a bounded number of batches
//! towards the target (hot-removing blocks before ballooning out, ballooning in
//! before growing by hotplug), then re-arms itself at once while it makes progress or
//! after the backoff when it does not; and the rmmod drain.
//!
//! Lock order: as `balloon/mod.rs`.

use kernel::prelude::*;
use kernel::sync::MutexGuard;

use crate::hotplug::Grow;
use crate::hotplug::Hotplug;
use crate::rust::delayed_work::DelayedWork;
use crate::rust::delayed_work::DelayedWorkOwner;

use super::engine::Batch;
use super::policy::Retry;
use super::status::Progress;
use super::status::Stall;
use super::Balloon;
use super::BalloonState;

/// Batches per worker run before the worker yields the workqueue.
const BATCHES_PER_RUN: usize = 64;
/// Retries of the rmmod drain after its first attempt, with 1, 2, 4, 8, 16 s before
/// them.
const DRAIN_RETRIES: u32 = 5;

// SAFETY: `owner_of` maps the `worker` field back to its `Balloon`; `Balloon` lives in
// an `Arc` and the driver cancels the worker (`Balloon::stop`) before its last
// reference goes; dropping the field cancels it too.
unsafe impl DelayedWorkOwner for Balloon {
    unsafe fn owner_of(work: *const DelayedWork<Self>) -> *const Self {
        // SAFETY: `work` is the `worker` field of a live `Balloon` (the caller's
        // guarantee).
        unsafe { kernel::container_of!(work, Self, worker) }
    }

    fn run(&self) {
        self.work_towards_target();
        self.publish_status();
    }
}

impl Balloon {
    fn work_towards_target(&self) {
        self.state
            .lock()
            .reservation
            .retry_superpages(self.superpages);
        let mut moved = 0;
        for _ in 0..BATCHES_PER_RUN {
            let mut state = self.state.lock();
            self.count_hotplugged(&mut state);
            let current = state.reservation.current_pages();
            let target = state.target_pages;
            if current > target {
                if let Some(hotplug) = &self.hotplug {
                    drop(state);
                    let removed = hotplug.shrink(current - target, self.limits.reserve_pages);
                    state = self.state.lock();
                    let released = self.count_hotplugged(&mut state);
                    if removed {
                        moved += released;
                        state.progress = Progress::Working;
                        continue;
                    }
                }
            }
            let current = state.reservation.current_pages();
            let target = state.target_pages;
            if current > target || (current < target && state.reservation.ballooned_pages() > 0) {
                // Room in the balloon list for this batch (and a 2 MiB run split into
                // pages), allocated without the lock.
                if let Some(capacity) = state.reservation.room_needed() {
                    drop(state);
                    let larger = KVVec::with_capacity(capacity, GFP_KERNEL | __GFP_NOWARN);
                    state = self.state.lock();
                    match larger {
                        Ok(larger) => state.reservation.adopt_room(larger),
                        Err(_) => {
                            self.back_off(state, Stall::EnomemGuest);
                            return;
                        }
                    }
                }
            }
            let current = state.reservation.current_pages();
            let target = state.target_pages;
            let batch = if current > target {
                // Allocate and scrub without the state lock, then release: the
                // hypercall without it too, so that the OOM notifier and sysfs never
                // wait for it.
                let scrub = state.tunables.scrub_pages;
                let superpages = state.reservation.superpage_allocs();
                drop(state);
                let mut staging = self.staging.lock();
                staging.fill(
                    current - target,
                    superpages,
                    scrub,
                    self.limits.reserve_pages,
                );
                state = self.state.lock();
                // A user's offline may have released hotplug frames meanwhile.
                self.count_hotplugged(&mut state);
                let still_wanted = state
                    .reservation
                    .current_pages()
                    .saturating_sub(state.target_pages);
                match state.reservation.stage_release(&mut staging, still_wanted) {
                    Err(batch) => batch,
                    Ok(()) => {
                        drop(state);
                        staging.release_to_hypervisor();
                        state = self.state.lock();
                        state.reservation.settle(&mut staging)
                    }
                }
            } else if current < target && state.reservation.ballooned_pages() > 0 {
                drop(state);
                let mut staging = self.staging.lock();
                state = self.state.lock();
                let lacking = state
                    .target_pages
                    .saturating_sub(state.reservation.current_pages());
                match state.reservation.take_for_populate(lacking, &mut staging) {
                    Err(batch) => batch,
                    Ok(()) => {
                        drop(state);
                        staging.populate();
                        state = self.state.lock();
                        state.reservation.settle(&mut staging)
                    }
                }
            } else if let (true, Some(hotplug)) = (current < target, &self.hotplug) {
                drop(state);
                self.grow(hotplug, target - current);
                return;
            } else {
                // Reached, or nothing left to take back.
                state.made_progress(Progress::Reached);
                return;
            };
            match batch {
                Batch {
                    pages: 0,
                    stall: Some(stall),
                } => {
                    self.back_off(state, stall);
                    return;
                }
                // The engine fell back from 2 MiB to 4 KiB extents: next batch.
                Batch {
                    pages: 0,
                    stall: None,
                } => {}
                Batch { pages, .. } => {
                    moved += pages;
                    state.made_progress(Progress::Working);
                }
            }
        }
        if moved > 0 {
            self.schedule_run(0);
            return;
        }
        // A whole run of fallbacks without moving a page: back off rather than spin.
        self.back_off(self.state.lock(), Stall::HypervisorRefused);
    }

    /// Folds what hotplug backed and released since the last call into the
    /// reservation; returns the pages released.
    fn count_hotplugged(&self, state: &mut BalloonState) -> usize {
        let Some(hotplug) = &self.hotplug else {
            return 0;
        };
        let changes = hotplug.take_changes();
        state.reservation.grew(changes.backed, changes.hypercalls);
        state.reservation.shrank(changes.released);
        changes.released
    }

    /// One hotplug step towards a target `lacking` pages away, then re-arms the worker
    /// as the step's outcome says. Called without the balloon's locks.
    fn grow(&self, hotplug: &Hotplug, lacking: usize) {
        let stall = match hotplug.grow(lacking, self.limits.reserve_pages) {
            Grow::Backed | Grow::Added => None,
            Grow::NotOnlined => {
                // The online callback re-arms the worker when a user onlines a block.
                self.state.lock().progress = Progress::NotOnlined;
                return;
            }
            Grow::Nothing => {
                let mut state = self.state.lock();
                self.count_hotplugged(&mut state);
                state.made_progress(Progress::Reached);
                return;
            }
            Grow::EnomemHypervisor => Some(Stall::EnomemHypervisor),
            Grow::HypervisorRefused => Some(Stall::HypervisorRefused),
            Grow::EnomemGuest => Some(Stall::EnomemGuest),
            Grow::AddFailed => Some(Stall::AddMemoryFailed),
        };
        let mut state = self.state.lock();
        self.count_hotplugged(&mut state);
        let Some(stall) = stall else {
            state.made_progress(Progress::Working);
            drop(state);
            self.schedule_run(0);
            return;
        };
        self.back_off(state, stall);
    }

    /// Records an attempt without progress that stopped at `stall`, then, unlocked,
    /// schedules the retry unless the worker gives up until the target changes.
    fn back_off(&self, mut state: MutexGuard<'_, BalloonState>, stall: Stall) {
        let BalloonState {
            backoff,
            tunables,
            progress,
            ..
        } = &mut *state;
        match backoff.failed(tunables) {
            Retry::GiveUp => *progress = Progress::GaveUp(stall),
            Retry::After(delay_s) => {
                *progress = Progress::Stalled(stall);
                drop(state);
                self.schedule_run_in(delay_s);
            }
        }
    }

    /// Gives every ballooned page back to the guest (rmmod): populates and frees them,
    /// waiting and retrying while the hypervisor cannot back them. Returns how many
    /// pages are still ballooned after the last attempt.
    pub(crate) fn return_all(&self) -> usize {
        let mut delay_s = 1u32;
        let mut retry = 0;
        loop {
            // An attempt that failed fell back to 4 KiB extents; the next one starts
            // with 2 MiB again, as each worker run does, or it repopulates a GiB 4 KiB
            // at a time.
            self.state
                .lock()
                .reservation
                .retry_superpages(self.superpages);
            loop {
                let mut state = self.state.lock();
                let ballooned = state.reservation.ballooned_pages();
                if ballooned == 0 {
                    return 0;
                }
                let batch = state.reservation.balloon_in(ballooned, true);
                if batch.pages == 0 && batch.stall.is_some() {
                    break;
                }
            }
            let remaining = self.state.lock().reservation.ballooned_pages();
            // The wait announced last is followed by an attempt, too: the host may
            // raise the maximum during it.
            if retry == DRAIN_RETRIES {
                return remaining;
            }
            retry += 1;
            pr_warn!(
                "unload: the hypervisor backs none of the {} ballooned pages left; retry {}/{} in {} s\n",
                remaining,
                retry,
                DRAIN_RETRIES,
                delay_s
            );
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(
                i64::from(delay_s) * 1000,
            ));
            delay_s *= 2;
        }
    }
}
