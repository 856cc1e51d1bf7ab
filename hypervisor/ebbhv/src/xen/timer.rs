//! Waking an idle guest: the host timer (`ebbhv_hal::timer`) is armed for the
//! one-shot timer's deadline (kept by the core's
//! [`OneShot`](ebbhv_core::platform::xen::timer::OneShot)), so a running guest is
//! interrupted (INTR exit) and an idle one woken when it is due. An idle guest
//! sleeps in the host's `sti; hlt`, waking at its deadline or every [`POLL_NS`]
//! to look for console input and control requests.

use ebbhv_core::platform::xen::timer::OneShot;
use ebbhv_core::platform::Clock;

use super::time::Clocks;

/// How often an idle guest's devices are polled (console input), in ns.
pub const POLL_NS: u64 = 20_000_000;

/// The TSC value to wake an idle guest at: its deadline, or the next device poll
/// if that comes first.
pub fn idle_wake_tsc(timer: &OneShot, clocks: &Clocks) -> u64 {
    let now = clocks.system_time_ns();
    let wake = timer
        .deadline()
        .unwrap_or(u64::MAX)
        .min(now.saturating_add(POLL_NS));
    clocks.tsc_at(wake)
}
