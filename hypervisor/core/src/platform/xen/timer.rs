//! The guest's one-shot timer (`VCPUOP_set_singleshot_timer`, `set_timer_op`),
//! delivered as VIRQ_TIMER.
//!
//! Deadlines are guest system time in nanoseconds (the pvclock's time base). The
//! platform arms a host timer for the deadline while one is set, and before every
//! guest entry takes a deadline that has passed ([`XenPlatform::take_due_timer`])
//! and raises VIRQ_TIMER.

use crate::platform::Clock;

use super::XenPlatform;

/// The guest's one-shot timer: one deadline at most, so its state is bounded
/// whatever the guest asks.
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

    /// Whether the deadline has passed at guest system time `now_ns`; clears it if
    /// so.
    pub fn take_due(&mut self, now_ns: u64) -> bool {
        match self.deadline {
            Some(d) if now_ns >= d => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

impl<C: Clock> XenPlatform<C> {
    /// `HYPERVISOR_set_timer_op(deadline)`: 0 stops the timer, anything else is the
    /// deadline (a past one fires at the next guest entry).
    pub fn set_timer_op(&mut self, deadline_ns: u64) -> Result<i64, crate::error::Errno> {
        self.timer.set((deadline_ns != 0).then_some(deadline_ns));
        Ok(0)
    }
}
