//! Port I/O instructions.
//!
//! ebbhv owns the machine's legacy devices (COM1, the PIT, the CMOS RTC, QEMU's
//! debug-exit port); the guest never reaches them, because every port is
//! intercepted in its I/O permission map.

/// Writes a byte to an I/O port.
///
/// # Safety
///
/// The port must belong to a device ebbhv owns, and the write must be one that
/// device's driver in ebbhv expects; port writes can reprogram hardware.
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller guarantees the port and value are valid for the device; the
    // instruction touches no memory.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
///
/// As for [`outb`].
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: as in `outb`.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a byte from an I/O port.
///
/// # Safety
///
/// The port must belong to a device ebbhv owns; reads can have side effects
/// (acknowledging a status, popping a FIFO).
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: the caller guarantees the port is ebbhv's; the instruction touches no
    // memory.
    unsafe {
        core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}
