//! Ending the run: QEMU's isa-debug-exit device and the panic handler.
//!
//! `scripts/run-hv.sh` wires `-device isa-debug-exit,iobase=0xf4,iosize=4`; a write
//! of `v` makes QEMU exit with status `(v << 1) | 1`. [`ExitCode`] lists the values
//! ebbhv writes, and the run script maps them back to names.

use core::fmt::Write;

use crate::port::outl;
use crate::serial::emergency_writer;

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Why ebbhv ends the run (QEMU exits with `(code << 1) | 1`).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum ExitCode {
    /// The run finished as planned (QEMU status 33).
    Success = 0x10,
    /// ebbhv hit a CPU exception or a panic (QEMU status 35).
    HypervisorFault = 0x11,
    /// The guest crashed, or did something ebbhv cannot continue it from (QEMU
    /// status 37).
    GuestFatal = 0x12,
    /// The guest asked to reboot (QEMU status 39); ebbhv does not restart it.
    GuestReboot = 0x13,
}

/// Ends the QEMU run with `code`; halts forever if the device is missing.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device, which ebbhv owns; writing to
    // it ends the emulator and has no other effect (none at all on a machine without
    // the device).
    unsafe { outl(DEBUG_EXIT_PORT, code as u32) };
    halt_forever()
}

/// Stops the CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts masked, `cli; hlt` only stops the CPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut w = emergency_writer();
    let _ = write!(w, "\n[hv] PANIC: {info}\n");
    exit_qemu(ExitCode::HypervisorFault)
}
