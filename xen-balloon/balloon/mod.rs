// SPDX-License-Identifier: GPL-2.0

//! The balloon: the target, the policy worker that moves the domain towards it, and
//! its status. `worker.rs` is the worker, `engine.rs` the reservation engine,
//! `target.rs` target parsing and limits, `policy.rs` the tunables and backoff,
//! `status.rs` the state and reason users read, `files.rs` every sysfs file and the
//! status line, `interfaces.rs` the sysfs handler, the xenstore watches and the
//! kernel's callbacks.
//!
//! Targets arrive from xenstore (`memory/target`, KiB, watched) and from sysfs; each
//! is clamped to [`Limits`] and re-arms the worker at once. The worker runs a bounded
//! number of batches of the reservation engine, then re-arms itself: at once while it
//! makes progress, after `schedule_delay` seconds when a batch moved nothing, doubling
//! the delay up to `max_schedule_delay` (so an unreachable target costs one batch per
//! delay, not a spinning CPU). After `max_retry_count` attempts without progress (0:
//! unlimited) it stops until the target changes. Every run ends by writing the status
//! to xenstore (`data/ebb-state`).
//!
//! When the target lies above what the domain holds plus the balloon, the worker grows
//! the guest with memory hotplug (`hotplug/`), one step per run and without holding
//! either lock: adding blocks, or backing the extents of onlined ones. The online-page
//! callback and the memory notifier re-arm the worker whenever one of ebb's blocks is
//! onlined or offlined. When the target falls by a whole hot-added block, the worker
//! removes the block (offline and remove) before ballooning anything out.
//!
//! Lock order: `Balloon::staging` → `Balloon::state`, and `mem_hotplug_lock` →
//! `Balloon::state` (the online callback and the memory notifier take `state`; nothing
//! that holds `state` adds, removes, onlines or offlines memory). `Hotplug::blocks` is
//! never taken under `staging` or `state`; `Balloon::status` takes `state` under it,
//! for one snapshot of both. `staging` is the worker's own: it allocates
//! and scrubs a balloon-out batch under it, and makes each batch's hypercall from it,
//! without `state` (`engine.rs`). `state` holds everything else; it is taken by the
//! worker (briefly, to move a batch's runs in and out of the balloon and to account
//! the outcome, never across a hypercall of its own or a sleep), sysfs, the xenstore
//! watch, the hotplug callbacks and the rmmod drain (which populates under it, with
//! the worker stopped); the OOM notifier, which may run inside an allocation made by
//! any of them, only try-locks it, for a bounded time, and populates one extent
//! under it. Nothing else is taken while holding either, except the allocator's and
//! the hypervisor's locks.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering;

use kernel::new_mutex;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;

use crate::hotplug::Changes;
use crate::hotplug::Hotplug;
use crate::hotplug::Summary;
use crate::hotplug::DEFAULT_REMOVE_TIMEOUT_MS;
use crate::rust::delayed_work::DelayedWork;
use crate::rust::xen_reservation;
use crate::rust::xenstore;

use engine::Reservation;
use engine::Staging;
use files::Status;
use files::StatusLine;
use policy::Backoff;
use policy::Tunables;
use status::Progress;
use target::pages_to_kib;
use target::Limits;

mod engine;
mod files;
pub(crate) mod interfaces;
mod policy;
mod status;
pub(crate) mod target;
mod worker;

/// Pages the OOM notifier gives back per call: one 2 MiB extent.
const OOM_DEFLATE_PAGES: usize = 512;
/// How long the OOM notifier waits for the worker to release the balloon's lock.
const OOM_LOCK_WAIT_MS: u32 = 100;

/// Everything the balloon's lock protects.
pub(crate) struct BalloonState {
    pub(crate) reservation: Reservation,
    pub(crate) requested_pages: usize,
    pub(crate) target_pages: usize,
    pub(crate) progress: Progress,
    /// The OOM notifier took pages back since the target was last set.
    pub(crate) oom_deflated: bool,
    pub(crate) oom_deflated_pages: u64,
    /// The highest maximum the hypervisor has given the domain since load (`None`: it
    /// did not say).
    pub(crate) maximum_pages: Option<usize>,
    /// Malformed targets the host wrote to xenstore (each refused).
    pub(crate) rejected_targets: u64,
    /// What users set.
    pub(crate) tunables: Tunables,
    /// The worker's retry state.
    pub(crate) backoff: Backoff,
}

impl BalloonState {
    /// Why the target is not (exactly) what was asked.
    fn reason(&self) -> &'static str {
        self.progress
            .reason(self.oom_deflated, self.target_pages != self.requested_pages)
    }

    /// The worker moved pages, or has nothing left to do: a later stall starts its
    /// backoff over.
    fn made_progress(&mut self, progress: Progress) {
        self.progress = progress;
        self.backoff.reset();
    }
}

/// The balloon driver's shared state.
///
/// # Invariants
///
/// `worker` is the `DelayedWork` of `DelayedWorkOwner for Balloon`.
#[pin_data]
pub(crate) struct Balloon {
    #[pin]
    worker: DelayedWork<Balloon>,
    /// Whether the worker may be scheduled: false from [`Balloon::stop`] on, so that
    /// nothing (the online callback, the memory notifier) re-arms it during unload.
    #[pin]
    runnable: SpinLock<bool>,
    #[pin]
    pub(crate) state: Mutex<BalloonState>,
    /// The worker's balloon-out batch while it is allocated and scrubbed.
    #[pin]
    staging: Mutex<Staging>,
    pub(crate) limits: Limits,
    /// The hotplug region, when the domain may grow past its boot size.
    pub(crate) hotplug: Option<Arc<Hotplug>>,
    superpages: bool,
    xenstore_up: AtomicBool,
    /// `control/feature-balloon` says "1" (written when xenstore came up).
    announced: AtomicBool,
    /// A status write failed and was reported; later failures stay quiet.
    status_write_failed: AtomicBool,
}

impl Balloon {
    /// The balloon of a domain holding `reservation` pages; the target starts there.
    pub(crate) fn new(
        reservation: usize,
        maximum_pages: Option<usize>,
        limits: Limits,
        hotplug: Option<Arc<Hotplug>>,
        superpages: bool,
    ) -> Result<impl PinInit<Self, Error>> {
        let state = BalloonState {
            reservation: Reservation::new(reservation, superpages)?,
            requested_pages: reservation,
            target_pages: reservation,
            progress: Progress::Reached,
            oom_deflated: false,
            oom_deflated_pages: 0,
            maximum_pages,
            rejected_targets: 0,
            tunables: Tunables::DEFAULT,
            backoff: Backoff::new(),
        };
        Ok(try_pin_init!(Self {
            worker <- DelayedWork::new(),
            runnable <- new_spinlock!(true),
            state <- new_mutex!(state),
            staging <- new_mutex!(Staging::new()?),
            limits,
            hotplug,
            superpages,
            xenstore_up: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            status_write_failed: AtomicBool::new(false),
        }))
    }

    /// Sets a new target (in pages of the domain's reservation) and wakes the worker.
    pub(crate) fn set_target(&self, requested_pages: usize) {
        {
            let mut state = self.state.lock();
            let (target, _) = self.limits.clamp(requested_pages, state.maximum_pages);
            state.requested_pages = requested_pages;
            state.target_pages = target;
            state.oom_deflated = false;
            state.made_progress(Progress::Working);
            state.reservation.retry_superpages(self.superpages);
        }
        if let Some(hotplug) = &self.hotplug {
            hotplug.retry_removal();
        }
        self.schedule_run(0);
    }

    /// The host may have changed the domain's maximum (`xl mem-max` writes
    /// `memory/static-max`): re-reads it and, when it rose, clamps the requested
    /// target anew, so that a target clamped at the old maximum is reached now and
    /// the domain can grow past its boot maximum. A lower maximum is no clamp: the
    /// target says what to give back, and the hypervisor refuses what lies above its
    /// maximum (`enomem_hypervisor`, retried until the maximum rises again).
    pub(crate) fn maximum_may_have_changed(&self) {
        let Ok(maximum) = xen_reservation::maximum_reservation() else {
            return;
        };
        let requested = {
            let mut state = self.state.lock();
            if state.maximum_pages.is_some_and(|known| known >= maximum) {
                return;
            }
            state.maximum_pages = Some(maximum);
            state.requested_pages
        };
        pr_info!(
            "the domain's maximum is now {} KiB (ebb can reach {} KiB)\n",
            pages_to_kib(maximum),
            pages_to_kib(self.limits.max_pages(Some(maximum)))
        );
        self.set_target(requested);
    }

    /// The host wrote a target that is not a number: refuses it, keeps the current
    /// target and says so once per write.
    pub(crate) fn reject_host_target(&self, text: &[u8]) {
        self.state.lock().rejected_targets += 1;
        pr_warn!(
            "memory/target {:?} is not a decimal number of KiB: ignored, the target stays as it was\n",
            kernel::str::BStr::from_bytes(text)
        );
        self.kick();
    }

    /// A block of ebb's was onlined or offlined: the domain's size or what the worker
    /// can do changed. The state says `working` until the worker has looked, so that
    /// nobody reads a stale `reached` or `not_onlined` in between.
    fn wake_for_hotplug(&self) {
        self.state.lock().progress = Progress::Working;
        self.kick();
    }

    /// Counts `pages` the guest lost to broken frames and gave back to the hypervisor,
    /// and has the worker bring the domain back to its target.
    pub(crate) fn pages_lost(&self, pages: usize) {
        self.state.lock().reservation.lost(pages);
        self.kick();
    }

    /// Re-arms the worker at once (a tunable changed).
    pub(crate) fn kick(&self) {
        self.schedule_run(0);
    }

    /// Stops the worker for good; no run is pending or running when this returns,
    /// and none is scheduled after.
    pub(crate) fn stop(&self) {
        *self.runnable.lock() = false;
        self.worker.cancel_sync();
    }

    /// Schedules a run of the worker after `delay` jiffies unless it was stopped. A
    /// run at once replaces any pending one; a delayed run (a backoff, the OOM
    /// notifier's pause) never postpones one already pending: a new target set on
    /// another CPU while the worker backs off is acted on at once.
    fn schedule_run(&self, delay: kernel::time::Jiffies) {
        let runnable = self.runnable.lock();
        if !*runnable {
            return;
        }
        if delay == 0 {
            self.worker.schedule(0);
        } else {
            self.worker.schedule_unless_pending(delay);
        }
    }

    /// Schedules a run of the worker after `seconds`.
    fn schedule_run_in(&self, seconds: u32) {
        self.schedule_run(kernel::time::msecs_to_jiffies(seconds.saturating_mul(1000)));
    }

    /// Gives up to one 2 MiB extent back to the guest when it is out of memory. The
    /// target stays a request: the worker comes back to it after
    /// `max_schedule_delay`, and then only takes free memory above the reserve.
    /// Skips (returns 0) when the worker holds the lock for longer than
    /// [`OOM_LOCK_WAIT_MS`].
    pub(crate) fn deflate_on_oom(&self) -> usize {
        // Never a blocking lock: the holder may be allocating, and so waiting for the
        // OOM lock held by this caller. A bounded wait still catches the worker
        // between two batches.
        let mut state = None;
        for _ in 0..OOM_LOCK_WAIT_MS {
            state = self.state.try_lock();
            if state.is_some() {
                break;
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
        }
        let Some(mut state) = state else {
            return 0;
        };
        let batch = state.reservation.balloon_in(OOM_DEFLATE_PAGES, false);
        if batch.pages == 0 {
            return 0;
        }
        if !state.oom_deflated {
            // Once per target, not once per OOM call: the console stays readable.
            pr_info!(
                "out of memory: giving ballooned pages back, {} KiB at most per call (ebb/oom_deflated_pages counts them)\n",
                pages_to_kib(OOM_DEFLATE_PAGES)
            );
        }
        state.oom_deflated = true;
        state.oom_deflated_pages += batch.pages as u64;
        let delay_s = state.tunables.max_schedule_delay_s;
        drop(state);
        self.schedule_run_in(delay_s);
        batch.pages
    }

    /// Notes that xenstore is up (the watch fired), so status writes will not block,
    /// and tells the toolstack, the first time, that the guest balloons.
    pub(crate) fn xenstore_is_up(&self) {
        if !self.xenstore_up.swap(true, Ordering::AcqRel) {
            self.announced
                .store(write_feature_balloon(c"1"), Ordering::Release);
        }
    }

    /// Tells the toolstack the guest no longer balloons (unload).
    pub(crate) fn withdraw(&self) {
        if self.announced.load(Ordering::Acquire) {
            write_feature_balloon(c"0");
        }
    }

    /// What the sysfs files and the status line show, one snapshot: the hotplug
    /// region held still while the balloon's state is read, and what hotplug did
    /// that the worker has not folded into the reservation yet counted in.
    pub(crate) fn status(&self) -> Status {
        match &self.hotplug {
            Some(hotplug) => {
                hotplug.with_snapshot(|summary, pending| self.status_with(summary, pending))
            }
            None => self.status_with(Summary::default(), Changes::default()),
        }
    }

    fn status_with(&self, hotplug: Summary, pending: Changes) -> Status {
        let state = self.state.lock();
        let reservation = &state.reservation;
        // As `Reservation::grew` and `shrank` will count them.
        let mut counters = *reservation.counters();
        counters.pages_in += pending.backed as u64;
        counters.pages_out += pending.released as u64;
        counters.hypercalls += pending.hypercalls as u64;
        Status {
            state: state.progress.name(),
            reason: state.reason(),
            current_pages: (reservation.current_pages() + pending.backed)
                .saturating_sub(pending.released),
            target_pages: state.target_pages,
            requested_pages: state.requested_pages,
            ballooned_pages: reservation.ballooned_pages(),
            floor_pages: self.limits.floor_pages(state.maximum_pages),
            max_pages: self.limits.max_pages(state.maximum_pages),
            schedule_delay_s: state.backoff.schedule_delay_s(),
            max_schedule_delay_s: state.tunables.max_schedule_delay_s,
            retry_count: state.backoff.retry_count(),
            max_retry_count: state.tunables.max_retry_count,
            scrub_pages: state.tunables.scrub_pages,
            hypercalls: counters.hypercalls,
            pages_out: counters.pages_out,
            pages_in: counters.pages_in,
            failures: counters.failures,
            oom_deflated_pages: state.oom_deflated_pages,
            rejected_targets: state.rejected_targets,
            lost_pages: counters.lost_pages,
            hotplug_blocks: hotplug.added,
            hotplug_onlined: hotplug.onlined,
            hotplug_unremovable: hotplug.unremovable,
            hotplug_backed_pages: hotplug.backed_pages,
            hotplug_ballooned_pages: hotplug.unbacked_pages,
            remove_timeout_ms: self
                .hotplug
                .as_ref()
                .map_or(DEFAULT_REMOVE_TIMEOUT_MS, |hotplug| {
                    hotplug.remove_timeout_ms()
                }),
        }
    }

    /// Writes a one-line status to xenstore `data/ebb-state` for the host (`memory/`
    /// is the toolstack's: a guest may not write there under libxl).
    fn publish_status(&self) {
        if !self.xenstore_up.load(Ordering::Acquire) {
            return;
        }
        let status = self.status();
        // `StatusLine` is `core::fmt::Display` (pure code), which `fmt!` does not take.
        let Ok(line) = CString::try_from_fmt(format_args!("{}", StatusLine(&status))) else {
            return;
        };
        if let Err(err) = xenstore::write(c"data", c"ebb-state", &line) {
            if !self.status_write_failed.swap(true, Ordering::Relaxed) {
                pr_warn!("cannot write data/ebb-state: {:?}\n", err);
            }
        }
    }
}

/// Writes `value` to `control/feature-balloon`, by which a toolstack can know that the
/// guest runs a balloon driver; returns whether it could. ebbhv lets the guest create
/// the node; libxl creates no such node and a guest may not (`EACCES`), which is said
/// once and is no error.
fn write_feature_balloon(value: &CStr) -> bool {
    match xenstore::write(c"control", c"feature-balloon", value) {
        Ok(()) => true,
        Err(err) if err == EACCES => {
            pr_info!("the toolstack does not let the guest write control/feature-balloon; not announcing\n");
            false
        }
        Err(err) => {
            pr_warn!("cannot write control/feature-balloon: {:?}\n", err);
            false
        }
    }
}
