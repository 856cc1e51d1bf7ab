//! The guest's one-shot timer (`VCPUOP_set_singleshot_timer`, `set_timer_op`),
//! delivered as VIRQ_TIMER.
//!
//! Deadlines are guest system time in nanoseconds (the pvclock's time base).
//! While a deadline is set, the host timer (`ebbhv_hal::timer`) is armed for it,
//! so a running guest is interrupted (INTR exit) and an idle one woken when it is
//! due; before every guest entry the machine takes a deadline that has passed
//! ([`OneShot::take_due`]) and raises VIRQ_TIMER. An idle guest sleeps in the
//! host's `sti; hlt`, waking at its deadline or every [`POLL_NS`] to look for
//! console input and control requests.

use super::time::Clocks;

/// How often an idle guest's devices are polled (console input), in ns.
pub const POLL_NS: u64 = 20_000_000;

/// The guest's one-shot timer.
#[derive(Default, Debug)]
pub struct OneShot {
    /// Guest system time (ns) it is due at.
    deadline: Option<u64>,
}

impl OneShot {
    /// Sets (`Some`) or stops (`None`) the timer.
    pub fn set(&mut self, deadline_ns: Option<u64>) {
        self.deadline = deadline_ns;
    }

    /// The deadline, if set.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Whether the deadline has passed by `clocks`' time; clears it if so.
    pub fn take_due(&mut self, clocks: &Clocks) -> bool {
        match self.deadline {
            Some(d) if clocks.system_time_ns() >= d => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }

    /// The TSC value to wake an idle guest at: its deadline, or the next device
    /// poll if that comes first.
    pub fn idle_wake_tsc(&self, clocks: &Clocks) -> u64 {
        let now = clocks.system_time_ns();
        let wake = self
            .deadline
            .unwrap_or(u64::MAX)
            .min(now.saturating_add(POLL_NS));
        clocks.tsc_at(wake)
    }
}
