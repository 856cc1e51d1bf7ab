//! The guest's power-off, reboot and crash: `SCHEDOP_shutdown`, and the ACPI
//! sleep control and reset registers that Linux PVH uses instead for power-off
//! (S5) and reboot (see `ebbhv_x86::acpi`). Each ends the QEMU run with a status
//! that tells them apart (poweroff 33, crash 37, reboot 39; `run-hv.sh` maps them
//! to 0, 2 and 3), after the `[hv]` summary of the run.

use ebbhv_x86::acpi::{power_request, PowerRequest};

use crate::exit::{exit_qemu, ExitCode};
use crate::guest::Machine;
use crate::{log, stats};

/// `SHUTDOWN_poweroff`.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_crash`.
pub const SHUTDOWN_CRASH: u32 = 3;

/// Ends the run for a guest shutdown with Xen's `SHUTDOWN_*` reason.
pub fn shutdown(m: &mut Machine, reason: u32, how: &str) -> ! {
    m.console.flush();
    m.e9.flush();
    let what = match reason {
        SHUTDOWN_POWEROFF => "poweroff",
        SHUTDOWN_REBOOT => "reboot",
        SHUTDOWN_CRASH => "crash",
        _ => "other",
    };
    log!("guest shut down: {what} (reason {reason}, {how})");
    stats::report(m, what);
    exit_qemu(match reason {
        SHUTDOWN_POWEROFF => ExitCode::Success,
        SHUTDOWN_REBOOT => ExitCode::GuestReboot,
        _ => ExitCode::GuestFatal,
    })
}

/// A guest OUT to `port`: ends the run if it is an S5 entry on the ACPI sleep
/// control register or a reset on the reset register; otherwise does nothing.
pub fn port_write(m: &mut Machine, port: u16, value: u8) {
    match power_request(port, value) {
        Some(PowerRequest::PowerOff) => shutdown(m, SHUTDOWN_POWEROFF, "ACPI S5"),
        Some(PowerRequest::Reset) => shutdown(m, SHUTDOWN_REBOOT, "ACPI reset register"),
        None => {}
    }
}
