//! The guest's power-off, reboot and crash requests: `SCHEDOP_shutdown` reasons,
//! and the ACPI sleep control and reset registers that Linux PVH uses instead for
//! power-off (S5) and reboot (see `ebbhv_x86::acpi`). Each ends the QEMU run with
//! a status that tells them apart (poweroff 33, crash 37, reboot 39; `run-hv.sh`
//! maps them to 0, 2 and 3), after the `[hv]` summary of the run (the machine
//! does that part: `Machine::shutdown`).

use ebbhv_core::abi::platform::shutdown::{CRASH, POWEROFF, REBOOT};
use ebbhv_hal::qemu_exit::ExitCode;
use ebbhv_x86::acpi::{power_request, PowerRequest};

/// The name of Xen's `SHUTDOWN_*` reason.
pub fn reason_name(reason: u32) -> &'static str {
    match reason {
        POWEROFF => "poweroff",
        REBOOT => "reboot",
        CRASH => "crash",
        _ => "other",
    }
}

/// How the run ends for a guest shutdown with `reason`.
pub fn exit_code(reason: u32) -> ExitCode {
    match reason {
        POWEROFF => ExitCode::Success,
        REBOOT => ExitCode::GuestReboot,
        _ => ExitCode::GuestFatal,
    }
}

/// A guest OUT to `port`: the shutdown reason and how it was asked for, if it is
/// an S5 entry on the ACPI sleep control register or a reset on the reset
/// register.
pub fn port_write(port: u16, value: u8) -> Option<(u32, &'static str)> {
    match power_request(port, value)? {
        PowerRequest::PowerOff => Some((POWEROFF, "ACPI S5")),
        PowerRequest::Reset => Some((REBOOT, "ACPI reset register")),
    }
}
