//! The guest's time events: its one-shot timer (`VCPUOP_set_singleshot_timer`,
//! `set_timer_op`), delivered as VIRQ_TIMER, and idling (HLT, `SCHEDOP_block`)
//! until the next event.
//!
//! Deadlines are guest system time in nanoseconds (the pvclock's time base). While
//! a deadline is set, the host timer ([`crate::hosttimer`]) is armed for it, so a
//! running guest is interrupted (INTR exit) and an idle one woken when it is due;
//! [`service`] raises VIRQ_TIMER for a deadline that has passed and runs before
//! every guest entry. An idle guest sleeps in the host's `sti; hlt`, waking at its
//! deadline or every [`POLL_NS`] to look for console input.

use ebbhv_core::evtchn::abi::{VIRQ_CONSOLE, VIRQ_TIMER};

use crate::events::{self, raise_virq};
use crate::guest::Machine;
use crate::hosttimer;

/// How often an idle guest's devices are polled (console input), in ns.
const POLL_NS: u64 = 20_000_000;

/// Sets (`Some`) or stops (`None`) the guest's one-shot timer.
pub fn set(m: &mut Machine, deadline_ns: Option<u64>) {
    m.timer_deadline = deadline_ns;
}

/// The TSC value at guest system time `ns` (saturating, so that a deadline a
/// guest sets far in the future stays in the future).
fn tsc_at(m: &Machine, ns: u64) -> u64 {
    let c = &m.clocks;
    c.tsc_at_boot
        .saturating_add(ebbhv_x86::time::ns_to_ticks(ns, c.tsc_hz))
}

/// Raises VIRQ_TIMER if the deadline has passed, polls the devices, and arms the
/// host timer for the next deadline. Runs before every guest entry.
pub fn service(m: &mut Machine) {
    if let Some(d) = m.timer_deadline {
        if m.system_time_ns() >= d {
            m.timer_deadline = None;
            m.stats.timer_events += 1;
            raise_virq(m, VIRQ_TIMER);
        }
    }
    poll_devices(m);
    match m.timer_deadline {
        Some(d) => hosttimer::arm_at(tsc_at(m, d)),
        None => hosttimer::disarm(),
    }
}

/// Looks at the devices the guest gets events from: console input on COM1 (read
/// into the console_io queue, announced with VIRQ_CONSOLE) and the control channel
/// on COM2 (which may change xenstore and so notify the guest).
pub fn poll_devices(m: &mut Machine) {
    crate::control::poll(m);
    if m.console_in.poll() {
        raise_virq(m, VIRQ_CONSOLE);
    }
}

/// Idles the vCPU (HLT with interrupts on, or `SCHEDOP_block`) until an event is
/// pending for it: its timer, console input, or anything a device poll raises.
pub fn block(m: &mut Machine) {
    let started = crate::clock::rdtsc();
    loop {
        service(m);
        if events::guest_has_work(m) {
            break;
        }
        let now = m.system_time_ns();
        let wake = m
            .timer_deadline
            .unwrap_or(u64::MAX)
            .min(now.saturating_add(POLL_NS));
        hosttimer::arm_at(tsc_at(m, wake));
        hosttimer::wait_for_interrupt();
        hosttimer::take_fired();
    }
    m.stats.idle_tsc += crate::clock::rdtsc().wrapping_sub(started);
}
