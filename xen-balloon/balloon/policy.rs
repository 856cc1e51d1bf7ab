// SPDX-License-Identifier: GPL-2.0

//! The retry policy: the C driver's tunables, and the backoff state the worker keeps
//! between attempts that made no progress.
//!
//! An attempt without progress waits `schedule_delay` seconds (1 at first, doubling up
//! to `max_schedule_delay`) before the next; after `max_retry_count` of them in a row
//! (0: never) the worker gives up until the target changes. Any progress, a new target
//! or a reached target starts over.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

/// The C driver's tunables (same names and units), which a user sets through sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tunables {
    /// Zero pages before the hypervisor gets them.
    pub(crate) scrub_pages: bool,
    /// The longest delay between attempts, in seconds (at least 1).
    pub(crate) max_schedule_delay_s: u32,
    /// Attempts without progress before giving up (0: never give up).
    pub(crate) max_retry_count: u32,
}

impl Tunables {
    /// The C driver's defaults.
    pub(crate) const DEFAULT: Self = Self {
        scrub_pages: true,
        max_schedule_delay_s: 32,
        max_retry_count: 0,
    };
}

/// What to do after an attempt without progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Try again after this many seconds.
    After(u32),
    /// `max_retry_count` attempts in a row made no progress: wait for a new target.
    GiveUp,
}

/// The backoff between attempts without progress (runtime state, shown read-only in
/// sysfs as the C driver's `schedule_delay` and `retry_count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    schedule_delay_s: u32,
    retry_count: u32,
}

impl Backoff {
    /// No attempt has failed yet.
    pub(crate) const fn new() -> Self {
        Self {
            schedule_delay_s: 1,
            retry_count: 0,
        }
    }

    /// Seconds before the next retry after a failure.
    pub(crate) fn schedule_delay_s(&self) -> u32 {
        self.schedule_delay_s
    }

    /// Attempts in a row that made no progress.
    pub(crate) fn retry_count(&self) -> u32 {
        self.retry_count
    }

    /// Starts over: progress was made, the target was reached, or it changed.
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    /// Records an attempt without progress and says when to try again.
    pub(crate) fn failed(&mut self, tunables: &Tunables) -> Retry {
        self.retry_count = self.retry_count.saturating_add(1);
        if tunables.max_retry_count != 0 && self.retry_count >= tunables.max_retry_count {
            return Retry::GiveUp;
        }
        // A `max_schedule_delay` lowered below the current delay takes effect at once.
        let max = tunables.max_schedule_delay_s.max(1);
        let delay = self.schedule_delay_s.min(max);
        self.schedule_delay_s = delay.saturating_mul(2).min(max);
        Retry::After(delay)
    }
}
